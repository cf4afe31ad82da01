import { createHash, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import * as asn1x509 from '@peculiar/asn1-x509';
import { signatureAlgorithmFor, signWith } from './algorithms.ts';

/** A distinguished name as ordered (attribute, value) pairs, most significant first. */
export type DistinguishedName = ReadonlyArray<readonly [NameAttribute, string]>;
export type NameAttribute = 'C' | 'O' | 'OU' | 'CN' | 'UID' | 'serialNumber';

const NAME_OIDS: Record<NameAttribute, string> = {
  C: '2.5.4.6',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  CN: '2.5.4.3',
  serialNumber: '2.5.4.5',
  UID: '0.9.2342.19200300.100.1.1',
};

export const EKU = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  codeSigning: '1.3.6.1.5.5.7.3.3',
  emailProtection: '1.3.6.1.5.5.7.3.4',
} as const;

export type KeyUsage = keyof typeof asn1x509.KeyUsageFlags;

export interface CertificateTemplate {
  subject: DistinguishedName;
  publicKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  /** Present for CA certificates; pathLength 0 means it may issue only end-entity certificates. */
  ca?: { pathLength?: number };
  keyUsage: KeyUsage[];
  extendedKeyUsage?: string[];
  subjectAltName?: { dns?: string[]; ip?: string[] };
}

/** What an issuer contributes to a certificate it signs. */
export interface Issuer {
  certificate: Buffer;
  privateKey: KeyObject;
}

export function encodeName(dn: DistinguishedName): asn1x509.Name {
  return new asn1x509.Name(
    dn.map(
      ([attribute, value]) =>
        new asn1x509.RelativeDistinguishedName([
          new asn1x509.AttributeTypeAndValue({
            type: NAME_OIDS[attribute],
            value:
              attribute === 'C'
                ? new asn1x509.AttributeValue({ printableString: value })
                : new asn1x509.AttributeValue({ utf8String: value }),
          }),
        ]),
    ),
  );
}

/** A random positive serial of 127 bits: well above the CA/B Forum's 64-bit floor, and never negative. */
export function randomSerial(): ArrayBuffer {
  const serial = new Uint8Array(randomBytes(16));
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  return serial.buffer;
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents. */
export function subjectKeyIdentifier(publicKey: KeyObject): Buffer {
  const spki = AsnConvert.parse(publicKey.export({ type: 'spki', format: 'der' }), asn1x509.SubjectPublicKeyInfo);
  return createHash('sha1').update(Buffer.from(spki.subjectPublicKey)).digest();
}

/** The issuer's own SKI if it has one (imported CAs may use another method), else computed. */
function keyIdentifierOf(certificate: asn1x509.Certificate, der: Buffer): Buffer {
  const ski = certificate.tbsCertificate.extensions?.find((e) => e.extnID === asn1x509.id_ce_subjectKeyIdentifier);
  if (ski) return Buffer.from(AsnConvert.parse(ski.extnValue.buffer, asn1x509.SubjectKeyIdentifier).buffer);
  return subjectKeyIdentifier(new X509Certificate(der).publicKey);
}

function extension(oid: string, critical: boolean, value: unknown): asn1x509.Extension {
  return new asn1x509.Extension({ extnID: oid, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

function keyUsageBits(usages: KeyUsage[]): asn1x509.KeyUsage {
  return new asn1x509.KeyUsage(usages.reduce((bits, usage) => bits | asn1x509.KeyUsageFlags[usage], 0));
}

/**
 * Builds and signs an X.509 v3 certificate. With no issuer the certificate is self-signed by `selfSigningKey`.
 * Extensions are the ones a security engineer expects: basicConstraints (critical) always, keyUsage (critical),
 * SKI, AKI (except on a self-signed root, where it would only repeat the SKI), EKU and SAN when asked.
 */
export function buildCertificate(
  template: CertificateTemplate,
  issuer: Issuer | { selfSigningKey: KeyObject },
  serial: ArrayBuffer = randomSerial(),
): Buffer {
  const signingKey = 'selfSigningKey' in issuer ? issuer.selfSigningKey : issuer.privateKey;
  const issuerCert = 'certificate' in issuer ? AsnConvert.parse(issuer.certificate, asn1x509.Certificate) : undefined;
  const subject = encodeName(template.subject);
  const ski = subjectKeyIdentifier(template.publicKey);
  const extensions: asn1x509.Extension[] = [
    extension(
      asn1x509.id_ce_basicConstraints,
      true,
      new asn1x509.BasicConstraints({ cA: Boolean(template.ca), pathLenConstraint: template.ca?.pathLength }),
    ),
    extension(asn1x509.id_ce_keyUsage, true, keyUsageBits(template.keyUsage)),
    extension(asn1x509.id_ce_subjectKeyIdentifier, false, new asn1x509.SubjectKeyIdentifier(ski)),
  ];
  if (issuerCert) {
    const issuerSki = keyIdentifierOf(issuerCert, (issuer as Issuer).certificate);
    extensions.push(
      extension(
        asn1x509.id_ce_authorityKeyIdentifier,
        false,
        new asn1x509.AuthorityKeyIdentifier({ keyIdentifier: new asn1x509.KeyIdentifier(issuerSki) }),
      ),
    );
  }
  if (template.extendedKeyUsage?.length) {
    extensions.push(
      extension(asn1x509.id_ce_extKeyUsage, false, new asn1x509.ExtendedKeyUsage(template.extendedKeyUsage)),
    );
  }
  const san = [
    ...(template.subjectAltName?.dns ?? []).map((dNSName) => new asn1x509.GeneralName({ dNSName })),
    ...(template.subjectAltName?.ip ?? []).map((iPAddress) => new asn1x509.GeneralName({ iPAddress })),
  ];
  if (san.length) {
    // RFC 5280: SAN is critical only when the subject is empty; ours always has a CN.
    extensions.push(extension(asn1x509.id_ce_subjectAltName, false, new asn1x509.SubjectAlternativeName(san)));
  }

  const algorithm = signatureAlgorithmFor(signingKey);
  const signatureAlgorithm = new asn1x509.AlgorithmIdentifier({
    algorithm: algorithm.oid,
    parameters: algorithm.nullParameters ? null : undefined,
  });
  const tbs = new asn1x509.TBSCertificate({
    version: asn1x509.Version.v3,
    serialNumber: serial,
    signature: signatureAlgorithm,
    issuer: issuerCert ? issuerCert.tbsCertificate.subject : subject,
    validity: new asn1x509.Validity({ notBefore: template.notBefore, notAfter: template.notAfter }),
    subject,
    subjectPublicKeyInfo: AsnConvert.parse(
      template.publicKey.export({ type: 'spki', format: 'der' }),
      asn1x509.SubjectPublicKeyInfo,
    ),
    extensions: new asn1x509.Extensions(extensions),
  });
  const tbsDer = AsnConvert.serialize(tbs);
  const certificate = new asn1x509.Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm,
    signatureValue: new Uint8Array(signWith(signingKey, new Uint8Array(tbsDer))).buffer,
  });
  return Buffer.from(AsnConvert.serialize(certificate));
}

export function toPem(der: Buffer, label = 'CERTIFICATE'): string {
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

/** The facts the inventory keeps about a certificate, read back from its DER (not from what we meant to write). */
export interface CertificateFacts {
  subject: string;
  issuer: string;
  serialHex: string;
  fingerprintSha256: string;
  notBefore: Date;
  notAfter: Date;
  isCa: boolean;
}

export function readCertificate(der: Buffer): CertificateFacts {
  const cert = new X509Certificate(der);
  return {
    subject: cert.subject.split('\n').join(', '),
    issuer: cert.issuer.split('\n').join(', '),
    serialHex: cert.serialNumber.toLowerCase(),
    fingerprintSha256: createHash('sha256').update(der).digest('hex'),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    isCa: cert.ca,
  };
}
