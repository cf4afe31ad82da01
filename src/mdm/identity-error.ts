import { createHash } from 'node:crypto';

/**
 * Why a request's identity was refused, by name: the audit log and tests match on these, never on message wording.
 * The first group is raised while reading the identity, the second while judging the certificate read.
 */
export type IdentityRefusal =
  | 'no-identity'
  | 'sources-disagree'
  | 'signature-malformed'
  | 'signature-invalid'
  | 'signing-time'
  | 'proxy-untrusted-peer'
  | 'proxy-other-header'
  | 'proxy-duplicate-header'
  | 'proxy-malformed-header'
  | 'certificate-malformed'
  | 'not-our-ca'
  | 'not-client-auth'
  | 'issuer-retired'
  | 'not-a-device-identity'
  | 'certificate-revoked'
  | 'certificate-expired'
  | 'certificate-not-yet-valid'
  | 'refused';

/** A certificate a request presented, with where it came from (`mtls`, `proxy`, `signature`, or `header:<name>`). */
export interface PresentedCertificate {
  source: string;
  certificate: Buffer;
}

export class IdentityError extends Error {
  readonly refusal: IdentityRefusal;
  /** Every certificate the request presented, so the refusal is audited with what was shown, not `null`. */
  presented: PresentedCertificate[];

  constructor(
    message: string,
    readonly status: 400 | 403,
    options: { refusal?: IdentityRefusal; presented?: PresentedCertificate[] } = {},
  ) {
    super(message);
    this.name = 'IdentityError';
    this.refusal = options.refusal ?? 'refused';
    this.presented = options.presented ?? [];
  }
}

export function fingerprint(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

/**
 * The audit fields for presented certificates: `certificates` maps each source to its SHA-256 fingerprint;
 * `certificate` is the one fingerprint when every source showed the same certificate, else null (none, or
 * sources that disagree — then `certificates` names each).
 */
export function auditedCertificates(presented: readonly PresentedCertificate[]): {
  certificate: string | null;
  certificates: Record<string, string>;
} {
  const certificates: Record<string, string> = {};
  for (const { source, certificate } of presented) certificates[source] ??= fingerprint(certificate);
  const distinct = new Set(Object.values(certificates));
  return { certificate: distinct.size === 1 ? [...distinct][0]! : null, certificates };
}
