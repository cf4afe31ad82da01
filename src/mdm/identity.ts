import { certificateParts, readCertificate } from '../pki/certificate.ts';
import * as cms from '../pki/cms.ts';
import { IdentityError } from './identity-error.ts';
import { proxyCertificate, type ProxyCertFormat } from './proxy-certificate.ts';

export { IdentityError, type IdentityRefusal, type PresentedCertificate } from './identity-error.ts';

/**
 * Where a request's identity certificate comes from. Pure: the edge hands in headers, body, peer address and the
 * TLS peer certificate; this decides which certificate the request presents, or refuses.
 */
export type IdentitySource = 'mtls' | 'proxy' | 'signature';

export interface IdentityInput {
  headers: Record<string, string | string[] | undefined>;
  /** Node's `rawHeaders` (name, value, ...), where repeated header lines stay apart. */
  headerLines: readonly string[];
  body: Buffer;
  peer: string;
  /** DER of the client certificate of a mutual-TLS connection to certmdm itself. */
  tlsCertificate?: Buffer;
}

export interface IdentitySettings {
  sources: IdentitySource[];
  trustedProxies: string[];
  /** The one header (lower case) a trusted proxy passes the client certificate in. */
  proxyHeader: string;
  proxyFormat: ProxyCertFormat;
  /** Tolerance around the certificate's validity for Mdm-Signature's signingTime. */
  signingTimeSkewMs: number;
  /**
   * `--rescue-grace-days` in ms: a signature made after the certificate expired, within this grace, is read (the
   * verifier then decides whether the identity is rescued or refused as expired).
   */
  rescueGraceMs?: number;
}

export interface PresentedIdentity {
  certificate: Buffer;
  sources: IdentitySource[];
}

function header(headers: IdentityInput['headers'], name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** The signer certificate of a signature that was refused, when it can be read at all: for the audit only. */
function claimedSigner(signed: cms.SignedData | undefined): Buffer | undefined {
  const signer = signed?.signers.length === 1 ? signed.signers[0] : undefined;
  if (!signer) return undefined;
  try {
    const certificate = cms.findSignerCertificate(signer, signed!.certificates);
    if (certificate) certificateParts(certificate);
    return certificate;
  } catch {
    return undefined;
  }
}

function fromSignature(input: IdentityInput, settings: IdentitySettings): Buffer | undefined {
  const value = header(input.headers, 'mdm-signature');
  if (!value) return undefined;
  let signed: cms.SignedData | undefined;
  let verified: cms.VerifiedSignature;
  try {
    // Node's base64 decoder skips the whitespace of a folded header itself.
    signed = cms.parseSignedData(Buffer.from(value, 'base64'));
    // Detached is the rule; a signature that carries content must carry exactly this body.
    if (signed.content && !signed.content.equals(input.body))
      throw new cms.CmsError('the signed content is not this body', 'bad-signature');
    verified = cms.verifySignedData(signed, input.body);
  } catch (err) {
    const malformed = err instanceof cms.CmsError && err.kind === 'malformed';
    const signer = claimedSigner(signed);
    throw new IdentityError(`Mdm-Signature: ${(err as Error).message}`, malformed ? 400 : 403, {
      refusal: malformed ? 'signature-malformed' : 'signature-invalid',
      presented: signer ? [{ source: 'signature', certificate: signer }] : [],
    });
  }
  if (verified.signingTime) {
    const presented = [{ source: 'signature', certificate: verified.certificate }];
    let validity: { notBefore: Date; notAfter: Date };
    try {
      validity = readCertificate(verified.certificate);
    } catch {
      throw new IdentityError('the Mdm-Signature signer certificate has no readable validity', 400, {
        refusal: 'signature-malformed',
        presented,
      });
    }
    const t = verified.signingTime.getTime();
    const latest = validity.notAfter.getTime() + settings.signingTimeSkewMs + (settings.rescueGraceMs ?? 0);
    if (t < validity.notBefore.getTime() - settings.signingTimeSkewMs || t > latest) {
      throw new IdentityError(
        `Mdm-Signature signingTime ${verified.signingTime.toISOString()} is outside the certificate's validity`,
        403,
        {
          refusal: 'signing-time',
          presented,
        },
      );
    }
  }
  return verified.certificate;
}

/**
 * The certificate a request presents, from exactly the sources the deployment enables. When several present one,
 * they must be the same certificate. Every source is read even after one refuses, so the refusal is audited with
 * every certificate the request showed.
 */
export function presentedIdentity(input: IdentityInput, settings: IdentitySettings): PresentedIdentity {
  const readers: [IdentitySource, () => Buffer | undefined][] = [
    ['mtls', () => (input.tlsCertificate?.length ? input.tlsCertificate : undefined)],
    [
      'proxy',
      () =>
        proxyCertificate(input.headerLines, input.peer, {
          trustedProxies: settings.trustedProxies,
          header: settings.proxyHeader,
          format: settings.proxyFormat,
        }),
    ],
    ['signature', () => fromSignature(input, settings)],
  ];
  const found: [IdentitySource, Buffer][] = [];
  const refusals: IdentityError[] = [];
  for (const [source, read] of readers) {
    if (!settings.sources.includes(source)) continue;
    try {
      const der = read();
      if (der) found.push([source, der]);
    } catch (err) {
      if (!(err instanceof IdentityError)) throw err;
      refusals.push(err);
    }
  }
  const [refusal] = refusals;
  if (refusal) {
    refusal.presented = [...found.map(([source, certificate]) => ({ source, certificate })), ...refusals.flatMap((r) => r.presented)];
    throw refusal;
  }
  if (found.length === 0)
    throw new IdentityError(`no client identity (enabled sources: ${settings.sources.join(', ')})`, 403, { refusal: 'no-identity' });
  const [first] = found;
  if (found.some(([, der]) => !der.equals(first![1])))
    throw new IdentityError(`identity sources disagree (${found.map(([s]) => s).join(', ')})`, 403, {
      refusal: 'sources-disagree',
      presented: found.map(([source, certificate]) => ({ source, certificate })),
    });
  return { certificate: first![1], sources: found.map(([s]) => s) };
}
