import { isIP } from 'node:net';
import { readCertificate } from '../pki/certificate.ts';
import * as cms from '../pki/cms.ts';

/**
 * Where a request's identity certificate comes from. Pure: the edge hands in headers, body, peer address and the
 * TLS peer certificate; this decides which certificate the request presents, or refuses.
 */
export type IdentitySource = 'mtls' | 'proxy' | 'signature';

export interface IdentityInput {
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  peer: string;
  /** DER of the client certificate of a mutual-TLS connection to certmdm itself. */
  tlsCertificate?: Buffer;
}

export interface IdentitySettings {
  sources: IdentitySource[];
  trustedProxies: string[];
  /** Header carrying nginx's `$ssl_client_escaped_cert` (URL-escaped PEM). RFC 9440 `Client-Cert` is read too. */
  proxyHeader: string;
  /** Tolerance around the certificate's validity for Mdm-Signature's signingTime. */
  signingTimeSkewMs: number;
}

export interface PresentedIdentity {
  certificate: Buffer;
  sources: IdentitySource[];
}

export class IdentityError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 403,
  ) {
    super(message);
    this.name = 'IdentityError';
  }
}

function header(headers: IdentityInput['headers'], name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

function pemToDer(pem: string): Buffer {
  const match = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem);
  if (!match) throw new IdentityError('the proxy certificate header holds no PEM certificate', 400);
  return Buffer.from(match[1]!.replace(/\s+/g, ''), 'base64');
}

function normaliseAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

function fromProxy(input: IdentityInput, settings: IdentitySettings): Buffer | undefined {
  const escaped = header(input.headers, settings.proxyHeader);
  const rfc9440 = header(input.headers, 'client-cert');
  if (!escaped && !rfc9440) return undefined;
  if (!settings.trustedProxies.includes(normaliseAddress(input.peer))) {
    throw new IdentityError(`client certificate header from ${input.peer}, which is not a trusted proxy`, 403);
  }
  if (escaped) {
    let pem: string;
    try {
      pem = decodeURIComponent(escaped);
    } catch {
      throw new IdentityError('the proxy certificate header is not URL-escaped PEM', 400);
    }
    return pemToDer(pem);
  }
  const match = /^:([A-Za-z0-9+/=]+):$/.exec(rfc9440!.trim());
  if (!match) throw new IdentityError('Client-Cert is not an RFC 9440 byte sequence', 400);
  return Buffer.from(match[1]!, 'base64');
}

function fromSignature(input: IdentityInput, settings: IdentitySettings): Buffer | undefined {
  const value = header(input.headers, 'mdm-signature');
  if (!value) return undefined;
  let verified: cms.VerifiedSignature;
  try {
    const signed = cms.parseSignedData(Buffer.from(value.replace(/\s+/g, ''), 'base64'));
    // Detached is the rule; a signature that carries content must carry exactly this body.
    if (signed.content && !signed.content.equals(input.body))
      throw new cms.CmsError('the signed content is not this body', 'bad-signature');
    verified = cms.verifySignedData(signed, input.body);
  } catch (err) {
    const malformed = err instanceof cms.CmsError && err.kind === 'malformed';
    throw new IdentityError(`Mdm-Signature: ${(err as Error).message}`, malformed ? 400 : 403);
  }
  if (verified.signingTime) {
    const { notBefore, notAfter } = validityOf(verified.certificate);
    const t = verified.signingTime.getTime();
    if (t < notBefore.getTime() - settings.signingTimeSkewMs || t > notAfter.getTime() + settings.signingTimeSkewMs) {
      throw new IdentityError(`Mdm-Signature signingTime ${verified.signingTime.toISOString()} is outside the certificate's validity`, 403);
    }
  }
  return verified.certificate;
}

function validityOf(certificate: Buffer): { notBefore: Date; notAfter: Date } {
  const { notBefore, notAfter } = readCertificate(certificate);
  return { notBefore, notAfter };
}

/**
 * The certificate a request presents, from exactly the sources the deployment enables. When several present one,
 * they must be the same certificate.
 */
export function presentedIdentity(input: IdentityInput, settings: IdentitySettings): PresentedIdentity {
  const found: [IdentitySource, Buffer][] = [];
  if (settings.sources.includes('mtls') && input.tlsCertificate?.length) found.push(['mtls', input.tlsCertificate]);
  if (settings.sources.includes('proxy')) {
    const der = fromProxy(input, settings);
    if (der) found.push(['proxy', der]);
  }
  if (settings.sources.includes('signature')) {
    const der = fromSignature(input, settings);
    if (der) found.push(['signature', der]);
  }
  if (found.length === 0) throw new IdentityError(`no client identity (enabled sources: ${settings.sources.join(', ')})`, 403);
  const [first] = found;
  if (found.some(([, der]) => !der.equals(first![1])))
    throw new IdentityError(`identity sources disagree (${found.map(([s]) => s).join(', ')})`, 403);
  return { certificate: first![1], sources: found.map(([s]) => s) };
}
