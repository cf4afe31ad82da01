import * as der from './der.ts';
/** Object identifiers used across CMS, PKCS#10 and SCEP, named as their RFCs name them. */
export const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  envelopedData: '1.2.840.113549.1.7.3',

  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  challengePassword: '1.2.840.113549.1.9.7',
  extensionRequest: '1.2.840.113549.1.9.14',

  rsaEncryption: '1.2.840.113549.1.1.1',
  sha1WithRSAEncryption: '1.2.840.113549.1.1.5',
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  sha384WithRSAEncryption: '1.2.840.113549.1.1.12',
  sha512WithRSAEncryption: '1.2.840.113549.1.1.13',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  ecdsaWithSHA384: '1.2.840.10045.4.3.3',

  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',

  aes128Cbc: '2.16.840.1.101.3.4.1.2',
  aes192Cbc: '2.16.840.1.101.3.4.1.22',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
  desEde3Cbc: '1.2.840.113549.3.7',
  desCbc: '1.3.14.3.2.7',

  // SCEP (RFC 8894 §3.2.1), under VeriSign's arc.
  scepMessageType: '2.16.840.1.113733.1.9.2',
  scepPkiStatus: '2.16.840.1.113733.1.9.3',
  scepFailInfo: '2.16.840.1.113733.1.9.4',
  scepSenderNonce: '2.16.840.1.113733.1.9.5',
  scepRecipientNonce: '2.16.840.1.113733.1.9.6',
  scepTransactionId: '2.16.840.1.113733.1.9.7',

  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
} as const;

export type DigestName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export const DIGEST_BY_OID: Record<string, DigestName> = {
  [OID.sha1]: 'sha1',
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
};

export const DIGEST_OID: Record<DigestName, string> = {
  sha1: OID.sha1,
  sha256: OID.sha256,
  sha384: OID.sha384,
  sha512: OID.sha512,
};

/** Signature algorithms accepted on input, with the digest each implies (undefined: taken from the digest field). */
export const SIGNATURE_DIGEST: Record<string, DigestName | undefined> = {
  [OID.rsaEncryption]: undefined,
  [OID.sha1WithRSAEncryption]: 'sha1',
  [OID.sha256WithRSAEncryption]: 'sha256',
  [OID.sha384WithRSAEncryption]: 'sha384',
  [OID.sha512WithRSAEncryption]: 'sha512',
  [OID.ecdsaWithSHA256]: 'sha256',
  [OID.ecdsaWithSHA384]: 'sha384',
};

const RSA_SIGNATURES: ReadonlySet<string> = new Set([
  OID.rsaEncryption,
  OID.sha1WithRSAEncryption,
  OID.sha256WithRSAEncryption,
  OID.sha384WithRSAEncryption,
  OID.sha512WithRSAEncryption,
]);
const ECDSA_SIGNATURES: ReadonlySet<string> = new Set([OID.ecdsaWithSHA256, OID.ecdsaWithSHA384]);

/** A signature AlgorithmIdentifier's OID: RSA PKCS#1 takes absent or NULL parameters, ECDSA none (RFC 4055, 5758). */
export function readSignatureAlgorithm(node: der.Node | undefined, what: string): string {
  const { oid, parameters } = der.readAlgorithm(node, what, RSA_SIGNATURES.has(readOidOf(node)));
  if (parameters && ECDSA_SIGNATURES.has(oid)) throw new der.DerError(`${what}: ECDSA takes no parameters`);
  return oid;
}

/** A digest AlgorithmIdentifier's OID (parameters absent or NULL). */
export function readDigestAlgorithm(node: der.Node | undefined, what: string): string {
  return der.readAlgorithm(node, what, true).oid;
}

function readOidOf(node: der.Node | undefined): string {
  return der.readOid(der.children(der.expect(node, der.TAG.SEQUENCE, 'AlgorithmIdentifier'))[0]);
}
