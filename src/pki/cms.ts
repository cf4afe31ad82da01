import {
  createCipheriv,
  createDecipheriv,
  createHash,
  publicEncrypt,
  constants,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { certificateParts, readCertificate } from './certificate.ts';
import * as der from './der.ts';
import { DIGEST_BY_OID, DIGEST_OID, OID, readDigestAlgorithm, readSignatureAlgorithm, SIGNATURE_DIGEST, type DigestName } from './oids.ts';
import { publicKeyFromSpki } from './public-keys.ts';

/**
 * CMS (RFC 5652) as certmdm needs it: SignedData in (BER or DER, with or without signed attributes, exactly one
 * signer) and out (DER), certs-only SignedData, and EnvelopedData with RSA key transport. Pure functions over bytes.
 */

export class CmsError extends Error {
  constructor(
    message: string,
    /** What kind of failure, so protocols can map it (SCEP failInfo, HTTP status). */
    readonly kind: 'malformed' | 'unsupported-algorithm' | 'bad-signature' | 'no-recipient' = 'malformed',
  ) {
    super(message);
    this.name = 'CmsError';
  }
}

export interface Attribute {
  type: string;
  /** The encoded AttributeValue elements. */
  values: der.Node[];
}

export interface SignerInfo {
  /** issuerAndSerialNumber (issuer Name DER + serial INTEGER content) or a subjectKeyIdentifier. */
  sid: { issuer: Buffer; serial: Buffer } | { subjectKeyIdentifier: Buffer };
  digest: DigestName;
  signedAttributes?: { raw: Buffer; list: Attribute[] };
  signatureAlgorithm: string;
  signature: Buffer;
}

export interface SignedData {
  contentType: string;
  /** The encapsulated content, or undefined for a detached signature (or a CertRep FAILURE). */
  content?: Buffer;
  certificates: Buffer[];
  signers: SignerInfo[];
}

function fail(message: string, kind: CmsError['kind'] = 'malformed'): never {
  throw new CmsError(message, kind);
}

/**
 * Wraps DER/BER reading errors as malformed CMS. Only the reader's typed errors are translated: anything else is a
 * bug in this module, and the fuzz test must see it rather than a tidy CmsError.
 */
function guard<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof der.DerError) fail(`${what}: ${err.message}`);
    throw err;
  }
}

/** A limit on signers and attributes: one of each is the rule, a few is generous. */
const MAX_SIGNERS = 8;

function readAttributes(node: der.Node): Attribute[] {
  return der.children(node).map((attr) => {
    const fields = der.children(der.expect(attr, der.TAG.SEQUENCE, 'Attribute'));
    if (fields.length !== 2) fail('an Attribute has a type and values');
    const values = der.children(der.expect(fields[1], der.TAG.SET, 'AttributeValues'));
    if (values.length === 0) fail('an Attribute needs at least one value');
    return { type: der.readOid(fields[0]), values: [...values] };
  });
}

/** A ContentInfo's type and its one [0] EXPLICIT content. */
function contentInfoParts(node: der.Node): { type: string; content: der.Node } {
  const fields = der.children(der.expect(node, der.TAG.SEQUENCE, 'ContentInfo'));
  if (fields.length !== 2) fail('a ContentInfo has a type and a content');
  const explicit = der.children(der.expect(fields[1], 0xa0, 'ContentInfo content'));
  if (explicit.length !== 1) fail('ContentInfo content holds one element');
  return { type: der.readOid(fields[0]), content: explicit[0]! };
}

/**
 * Parses a ContentInfo holding SignedData, as strictly as openssl reads it: every certificate carried is read
 * whole, algorithm parameters are checked, fields come in their order, and nothing unknown is skipped.
 */
export function parseSignedData(input: Buffer): SignedData {
  return guard('SignedData', () => {
    const outer = contentInfoParts(der.parse(input));
    if (outer.type !== OID.signedData) fail('ContentInfo does not hold SignedData');
    const fields = der.children(der.expect(outer.content, der.TAG.SEQUENCE, 'SignedData'));
    der.readInteger(fields[0], 'SignedData version');
    // openssl prepares every digest listed here, and refuses the message when it knows one not: so do we.
    for (const algorithm of der.children(der.expect(fields[1], der.TAG.SET, 'digestAlgorithms'))) {
      const oid = readDigestAlgorithm(algorithm, 'digestAlgorithms');
      if (!DIGEST_BY_OID[oid]) fail(`unsupported digest algorithm ${oid}`, 'unsupported-algorithm');
    }
    const encapFields = der.children(der.expect(fields[2], der.TAG.SEQUENCE, 'EncapsulatedContentInfo'));
    if (encapFields.length < 1 || encapFields.length > 2) fail('EncapsulatedContentInfo has a type and an optional content');
    const contentType = der.readOid(encapFields[0]);
    let content: Buffer | undefined;
    if (encapFields[1]) {
      const explicit = der.children(der.expect(encapFields[1], 0xa0, 'eContent'));
      if (explicit.length !== 1) fail('eContent holds one OCTET STRING');
      content = der.readOctets(explicit[0]);
    }
    const certificates: Buffer[] = [];
    let i = 3;
    if (fields[i]?.tag === 0xa0) {
      for (const c of der.children(fields[i])) {
        // Only X.509 certificates (no attribute certificates), each one well formed: openssl reads them all.
        der.expect(c, der.TAG.SEQUENCE, 'certificate');
        const copy = Buffer.from(c.raw);
        certificateParts(copy);
        certificates.push(copy);
      }
      i++;
    }
    if (fields[i]?.tag === 0xa1) fail('revocation lists in SignedData are not accepted');
    const signerInfos = der.children(der.expect(fields[i], der.TAG.SET, 'signerInfos'));
    if (fields.length !== i + 1) fail('unexpected field after signerInfos');
    if (signerInfos.length > MAX_SIGNERS) fail('too many signers');
    return { contentType, content, certificates, signers: signerInfos.map(parseSignerInfo) };
  });
}

function parseSignerInfo(node: der.Node): SignerInfo {
  const f = der.children(der.expect(node, der.TAG.SEQUENCE, 'SignerInfo'));
  der.readInteger(f[0], 'SignerInfo version');
  const sidNode = f[1] ?? fail('SignerInfo has no sid');
  let sid: SignerInfo['sid'];
  if (sidNode.tag === der.TAG.SEQUENCE) {
    const parts = der.children(sidNode);
    if (parts.length !== 2) fail('issuerAndSerialNumber has an issuer and a serial');
    sid = {
      issuer: Buffer.from(der.expect(parts[0], der.TAG.SEQUENCE, 'issuer').raw),
      serial: Buffer.from(der.readInteger(parts[1], 'serial')),
    };
  } else if (sidNode.tag === 0x80) {
    sid = { subjectKeyIdentifier: Buffer.from(sidNode.content) };
  } else fail('unknown SignerIdentifier');
  const digestOid = readDigestAlgorithm(f[2], 'digestAlgorithm');
  const digest = DIGEST_BY_OID[digestOid] ?? fail(`unsupported digest algorithm ${digestOid}`, 'unsupported-algorithm');
  let i = 3;
  let signedAttributes: SignerInfo['signedAttributes'];
  if (f[i]?.tag === 0xa0) {
    // The signature covers the attributes re-tagged as a DER SET OF (RFC 5652 §5.4).
    const attrs = f[i]!;
    if (attrs.indefinite) fail('signed attributes must be DER');
    signedAttributes = { raw: Buffer.concat([Buffer.from([der.TAG.SET]), attrs.raw.subarray(1)]), list: readAttributes(attrs) };
    i++;
  }
  const signatureAlgorithm = readSignatureAlgorithm(f[i], 'signatureAlgorithm');
  const signature = der.readOctets(f[i + 1]);
  if (f[i + 2]) {
    if (f[i + 2]!.tag !== 0xa1 || f[i + 3]) fail('unexpected field after the signature');
    readAttributes(f[i + 2]!); // unsigned attributes: read (openssl does), not used
  }
  return { sid, digest, signedAttributes, signatureAlgorithm, signature };
}

export function attribute(signer: SignerInfo, type: string): der.Node | undefined {
  return signer.signedAttributes?.list.find((a) => a.type === type)?.values[0];
}

/** The certificate among `certificates` that the signer identifies. */
export function findSignerCertificate(signer: SignerInfo, certificates: Buffer[]): Buffer | undefined {
  return certificates.find((c) => {
    const parts = guard('certificate', () => certificateParts(c));
    if ('subjectKeyIdentifier' in signer.sid) return parts.subjectKeyIdentifier.equals(signer.sid.subjectKeyIdentifier);
    return parts.issuer.equals(signer.sid.issuer) && parts.serial.equals(signer.sid.serial);
  });
}

export interface VerifiedSignature {
  signer: SignerInfo;
  certificate: Buffer;
  /** From the signingTime attribute, when present. */
  signingTime?: Date;
}

/**
 * Verifies that exactly one signer signed `content` (the encapsulated content, or the detached body) with the key
 * of a certificate carried in the SignedData. With signed attributes, contentType and messageDigest are checked.
 * Trust in the certificate is the caller's decision.
 */
export function verifySignedData(signed: SignedData, content: Buffer | undefined = signed.content): VerifiedSignature {
  if (signed.signers.length !== 1) fail(`expected exactly one signer, found ${signed.signers.length}`);
  if (!content) fail('no content to verify');
  const signer = signed.signers[0]!;
  const certificate =
    findSignerCertificate(signer, signed.certificates) ?? fail('the signer certificate is not in the message', 'bad-signature');
  const algorithmDigest = SIGNATURE_DIGEST[signer.signatureAlgorithm];
  if (!(signer.signatureAlgorithm in SIGNATURE_DIGEST))
    fail(`unsupported signature algorithm ${signer.signatureAlgorithm}`, 'unsupported-algorithm');
  if (algorithmDigest && algorithmDigest !== signer.digest) fail('signature and digest algorithms disagree', 'unsupported-algorithm');

  let signedBytes = content;
  let signingTime: Date | undefined;
  if (signer.signedAttributes) {
    const contentType = attribute(signer, OID.contentType);
    if (!contentType || guard('contentType', () => der.readOid(contentType)) !== signed.contentType)
      fail('contentType attribute is missing or wrong', 'bad-signature');
    const messageDigest = attribute(signer, OID.messageDigest);
    const actual = createHash(signer.digest).update(content).digest();
    if (
      !messageDigest ||
      !guard('messageDigest', () => der.expect(messageDigest, der.TAG.OCTET_STRING, 'messageDigest').content).equals(actual)
    )
      fail('messageDigest does not match the content', 'bad-signature');
    const time = attribute(signer, OID.signingTime);
    if (time) signingTime = guard('signingTime', () => der.readTime(time));
    signedBytes = signer.signedAttributes.raw;
  }
  // The whole signer certificate must be readable (validity included): callers judge it after this returns.
  guard('signer certificate', () => readCertificate(certificate));
  const publicKey = guard('signer public key', () => publicKeyFromSpki(certificateParts(certificate).spki));
  let ok = false;
  try {
    ok = verify(signer.digest, signedBytes, publicKey, signer.signature);
  } catch {
    ok = false;
  }
  if (!ok) fail('the signature does not verify', 'bad-signature');
  return { signer, certificate, signingTime };
}

export function issuerAndSerial(certificate: Buffer): Buffer {
  const parts = certificateParts(certificate);
  return der.seq(parts.issuer, der.tlv(der.TAG.INTEGER, parts.serial));
}

export function encodeAttribute(type: string, ...values: Buffer[]): Buffer {
  return der.seq(der.oid(type), der.setOf(...values));
}

/** DER SignedData with one signer and signed attributes (contentType and messageDigest are added here). */
export function buildSignedData(options: {
  contentType?: string;
  content?: Buffer;
  signerCertificate: Buffer;
  signerKey: KeyObject;
  digest: DigestName;
  certificates: Buffer[];
  attributes: Buffer[];
}): Buffer {
  const contentType = options.contentType ?? OID.data;
  const content = options.content ?? Buffer.alloc(0);
  const attributes = [
    encodeAttribute(OID.contentType, der.oid(contentType)),
    encodeAttribute(OID.messageDigest, der.octets(createHash(options.digest).update(content).digest())),
    ...options.attributes,
  ];
  // Signed over as a DER SET OF, carried as [0] IMPLICIT with the same (sorted) contents.
  const sortedAttributes = Buffer.concat([...attributes].sort(Buffer.compare));
  const signedAttrsSet = der.tlv(der.TAG.SET, sortedAttributes);
  const isRsa = options.signerKey.asymmetricKeyType === 'rsa';
  const signature = sign(options.digest, signedAttrsSet, options.signerKey);
  const digestAlgorithm = der.algorithmIdentifier(DIGEST_OID[options.digest], null);
  const signerInfo = der.seq(
    der.smallInteger(1),
    issuerAndSerial(options.signerCertificate),
    digestAlgorithm,
    der.context(0, sortedAttributes),
    isRsa
      ? der.algorithmIdentifier(OID.rsaEncryption, null)
      : der.algorithmIdentifier(options.digest === 'sha384' ? OID.ecdsaWithSHA384 : OID.ecdsaWithSHA256),
    der.octets(signature),
  );
  const encap = options.content ? der.seq(der.oid(contentType), der.context(0, der.octets(content))) : der.seq(der.oid(contentType));
  return contentInfo(
    OID.signedData,
    der.seq(
      der.smallInteger(1),
      der.setOf(digestAlgorithm),
      encap,
      der.context(0, Buffer.concat(options.certificates)),
      der.setOf(signerInfo),
    ),
  );
}

function contentInfo(type: string, content: Buffer): Buffer {
  return der.seq(der.oid(type), der.context(0, content));
}

/** A degenerate certs-only SignedData (RFC 8894 §3.4; the PKCS#7 "p7b" form). */
export function buildCertsOnly(certificates: Buffer[]): Buffer {
  return contentInfo(
    OID.signedData,
    der.seq(der.smallInteger(1), der.setOf(), der.seq(der.oid(OID.data)), der.context(0, Buffer.concat(certificates)), der.setOf()),
  );
}

// --- EnvelopedData ---------------------------------------------------------------------------------------------

export const CONTENT_CIPHERS = {
  [OID.aes128Cbc]: { name: 'aes-128-cbc', label: 'aes-128-cbc', keyLength: 16, ivLength: 16, family: 'aes' },
  [OID.aes192Cbc]: { name: 'aes-192-cbc', label: 'aes-192-cbc', keyLength: 24, ivLength: 16, family: 'aes' },
  [OID.aes256Cbc]: { name: 'aes-256-cbc', label: 'aes-256-cbc', keyLength: 32, ivLength: 16, family: 'aes' },
  [OID.desEde3Cbc]: { name: 'des-ede3-cbc', label: 'des-ede3-cbc', keyLength: 24, ivLength: 8, family: 'des3' },
  // Single DES, only for legacy clients that know nothing else (micromdm's scepclient always sends it). OpenSSL 3
  // keeps DES-CBC in its legacy provider; EDE3 with K1 = K2 = K3 is the same cipher, so it runs on the default one.
  [OID.desCbc]: { name: 'des-ede3-cbc', label: 'des-cbc', keyLength: 8, ivLength: 8, family: 'des' },
} as const;

/** The key the cipher implementation takes: single DES runs as EDE3 with the key three times. */
function cipherKey(cipher: (typeof CONTENT_CIPHERS)[ContentCipherOid], key: Buffer): Buffer {
  return cipher.family === 'des' ? Buffer.concat([key, key, key]) : key;
}
export type ContentCipherOid = keyof typeof CONTENT_CIPHERS;
export type CipherFamily = (typeof CONTENT_CIPHERS)[ContentCipherOid]['family'];

export interface KeyTransRecipient {
  rid: { issuer: Buffer; serial: Buffer } | { subjectKeyIdentifier: Buffer };
  keyEncryptionAlgorithm: string;
  encryptedKey: Buffer;
}

export interface EnvelopedData {
  recipients: KeyTransRecipient[];
  cipherOid: string;
  iv: Buffer;
  encryptedContent: Buffer;
}

/** Parses EnvelopedData, given either as a ContentInfo or bare (SCEP's pkcsPKIEnvelope is a ContentInfo). */
export function parseEnvelopedData(input: Buffer): EnvelopedData {
  return guard('EnvelopedData', () => {
    let node = der.parse(input);
    let fields = der.children(der.expect(node, der.TAG.SEQUENCE, 'EnvelopedData'));
    if (fields[0]?.tag === der.TAG.OID) {
      if (der.readOid(fields[0]) !== OID.envelopedData) fail('ContentInfo does not hold EnvelopedData');
      node = der.child(der.expect(fields[1], 0xa0, 'ContentInfo content'), 0, 'EnvelopedData');
      fields = der.children(der.expect(node, der.TAG.SEQUENCE, 'EnvelopedData'));
    }
    der.expect(fields[0], der.TAG.INTEGER, 'EnvelopedData version');
    let i = 1;
    if (fields[i]?.tag === 0xa0) i++; // originatorInfo
    const recipients: KeyTransRecipient[] = [];
    const infos = der.children(der.expect(fields[i], der.TAG.SET, 'recipientInfos'));
    if (infos.length > MAX_SIGNERS) fail('too many recipients');
    for (const ri of infos) {
      if (ri.tag !== der.TAG.SEQUENCE) continue; // only KeyTransRecipientInfo is for us
      const [, rid, alg, key] = der.children(ri);
      if (!rid) fail('KeyTransRecipientInfo has no rid');
      let parsedRid: KeyTransRecipient['rid'];
      if (rid.tag === der.TAG.SEQUENCE) {
        const [issuer, serial] = der.children(rid);
        parsedRid = {
          issuer: Buffer.from(der.expect(issuer, der.TAG.SEQUENCE, 'issuer').raw),
          serial: Buffer.from(der.expect(serial, der.TAG.INTEGER, 'serial').content),
        };
      } else if (rid.tag === 0x80) parsedRid = { subjectKeyIdentifier: Buffer.from(rid.content) };
      else fail('unknown RecipientIdentifier');
      recipients.push({
        rid: parsedRid,
        keyEncryptionAlgorithm: der.readOid(der.children(der.expect(alg, der.TAG.SEQUENCE, 'keyEncryptionAlgorithm'))[0]),
        encryptedKey: der.readOctets(key),
      });
    }
    const eci = der.children(der.expect(fields[i + 1], der.TAG.SEQUENCE, 'EncryptedContentInfo'));
    const algorithm = der.children(der.expect(eci[1], der.TAG.SEQUENCE, 'contentEncryptionAlgorithm'));
    const cipherOid = der.readOid(algorithm[0]);
    const iv = algorithm[1] ? der.readOctets(algorithm[1]) : Buffer.alloc(0);
    // [0] IMPLICIT OCTET STRING: primitive 0x80, or constructed 0xa0 made of primitive OCTET STRING segments.
    const encryptedContent = der.implicitOctets(eci[2] ?? fail('EnvelopedData has no encrypted content'), 0x80, 'encryptedContent');
    return { recipients, cipherOid, iv, encryptedContent };
  });
}

export function cipherOf(envelope: EnvelopedData): (typeof CONTENT_CIPHERS)[ContentCipherOid] {
  const cipher = CONTENT_CIPHERS[envelope.cipherOid as ContentCipherOid];
  if (!cipher) fail(`unsupported content encryption algorithm ${envelope.cipherOid}`, 'unsupported-algorithm');
  if (envelope.iv.length !== cipher.ivLength) fail('content encryption IV has the wrong length');
  return cipher;
}

/** Finds the recipient entry addressed to `certificate`. */
export function recipientFor(envelope: EnvelopedData, certificate: Buffer): KeyTransRecipient | undefined {
  const parts = certificateParts(certificate);
  return envelope.recipients.find((r) =>
    'subjectKeyIdentifier' in r.rid
      ? r.rid.subjectKeyIdentifier.equals(parts.subjectKeyIdentifier)
      : r.rid.issuer.equals(parts.issuer) && r.rid.serial.equals(parts.serial),
  );
}

/**
 * Decrypts the content with an already-unwrapped content key. A wrong key (including the synthetic key of an
 * implicit rejection) fails here as a CBC padding error — one error for every cause.
 */
export function decryptContent(envelope: EnvelopedData, contentKey: Buffer): Buffer {
  const cipher = cipherOf(envelope);
  try {
    const decipher = createDecipheriv(cipher.name, cipherKey(cipher, contentKey), envelope.iv);
    return Buffer.concat([decipher.update(envelope.encryptedContent), decipher.final()]);
  } catch {
    fail('the enveloped content does not decrypt', 'bad-signature');
  }
}

/** EnvelopedData (as ContentInfo) for one RSA recipient, with RSA PKCS#1 v1.5 key transport. */
export function buildEnvelopedData(content: Buffer, recipientCertificate: Buffer, cipherOid: ContentCipherOid): Buffer {
  const cipher = CONTENT_CIPHERS[cipherOid];
  const key = randomBytes(cipher.keyLength);
  const iv = randomBytes(cipher.ivLength);
  const c = createCipheriv(cipher.name, cipherKey(cipher, key), iv);
  const encrypted = Buffer.concat([c.update(content), c.final()]);
  const publicKey = publicKeyFromSpki(certificateParts(recipientCertificate).spki);
  const encryptedKey = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, key);
  const recipient = der.seq(
    der.smallInteger(0),
    issuerAndSerial(recipientCertificate),
    der.algorithmIdentifier(OID.rsaEncryption, null),
    der.octets(encryptedKey),
  );
  return contentInfo(
    OID.envelopedData,
    der.seq(
      der.smallInteger(0),
      der.setOf(recipient),
      der.seq(der.oid(OID.data), der.algorithmIdentifier(cipherOid, der.octets(iv)), der.context(0, encrypted, true)),
    ),
  );
}
