import { isIP } from 'node:net';
import type { KeyObject } from 'node:crypto';
import { EKU, type CertificateTemplate, type DistinguishedName } from './certificate.ts';

/**
 * What each certificate certmdm makes looks like. Validity is applied by the authority; these say only
 * what the certificate is for.
 */
type Template = Omit<CertificateTemplate, 'notBefore' | 'notAfter'>;

export function rootCa(organization: string, label: string, publicKey: KeyObject): Template {
  return {
    subject: [
      ['O', organization],
      ['CN', `${organization} Root CA ${label}`],
    ],
    publicKey,
    ca: {},
    keyUsage: ['keyCertSign', 'cRLSign'],
  };
}

export function intermediateCa(organization: string, label: string, publicKey: KeyObject): Template {
  return {
    subject: [
      ['O', organization],
      ['CN', `${organization} Intermediate CA ${label}`],
    ],
    publicKey,
    // pathLen 0: it issues end-entity certificates only.
    ca: { pathLength: 0 },
    keyUsage: ['digitalSignature', 'keyCertSign', 'cRLSign'],
  };
}

export function tlsServer(organization: string, hostnames: string[], publicKey: KeyObject): Template {
  const first = hostnames[0];
  if (!first) throw new Error('a TLS certificate needs at least one hostname');
  return {
    subject: [
      ['O', organization],
      ['CN', first],
    ],
    publicKey,
    keyUsage: publicKey.asymmetricKeyType === 'rsa' ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature'],
    extendedKeyUsage: [EKU.serverAuth],
    subjectAltName: {
      dns: hostnames.filter((h) => !isIP(h)),
      ip: hostnames.filter((h) => isIP(h)),
    },
  };
}

export function profileSigning(organization: string, publicKey: KeyObject): Template {
  const subject: DistinguishedName = [
    ['O', organization],
    ['CN', `${organization} Profile Signing`],
  ];
  // Profiles are CMS-signed; Apple shows the signer's name. emailProtection is what CMS signers conventionally carry.
  return { subject, publicKey, keyUsage: ['digitalSignature'], extendedKeyUsage: [EKU.emailProtection, EKU.codeSigning] };
}

export function scepRa(organization: string, publicKey: KeyObject): Template {
  // digitalSignature signs CertReps; keyEncipherment receives the requests' content keys. No EKU: OpenSSL-based
  // clients (certmonger) verify the CertRep signer for any purpose.
  return {
    subject: [
      ['O', organization],
      ['CN', `${organization} SCEP RA`],
    ],
    publicKey,
    keyUsage: ['digitalSignature', 'keyEncipherment'],
  };
}
