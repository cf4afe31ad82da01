import { EKU, nameAttributes, type CertificateTemplate, type DistinguishedName, type KeyUsage } from '../pki/certificate.ts';
import { CsrError, requestedUsage, type CertificationRequest } from '../pki/csr.ts';
import { ScepError } from './messages.ts';
import { publicKeyFromSpki } from '../pki/public-keys.ts';

const MAX_SAN_ENTRIES = 10;
const MAX_VALUE_LENGTH = 255;
// C0, DEL and C1 controls (NUL among them): never in a name a relying party compares.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** What SCEP issues and to whom: the subject is the enrollment's, never the requester's. */
export interface IdentityScope {
  subject: DistinguishedName;
  /** subjectAltNames the deployment allows (`dns:*.devices.example.com`, `email:*@example.com`, `uri:…`); none by default. */
  allowedSans: readonly string[];
}

/** Whether `value` matches a `kind:pattern` rule; '*' stands for one DNS label, or the local part of an address. */
export function sanAllowed(kind: 'dns' | 'email' | 'uri', value: string, rules: readonly string[]): boolean {
  return rules.some((rule) => {
    if (!rule.startsWith(`${kind}:`)) return false;
    const pattern = rule.slice(kind.length + 1);
    const star = pattern.indexOf('*');
    if (star < 0) return kind === 'dns' ? pattern.toLowerCase() === value.toLowerCase() : pattern === value;
    const [head, tail] = [pattern.slice(0, star), pattern.slice(star + 1)];
    if (value.length < head.length + tail.length + 1) return false;
    const fold = kind === 'dns' ? (s: string) => s.toLowerCase() : (s: string) => s;
    if (!fold(value).startsWith(fold(head)) || !fold(value).endsWith(fold(tail))) return false;
    const middle = value.slice(head.length, value.length - tail.length);
    return kind === 'uri' ? !/[/?#]/.test(middle) : !/[.@]/.test(middle);
  });
}

/**
 * What a device identity certificate looks like, decided from a CSR and the enrollment it serves: the enrollment's
 * subject (the CSR's is only checked for control characters), subjectAltNames only from the allowlist,
 * digitalSignature (+ keyEncipherment if asked), EKU clientAuth only. A request for a CA, for serverAuth, or for a
 * name outside policy is refused rather than silently trimmed, so a misconfigured client learns why.
 */
export function identityTemplate(csr: CertificationRequest, scope: IdentityScope): Omit<CertificateTemplate, 'notBefore' | 'notAfter'> {
  let asked: ReturnType<typeof requestedUsage>;
  try {
    asked = requestedUsage(csr);
  } catch (err) {
    if (err instanceof CsrError) throw new ScepError(err.message, 'badRequest');
    throw err;
  }
  if (asked.ca) throw new ScepError('the request asks for a CA certificate', 'badRequest');
  if (asked.keyUsage.has('keyCertSign') || asked.keyUsage.has('cRLSign'))
    throw new ScepError('the request asks for certificate-signing key usage', 'badRequest');
  if (asked.extendedKeyUsage.includes(EKU.serverAuth)) throw new ScepError('the request asks for serverAuth', 'badRequest');
  const other = asked.extendedKeyUsage.filter((e) => e !== EKU.clientAuth);
  if (other.length)
    throw new ScepError(`the request asks for extended key usages ${other.join(', ')}; identities get clientAuth only`, 'badRequest');

  const key = publicKeyFromSpki(csr.spki);
  if (key.asymmetricKeyType !== 'rsa' || (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    throw new ScepError('device identities must be RSA of at least 2048 bits', 'badAlg');
  }

  for (const [, value] of nameAttributes(csr.subject)) {
    if (CONTROL.test(value)) throw new ScepError('the request subject holds control characters', 'badRequest');
  }

  const san = asked.subjectAltName;
  if (san.other > 0) throw new ScepError('the request asks for subjectAltName types other than DNS, email or URI', 'badRequest');
  if (san.dns.length + san.email.length + san.uri.length > MAX_SAN_ENTRIES)
    throw new ScepError('too many subjectAltName entries', 'badRequest');
  const names = [
    ...san.dns.map((v) => ['dns', v] as const),
    ...san.email.map((v) => ['email', v] as const),
    ...san.uri.map((v) => ['uri', v] as const),
  ];
  for (const [kind, value] of names) {
    if (value.length === 0 || value.length > MAX_VALUE_LENGTH || CONTROL.test(value) || value.includes('*'))
      throw new ScepError(`subjectAltName ${kind} is empty, too long, or holds a wildcard or control characters`, 'badRequest');
    if (!sanAllowed(kind, value, scope.allowedSans))
      throw new ScepError(`subjectAltName ${kind}:${value} is not allowed (--scep-allowed-san)`, 'badRequest');
  }

  const keyUsage: KeyUsage[] = ['digitalSignature'];
  if (asked.keyUsage.has('keyEncipherment')) keyUsage.push('keyEncipherment');
  return {
    subject: scope.subject,
    publicKey: csr.spki,
    keyUsage,
    extendedKeyUsage: [EKU.clientAuth],
    subjectAltName: { dns: san.dns, email: san.email, uri: san.uri },
  };
}
