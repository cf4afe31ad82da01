import { createHash, verify } from 'node:crypto';
import { certificateParts } from '../pki/certificate.ts';
import * as der from '../pki/der.ts';
import { SIGNATURE_DIGEST } from '../pki/oids.ts';
import { publicKeyFromSpki } from '../pki/public-keys.ts';
import type { CertificateRecord, Store } from '../store/types.ts';
import type { IdentityFacts } from './identity-cache.ts';
import { IdentityError } from './identity.ts';
import { rescueDecision, type RescueGrant } from './rescue-policy.ts';

const EKU_OID = '2.5.29.37';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const ANY_EKU = '2.5.29.37.0';

/** Extended key usages of a certificate, or undefined when it has no EKU extension. */
function extendedKeyUsage(certificate: Buffer): string[] | undefined {
  const fields = der.children(der.parse(certificateParts(certificate).tbs));
  const extensions = fields.find((f) => f.tag === 0xa3);
  if (!extensions) return undefined;
  for (const ext of der.children(der.children(extensions)[0]!)) {
    const parts = der.children(ext);
    if (der.readOid(parts[0]!) === EKU_OID) return der.children(der.parse(der.readOctets(parts[parts.length - 1]!))).map(der.readOid);
  }
  return undefined;
}

/** An accepted identity; `rescue` when it is expired and accepted only to receive its renewal (rescue-policy.ts). */
export interface VerifiedIdentity {
  certificate: CertificateRecord;
  rescue: RescueGrant | null;
}

/**
 * Decides whether a presented certificate is a device identity certmdm accepts: it chains to one of certmdm's CA
 * certificates that is still valid (including ones being rotated out), carries clientAuth (or no EKU), is within
 * its validity, is not revoked, and was issued by certmdm to an enrollment. The signature check is remembered per
 * certificate; status and validity are checked on every request, from facts current as of its start (`facts`, kept
 * in memory between requests and forgotten whenever the store's identity epoch moves). One narrow exception to validity: an enrollment's
 * current identity that expired less than `rescueGraceMs` ago is accepted as a rescue.
 */
export class CertificateVerifier {
  readonly #chained = new Map<string, string>();

  constructor(
    private readonly store: Store,
    private readonly facts: IdentityFacts,
    private readonly options: { rescueGraceMs: number } = { rescueGraceMs: 0 },
  ) {}

  async verify(certificate: Buffer, now: Date): Promise<VerifiedIdentity> {
    const fingerprint = createHash('sha256').update(certificate).digest('hex');
    let parts: ReturnType<typeof certificateParts>;
    try {
      parts = certificateParts(certificate);
    } catch {
      throw new IdentityError('the client certificate is not a valid X.509 certificate', 400, { refusal: 'certificate-malformed' });
    }
    let issuerId = this.#chained.get(fingerprint);
    if (!issuerId) {
      issuerId = await this.#findIssuer(parts, now);
      if (!issuerId) throw new IdentityError("the certificate does not chain to certmdm's CA", 403, { refusal: 'not-our-ca' });
      const eku = extendedKeyUsage(certificate);
      if (eku && !eku.includes(CLIENT_AUTH) && !eku.includes(ANY_EKU))
        throw new IdentityError('the certificate lacks the clientAuth extended key usage', 403, { refusal: 'not-client-auth' });
      if (this.#chained.size > 100_000) this.#chained.clear();
      this.#chained.set(fingerprint, issuerId);
    }
    const issuer = await this.facts.getCertificate(issuerId);
    if (!issuer || issuer.status === 'revoked' || issuer.notAfter <= now)
      throw new IdentityError('the issuing CA certificate is revoked or expired', 403, { refusal: 'issuer-retired' });
    const record = await this.facts.getCertificateByFingerprint(fingerprint);
    if (!record || record.role !== 'device-identity')
      throw new IdentityError('the certificate was never issued by certmdm to an enrollment', 403, { refusal: 'not-a-device-identity' });
    if (record.status === 'revoked') throw new IdentityError('the certificate is revoked', 403, { refusal: 'certificate-revoked' });
    if (record.notAfter <= now) return { certificate: record, rescue: await this.#rescue(record, now) };
    if (record.notBefore > now) throw new IdentityError('the certificate is not yet valid', 403, { refusal: 'certificate-not-yet-valid' });
    return { certificate: record, rescue: null };
  }

  /** An expired identity: a rescue grant, or refused as expired exactly as without rescue (the message says why). */
  async #rescue(record: CertificateRecord, now: Date): Promise<RescueGrant> {
    const { rescueGraceMs: graceMs } = this.options;
    const boundTo = graceMs > 0 ? ((await this.store.getBinding(record.id)) ?? null) : null;
    const enrollment = boundTo ? ((await this.store.getEnrollment(boundTo)) ?? null) : null;
    const decision = rescueDecision({ certificate: record, boundTo, enrollment, now, graceMs });
    if ('grant' in decision) return decision.grant;
    throw new IdentityError(`the certificate has expired (no rescue: ${decision.refuse})`, 403, { refusal: 'certificate-expired' });
  }

  /** An intermediate (or root) of ours, not revoked and within validity, whose key signed the certificate. */
  async #findIssuer(parts: ReturnType<typeof certificateParts>, at: Date): Promise<string | undefined> {
    const digest = SIGNATURE_DIGEST[parts.signatureAlgorithm];
    if (!digest) return undefined;
    const candidates = [
      ...(await this.store.listCertificates({ role: 'intermediate' })),
      ...(await this.store.listCertificates({ role: 'root' })),
    ];
    for (const ca of candidates) {
      if (ca.status === 'revoked' || ca.notAfter <= at) continue;
      const caParts = certificateParts(ca.der);
      if (!caParts.subject.equals(parts.issuer)) continue;
      try {
        if (verify(digest, parts.tbs, publicKeyFromSpki(caParts.spki), parts.signature)) return ca.id;
      } catch {
        /* not this one */
      }
    }
    return undefined;
  }
}
