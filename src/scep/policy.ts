import {
  EKU,
  nameAttributes,
  type CertificateTemplate,
  type DistinguishedName,
  type KeyUsage,
  type NameAttribute,
} from '../pki/certificate.ts';
import { requestedUsage, type CertificationRequest } from '../pki/csr.ts';
import { ScepError } from './messages.ts';
import { publicKeyFromSpki } from '../pki/public-keys.ts';

/** Subject attributes a device identity may carry; anything else in the CSR subject is dropped. */
const ALLOWED_SUBJECT: ReadonlySet<NameAttribute> = new Set(['C', 'ST', 'L', 'O', 'OU', 'CN', 'UID', 'serialNumber']);
const MAX_VALUE_LENGTH = 128;
const MAX_SAN_ENTRIES = 10;

/**
 * What a device identity certificate looks like, decided from a CSR: the subject and SAN it asks for, within policy;
 * digitalSignature (+ keyEncipherment if asked); EKU clientAuth only. A request for a CA or for serverAuth is
 * refused rather than silently trimmed, so a misconfigured client learns why.
 */
export function identityTemplate(csr: CertificationRequest): Omit<CertificateTemplate, 'notBefore' | 'notAfter'> {
  const asked = requestedUsage(csr);
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

  const subject: [NameAttribute, string][] = [];
  for (const [, value, attribute] of nameAttributes(csr.subject)) {
    if (!attribute || !ALLOWED_SUBJECT.has(attribute)) continue;
    if (value.length === 0 || value.length > MAX_VALUE_LENGTH)
      throw new ScepError(`subject ${attribute} is empty or too long`, 'badRequest');
    if (attribute === 'C' && !/^[A-Z]{2}$/i.test(value)) throw new ScepError('subject C must be a two-letter country code', 'badRequest');
    subject.push([attribute, value]);
  }
  if (!subject.some(([a]) => a === 'CN')) throw new ScepError('the request subject has no CN', 'badRequest');

  const san = asked.subjectAltName;
  if (san.other > 0) throw new ScepError('the request asks for subjectAltName types other than DNS, email or URI', 'badRequest');
  if (san.dns.length + san.email.length + san.uri.length > MAX_SAN_ENTRIES)
    throw new ScepError('too many subjectAltName entries', 'badRequest');

  const keyUsage: KeyUsage[] = ['digitalSignature'];
  if (asked.keyUsage.has('keyEncipherment')) keyUsage.push('keyEncipherment');
  return {
    subject: subject as DistinguishedName,
    publicKey: csr.spki,
    keyUsage,
    extendedKeyUsage: [EKU.clientAuth],
    subjectAltName: { dns: san.dns, email: san.email, uri: san.uri },
  };
}
