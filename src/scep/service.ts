import { createHash } from 'node:crypto';
import type { AuditLog } from '../admin/audit.ts';
import type { Clock } from '../clock.ts';
import * as cms from '../pki/cms.ts';
import { csrSignatureValid, CsrError, parseCsr, type CertificationRequest } from '../pki/csr.ts';
import { certificateParts, nameAttributes, type DistinguishedName, type NameAttribute } from '../pki/certificate.ts';
import { DerError } from '../pki/der.ts';
import { OID } from '../pki/oids.ts';
import { Pkcs1KeyTransport } from '../pki/rsa-pkcs1.ts';
import type { Identity, ServerPki } from '../pki/server-pki.ts';
import { ConflictError, type CertificateRecord, type Store } from '../store/types.ts';
import { checkChallenge } from './challenges.ts';
import {
  certRepFailure,
  certRepSuccess,
  MESSAGE_TYPE,
  readPkiMessageHeader,
  ScepError,
  type CertRepSigner,
  type PkiMessageHeader,
} from './messages.ts';
import { identityTemplate } from './policy.ts';

export interface ScepSettings {
  /** Validity of issued identities in days; fractions allowed, so the simulator can use minutes. */
  identityDays: number;
  /** Content ciphers accepted and advertised. */
  ciphers: cms.CipherFamily[];
  /** How far a request's signingTime may be from our clock. */
  maxClockSkewMs: number;
  /** O= of issued identities; CN= is the enrollment reference. */
  organization: string;
  /** subjectAltNames an identity may carry (see policy.ts); none by default. */
  allowedSans: readonly string[];
}

export interface ScepResponse {
  status: number;
  contentType: string;
  body: Buffer | string;
}

const PKI_MESSAGE = 'application/x-pki-message';

/**
 * The SCEP server core (RFC 8894): pure over bytes, with storage, clock and audit injected. It issues immediately
 * or refuses; nothing is ever PENDING, so CertPoll and GetCert are answered with FAILURE.
 */
export class ScepService {
  #keyTransport?: { raId: string; transport: Pkcs1KeyTransport };
  #caCertificates?: { certificates: Buffer[]; body: Buffer };

  constructor(
    /** `pki` is the live server PKI: after a rollover the new RA and intermediate are used at once. */
    private readonly deps: { store: Store; pki: ServerPki; clock: Clock; audit: AuditLog },
    private readonly settings: ScepSettings,
  ) {}

  get #ra(): Identity {
    return this.deps.pki.scepRa;
  }

  get #signer(): CertRepSigner {
    return { certificate: this.#ra.certificate.der, privateKey: this.#ra.privateKey, chain: this.deps.pki.authority.chain() };
  }

  get #transport(): Pkcs1KeyTransport {
    if (this.#keyTransport?.raId !== this.#ra.certificate.id) {
      this.#keyTransport = { raId: this.#ra.certificate.id, transport: new Pkcs1KeyTransport(this.#ra.privateKey) };
    }
    return this.#keyTransport.transport;
  }

  caps(): string {
    const caps = ['POSTPKIOperation', 'SHA-256', 'SHA-1', 'SCEPStandard', 'Renewal'];
    if (this.settings.ciphers.includes('aes')) caps.push('AES');
    if (this.settings.ciphers.includes('des3')) caps.push('DES3');
    return caps.join('\n') + '\n';
  }

  /** RA + CA chain as a degenerate certs-only PKCS#7, since certmdm answers SCEP with an RA certificate. */
  caCertificates(): ScepResponse {
    // Built once per RA and chain (they change only at a rollover): every enrollment asks for it first.
    // The live PKI swaps in new records at a rollover, so the same DER buffers mean the same chain.
    const certificates = [this.#ra.certificate.der, ...this.deps.pki.authority.chain()];
    const cached = this.#caCertificates;
    if (!cached || cached.certificates.length !== certificates.length || cached.certificates.some((c, i) => c !== certificates[i]))
      this.#caCertificates = { certificates, body: cms.buildCertsOnly(certificates) };
    return { status: 200, contentType: 'application/x-x509-ca-ra-cert', body: this.#caCertificates!.body };
  }

  async pkiOperation(message: Buffer, peer: string): Promise<ScepResponse> {
    let header: PkiMessageHeader;
    try {
      header = readPkiMessageHeader(message);
    } catch (err) {
      await this.#audit(peer, 'denied', `unreadable PKIMessage: ${(err as Error).message}`, {});
      return { status: 400, contentType: 'text/plain', body: 'malformed SCEP PKIMessage\n' };
    }
    const facts: Record<string, unknown> = {
      transactionId: header.transactionId,
      messageType: header.messageType,
      signer: header.signerCertificate ? fingerprint(header.signerCertificate) : null,
    };
    try {
      const { issued, cipherOid, facts: more } = await this.#handle(header);
      await this.#audit(peer, 'ok', null, { ...facts, ...more, certificate: issued.fingerprintSha256, subject: issued.subject });
      return { status: 200, contentType: PKI_MESSAGE, body: certRepSuccess(header, this.#signer, [issued.der], cipherOid) };
    } catch (err) {
      const failure =
        err instanceof ScepError
          ? err
          : err instanceof ConflictError || err instanceof CsrError || err instanceof DerError // a malformed request is a refusal, never a 500
            ? new ScepError(err.message, 'badRequest')
            : undefined;
      if (!failure) throw err;
      await this.#audit(peer, 'denied', failure.message, { ...facts, failInfo: failure.failInfo });
      return { status: 200, contentType: PKI_MESSAGE, body: certRepFailure(header, this.#signer, failure.failInfo) };
    }
  }

  async #handle(
    header: PkiMessageHeader,
  ): Promise<{ issued: CertificateRecord; cipherOid: cms.ContentCipherOid; facts: Record<string, unknown> }> {
    const now = this.deps.clock();
    if (!header.signerCertificate) throw new ScepError('the signer certificate is not in the message', 'badMessageCheck');
    let signingTime: Date | undefined;
    try {
      signingTime = cms.verifySignedData(header.signed).signingTime;
    } catch (err) {
      if (err instanceof cms.CmsError && err.kind === 'unsupported-algorithm') throw new ScepError(err.message, 'badAlg');
      throw new ScepError(`message signature: ${(err as Error).message}`, 'badMessageCheck');
    }
    if (signingTime && Math.abs(signingTime.getTime() - now.getTime()) > this.settings.maxClockSkewMs) {
      throw new ScepError(`signingTime ${signingTime.toISOString()} is too far from the server's clock`, 'badTime');
    }
    switch (header.messageType) {
      case MESSAGE_TYPE.PKCSReq:
      case MESSAGE_TYPE.RenewalReq:
        break;
      case MESSAGE_TYPE.CertPoll:
        throw new ScepError('CertPoll: certmdm never leaves a request pending', 'badRequest');
      case MESSAGE_TYPE.GetCert:
      case MESSAGE_TYPE.GetCRL:
        throw new ScepError('GetCert/GetCRL are not offered', 'badCertId');
      default:
        throw new ScepError(`unknown messageType ${header.messageType}`, 'badRequest');
    }

    const { csr, cipherOid, cipher } = this.#openRequest(header);
    const transport = { cipher, digest: header.digest, subject: csr.subjectText };
    if (!csrSignatureValid(csr)) throw new ScepError('the CSR is not signed by the key it certifies', 'badMessageCheck');
    const { allowedSans } = this.settings;
    const validityDays = this.settings.identityDays;

    if (header.messageType === MESSAGE_TYPE.PKCSReq) {
      if (!certificateParts(header.signerCertificate).spki.equals(csr.spki)) {
        throw new ScepError('PKCSReq must be signed with the key of the CSR', 'badMessageCheck');
      }
      const challenge = await checkChallenge(this.deps.store, csr.challengePassword, now);
      if (!challenge.ok) throw new ScepError(challenge.reason, 'badRequest');
      // The challenge decides both the subject (its enrollment's) and which enrollment the identity may serve.
      const ref = challenge.record.enrollmentRef ?? challenge.record.id;
      const subject: DistinguishedName = [
        ['O', this.settings.organization],
        ['CN', ref],
      ];
      const template = identityTemplate(csr, { subject, allowedSans });
      const entry = this.deps.pki.authority.prepare({
        role: 'device-identity',
        template,
        validityDays,
        servesEnrollment: challenge.record.enrollmentId,
      });
      await this.deps.store.insertCertificateConsumingChallenge(entry, challenge.record.id, now);
      return {
        issued: entry.certificate,
        cipherOid,
        facts: { ...transport, challengeId: challenge.record.id, enrollmentRef: ref, servesEnrollment: challenge.record.enrollmentId },
      };
    }

    const { current, enrollmentId } = await this.#renewableIdentity(header.signerCertificate, now);
    // The renewed identity keeps the signer's subject and serves the signer's enrollment, whatever the CSR asks.
    const template = identityTemplate(csr, { subject: subjectOf(current.der), allowedSans });
    const entry = this.deps.pki.authority.prepare({
      role: 'device-identity',
      template,
      validityDays,
      servesEnrollment: enrollmentId,
      renewalOf: current.id,
    });
    await this.deps.store.insertCertificates([entry]);
    return {
      issued: entry.certificate,
      cipherOid,
      facts: { ...transport, renewalOf: current.fingerprintSha256, servesEnrollment: enrollmentId },
    };
  }

  /**
   * RenewalReq is honoured only when signed by the current, bound identity of an enrolled device: an identity that
   * was never bound (one enrollment link's, say) or was replaced cannot mint more identities.
   */
  async #renewableIdentity(signer: Buffer, now: Date): Promise<{ current: CertificateRecord; enrollmentId: string }> {
    const { store } = this.deps;
    const record = await store.getCertificateByFingerprint(fingerprint(signer));
    if (!record || record.role !== 'device-identity')
      throw new ScepError('RenewalReq signer is not an identity certmdm issued', 'badCertId');
    if (record.status !== 'active') throw new ScepError(`RenewalReq signer is ${record.status}`, 'badCertId');
    if (record.notAfter <= now || record.notBefore > now) throw new ScepError('RenewalReq signer is outside its validity', 'badCertId');
    const enrollmentId = await store.getBinding(record.id);
    const enrollment = enrollmentId ? await store.getEnrollment(enrollmentId) : undefined;
    if (!enrollment || enrollment.status !== 'enrolled' || enrollment.identityCertificateId !== record.id)
      throw new ScepError("RenewalReq signer is not an enrolled device's current identity", 'badCertId');
    return { current: record, enrollmentId: enrollment.id };
  }

  /** Decrypts the pkcsPKIEnvelope addressed to our RA and parses the CSR inside. */
  #openRequest(header: PkiMessageHeader): { csr: CertificationRequest; cipherOid: cms.ContentCipherOid; cipher: string } {
    let envelope: cms.EnvelopedData;
    try {
      envelope = cms.parseEnvelopedData(header.signed.content ?? Buffer.alloc(0));
    } catch (err) {
      throw new ScepError(`pkcsPKIEnvelope: ${(err as Error).message}`, 'badMessageCheck');
    }
    let cipher: ReturnType<typeof cms.cipherOf>;
    try {
      cipher = cms.cipherOf(envelope);
    } catch (err) {
      throw new ScepError(
        (err as Error).message,
        err instanceof cms.CmsError && err.kind === 'unsupported-algorithm' ? 'badAlg' : 'badMessageCheck',
      );
    }
    if (!this.settings.ciphers.includes(cipher.family))
      throw new ScepError(`content cipher ${cipher.label} is not enabled (--scep-ciphers)`, 'badAlg');
    const recipient = cms.recipientFor(envelope, this.#ra.certificate.der);
    if (!recipient) throw new ScepError("the request is not encrypted to certmdm's RA certificate", 'badMessageCheck');
    if (recipient.keyEncryptionAlgorithm !== OID.rsaEncryption) throw new ScepError('key transport must be rsaEncryption', 'badAlg');
    const contentKey = this.#transport.decryptKey(recipient.encryptedKey, cipher.keyLength);
    let plaintext: Buffer;
    try {
      plaintext = cms.decryptContent(envelope, contentKey);
    } catch {
      throw new ScepError('the request does not decrypt', 'badMessageCheck');
    }
    try {
      return { csr: parseCsr(plaintext), cipherOid: envelope.cipherOid as cms.ContentCipherOid, cipher: cipher.label };
    } catch (err) {
      if (err instanceof CsrError) throw new ScepError(err.message, 'badRequest');
      throw err;
    }
  }

  async #audit(peer: string, outcome: 'ok' | 'denied', reason: string | null, detail: Record<string, unknown>): Promise<void> {
    await this.deps.audit.record({
      actor: `ip:${peer}`,
      action: 'scep.pkioperation',
      target: (detail.transactionId as string | undefined) ?? null,
      outcome,
      reason,
      detail,
    });
  }
}

/** The subject of a certificate as a template, keeping the attributes certmdm issues. */
function subjectOf(certificate: Buffer): DistinguishedName {
  return nameAttributes(certificateParts(certificate).subject)
    .filter((a): a is [string, string, NameAttribute] => a[2] !== undefined)
    .map(([, value, attribute]) => [attribute, value] as const);
}

function fingerprint(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}
