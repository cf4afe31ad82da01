import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { signatureAlgorithmFor, signWith } from './algorithms.ts';
import * as der from './der.ts';
import { readSignatureAlgorithm } from './oids.ts';

/** A distinguished name as ordered (attribute, value) pairs, most significant first. */
export type DistinguishedName = ReadonlyArray<readonly [NameAttribute, string]>;
export type NameAttribute = 'C' | 'ST' | 'L' | 'O' | 'OU' | 'CN' | 'UID' | 'serialNumber';

const NAME_OIDS: Record<NameAttribute, string> = {
  C: '2.5.4.6',
  ST: '2.5.4.8',
  L: '2.5.4.7',
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

export type KeyUsage =
  | 'digitalSignature'
  | 'nonRepudiation'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign'
  | 'encipherOnly'
  | 'decipherOnly';

export interface CertificateTemplate {
  subject: DistinguishedName;
  /** The subject's public key, or its SubjectPublicKeyInfo DER as a CSR carries it. */
  publicKey: KeyObject | Buffer;
  notBefore: Date;
  notAfter: Date;
  /** Present for CA certificates; pathLength 0 means it may issue only end-entity certificates. */
  ca?: { pathLength?: number };
  keyUsage: KeyUsage[];
  extendedKeyUsage?: string[];
  subjectAltName?: { dns?: string[]; ip?: string[]; email?: string[]; uri?: string[] };
}

/** What an issuer contributes to a certificate it signs. */
export interface Issuer {
  certificate: Buffer;
  privateKey: KeyObject;
}

export function encodeName(dn: DistinguishedName): Buffer {
  return der.seq(
    ...dn.map(([attribute, value]) =>
      der.setOf(der.seq(der.oid(NAME_OIDS[attribute]), attribute === 'C' ? der.printable(value) : der.utf8(value))),
    ),
  );
}

/** A random positive serial of 127 bits: well above the CA/B Forum's 64-bit floor, and never negative. */
export function randomSerial(): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  return serial;
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents (after the unused-bits byte). */
export function subjectKeyIdentifier(spkiDer: Buffer): Buffer {
  const [, bits] = der.children(der.parse(spkiDer));
  if (!bits || bits.tag !== der.TAG.BIT_STRING || bits.content.length < 1)
    throw new der.DerError('SubjectPublicKeyInfo without a BIT STRING');
  return createHash('sha1').update(bits.content.subarray(1)).digest();
}

/** The raw pieces of a certificate that issuing and chain building need, found without a full decode. */
export interface CertificateParts {
  tbs: Buffer;
  serial: Buffer;
  issuer: Buffer;
  subject: Buffer;
  spki: Buffer;
  subjectKeyIdentifier: Buffer;
  signatureAlgorithm: string;
  signature: Buffer;
}

const partsCache = new WeakMap<Buffer, CertificateParts>();
/**
 * Parsed certificates by content as well: a device presents the same certificate on every check-in, each time in a
 * fresh Buffer. Anyone can make the server parse certificates (a SCEP body, an Mdm-Signature header), so the cache is
 * bounded in entries and in bytes: keyed by SHA-256, holding its own copy of each certificate (never a slice of a
 * larger request body), and only certificates of a device identity's size. At most 4096 × 8 KiB = 32 MiB; the oldest
 * entry goes first. Only certificates that parsed are remembered.
 */
const partsByContent = new Map<string, CertificateParts>();
const factsCache = new WeakMap<CertificateParts, CertificateFacts>();
const CONTENT_CACHE_LIMIT = 4096;
const CONTENT_CACHE_MAX_CERTIFICATE = 8 * 1024;

/** Directory string types a Name's attribute values may use (X.520 DirectoryString, IA5String, and kin). */
const NAME_VALUE_TAGS = new Set([0x0c, 0x12, 0x13, 0x14, 0x16, 0x1a, 0x1c, 0x1e]);

/** A Name: SEQUENCE OF SET OF (OID, string). Throws DerError for anything else. */
function checkName(name: der.Node, what: string): void {
  for (const rdn of der.children(der.expect(name, der.TAG.SEQUENCE, what))) {
    const atvs = der.children(der.expect(rdn, der.TAG.SET, `${what} RDN`));
    if (atvs.length === 0) throw new der.DerError(`${what}: empty RDN`);
    for (const atv of atvs) {
      const fields = der.children(der.expect(atv, der.TAG.SEQUENCE, `${what} attribute`));
      if (fields.length !== 2) throw new der.DerError(`${what}: an attribute has a type and a value`);
      der.readOid(fields[0]);
      if (!NAME_VALUE_TAGS.has(fields[1]!.tag)) throw new der.DerError(`${what}: attribute value is not a string`);
    }
  }
}

/**
 * The fields of a TBSCertificate by name, checked as strictly as openssl reads them (RFC 5280 §4.1): so certmdm
 * never accepts a certificate that openssl would refuse. `version` is absent for a v1 certificate.
 */
function tbsFields(tbs: der.Node) {
  const fields = der.children(der.expect(tbs, der.TAG.SEQUENCE, 'TBSCertificate'));
  let i = 0;
  if (fields[0]?.tag === 0xa0) {
    const explicit = der.children(fields[0]);
    if (explicit.length !== 1) throw new der.DerError('version [0] holds one INTEGER');
    der.readInteger(explicit[0], 'version');
    der.readSmallInteger(explicit[0], 2, 'version');
    i = 1;
  }
  const serial = fields[i];
  der.readInteger(serial, 'serialNumber');
  const signature = fields[i + 1];
  readSignatureAlgorithm(signature, 'TBSCertificate signature');
  const issuer = der.expect(fields[i + 2], der.TAG.SEQUENCE, 'issuer');
  checkName(issuer, 'issuer');
  const validity = der.children(der.expect(fields[i + 3], der.TAG.SEQUENCE, 'validity'));
  if (validity.length !== 2) throw new der.DerError('validity has notBefore and notAfter');
  const notBefore = der.readTime(validity[0]);
  const notAfter = der.readTime(validity[1]);
  const subject = der.expect(fields[i + 4], der.TAG.SEQUENCE, 'subject');
  checkName(subject, 'subject');
  const spki = der.expect(fields[i + 5], der.TAG.SEQUENCE, 'SubjectPublicKeyInfo');
  const spkiFields = der.children(spki);
  if (spkiFields.length !== 2) throw new der.DerError('SubjectPublicKeyInfo has an algorithm and a key');
  der.readAlgorithm(spkiFields[0], 'SubjectPublicKeyInfo algorithm');
  const key = der.expect(spkiFields[1], der.TAG.BIT_STRING, 'subjectPublicKey');
  if (key.content.length < 1 || key.content[0] !== 0) throw new der.DerError('subjectPublicKey must be whole bytes');
  // Then issuerUniqueID [1], subjectUniqueID [2], extensions [3], each optional, in that order, and nothing else.
  let extensions: der.Node | undefined;
  let last = 0;
  for (const field of fields.slice(i + 6)) {
    const n = field.tag === 0x81 ? 1 : field.tag === 0x82 ? 2 : field.tag === 0xa3 ? 3 : 0;
    if (n <= last) throw new der.DerError('unexpected field in TBSCertificate');
    last = n;
    if (n === 3) extensions = field;
  }
  if (extensions) {
    const list = der.children(extensions);
    if (list.length !== 1) throw new der.DerError('extensions [3] holds one SEQUENCE');
    const seen = new Set<string>();
    for (const ext of der.children(der.expect(list[0], der.TAG.SEQUENCE, 'Extensions'))) {
      const parts = der.children(der.expect(ext, der.TAG.SEQUENCE, 'Extension'));
      if (parts.length < 2 || parts.length > 3) throw new der.DerError('an Extension has two or three fields');
      const id = der.readOid(parts[0]);
      if (seen.has(id)) throw new der.DerError(`extension ${id} appears twice`);
      seen.add(id);
      if (parts.length === 3) der.readBoolean(parts[1], 'critical');
      const value = der.expect(parts[parts.length - 1], der.TAG.OCTET_STRING, 'extnValue');
      der.parse(value.content); // one whole element, as openssl requires when it decodes the extension
    }
  }
  return { serial: serial!, signature: signature!, issuer, notBefore, notAfter, subject, spki, extensions };
}

export function certificateParts(certificate: Buffer): CertificateParts {
  const cached = partsCache.get(certificate);
  if (cached) return cached;
  const cacheable = certificate.length <= CONTENT_CACHE_MAX_CERTIFICATE;
  const key = cacheable ? createHash('sha256').update(certificate).digest('base64') : undefined;
  const known = key === undefined ? undefined : partsByContent.get(key);
  if (known) {
    partsCache.set(certificate, known);
    return known;
  }
  const parts = parseCertificateParts(key === undefined ? certificate : ownCopy(certificate));
  partsCache.set(certificate, parts);
  if (key !== undefined) {
    if (partsByContent.size >= CONTENT_CACHE_LIMIT) partsByContent.delete(partsByContent.keys().next().value!);
    partsByContent.set(key, parts);
  }
  return parts;
}

/** A copy in memory of its own (not a slice of the shared pool), so a cached entry holds exactly its bytes. */
function ownCopy(bytes: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(copy);
  return copy;
}

/** What the content cache holds (for its bound's test). */
export function certificateCacheFootprint(): { entries: number; bytes: number } {
  let bytes = 0;
  for (const parts of partsByContent.values()) bytes += parts.tbs.buffer.byteLength;
  return { entries: partsByContent.size, bytes };
}

function parseCertificateParts(certificate: Buffer): CertificateParts {
  const outer = der.children(der.expect(der.parse(certificate), der.TAG.SEQUENCE, 'Certificate'));
  if (outer.length !== 3) throw new der.DerError('a Certificate has three fields');
  const [tbsNode, algNode, sigNode] = outer;
  const tbs = der.expect(tbsNode, der.TAG.SEQUENCE, 'TBSCertificate');
  const fields = tbsFields(tbs);
  let ski: Buffer | undefined;
  if (fields.extensions) {
    for (const ext of der.children(der.children(fields.extensions)[0])) {
      const parts = der.children(ext);
      if (der.readOid(parts[0]) === ID_SUBJECT_KEY_IDENTIFIER)
        ski = der.expect(der.parse(der.readOctets(parts[parts.length - 1])), der.TAG.OCTET_STRING, 'subjectKeyIdentifier').content;
    }
  }
  // RFC 5280 §4.1.1.2: the outer algorithm must be the one the signed TBSCertificate names (openssl refuses others).
  if (!der.expect(algNode, der.TAG.SEQUENCE, 'signatureAlgorithm').raw.equals(fields.signature.raw))
    throw new der.DerError('signatureAlgorithm differs from the TBSCertificate signature field');
  const signature = der.expect(sigNode, der.TAG.BIT_STRING, 'signatureValue').content;
  if (signature.length < 1 || signature[0] !== 0) throw new der.DerError('signatureValue must be whole bytes');
  const parts: CertificateParts = {
    tbs: tbs.raw,
    serial: fields.serial.content,
    issuer: fields.issuer.raw,
    subject: fields.subject.raw,
    spki: fields.spki.raw,
    subjectKeyIdentifier: ski ?? subjectKeyIdentifier(fields.spki.raw),
    signatureAlgorithm: readSignatureAlgorithm(algNode, 'signatureAlgorithm'),
    signature: signature.subarray(1),
  };
  return parts;
}

const ID_SUBJECT_KEY_IDENTIFIER = '2.5.29.14';
const ID_KEY_USAGE = '2.5.29.15';
const ID_SUBJECT_ALT_NAME = '2.5.29.17';
const ID_BASIC_CONSTRAINTS = '2.5.29.19';
const ID_AUTHORITY_KEY_IDENTIFIER = '2.5.29.35';
const ID_EXT_KEY_USAGE = '2.5.29.37';

const KEY_USAGE_BITS: Record<KeyUsage, number> = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
};

/** A DER named-bit BIT STRING: trailing zero bits are dropped (X.690 §11.2.2). */
function keyUsageBits(usages: KeyUsage[]): Buffer {
  const bits = usages.map((u) => KEY_USAGE_BITS[u]);
  const highest = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const bit of bits) bytes[Math.floor(bit / 8)]! |= 0x80 >> (bit % 8);
  return der.bitString(bytes, 7 - (highest % 8));
}

function ipBytes(address: string): Buffer {
  if (isIP(address) === 4) return Buffer.from(address.split('.').map(Number));
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.from(
    groups.flatMap((g) => {
      const n = parseInt(g, 16);
      return [n >> 8, n & 0xff];
    }),
  );
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? der.seq(der.oid(id), der.bool(true), der.octets(value)) : der.seq(der.oid(id), der.octets(value));
}

/**
 * Builds and signs an X.509 v3 certificate. With no issuer the certificate is self-signed by `selfSigningKey`.
 * Extensions are the ones a security engineer expects: basicConstraints (critical) always, keyUsage (critical),
 * SKI, AKI (except on a self-signed root, where it would only repeat the SKI), EKU and SAN when asked.
 */
export function buildCertificate(
  template: CertificateTemplate,
  issuer: Issuer | { selfSigningKey: KeyObject },
  serial: Buffer = randomSerial(),
): Buffer {
  const signingKey = 'selfSigningKey' in issuer ? issuer.selfSigningKey : issuer.privateKey;
  const issuerParts = 'certificate' in issuer ? certificateParts(issuer.certificate) : undefined;
  const subject = encodeName(template.subject);
  const spki = Buffer.isBuffer(template.publicKey) ? template.publicKey : template.publicKey.export({ type: 'spki', format: 'der' });

  const basicConstraints = template.ca
    ? der.seq(der.bool(true), ...(template.ca.pathLength === undefined ? [] : [der.smallInteger(template.ca.pathLength)]))
    : der.seq();
  const extensions = [
    extension(ID_BASIC_CONSTRAINTS, true, basicConstraints),
    extension(ID_KEY_USAGE, true, keyUsageBits(template.keyUsage)),
    extension(ID_SUBJECT_KEY_IDENTIFIER, false, der.octets(subjectKeyIdentifier(spki))),
  ];
  if (issuerParts) {
    extensions.push(extension(ID_AUTHORITY_KEY_IDENTIFIER, false, der.seq(der.context(0, issuerParts.subjectKeyIdentifier, true))));
  }
  if (template.extendedKeyUsage?.length) {
    extensions.push(extension(ID_EXT_KEY_USAGE, false, der.seq(...template.extendedKeyUsage.map(der.oid))));
  }
  const san = [
    ...(template.subjectAltName?.dns ?? []).map((name) => der.context(2, Buffer.from(name, 'latin1'), true)),
    ...(template.subjectAltName?.ip ?? []).map((address) => der.context(7, ipBytes(address), true)),
    ...(template.subjectAltName?.email ?? []).map((email) => der.context(1, Buffer.from(email, 'latin1'), true)),
    ...(template.subjectAltName?.uri ?? []).map((uri) => der.context(6, Buffer.from(uri, 'latin1'), true)),
  ];
  // RFC 5280: SAN is critical only when the subject is empty; ours always has a CN.
  if (san.length) extensions.push(extension(ID_SUBJECT_ALT_NAME, false, der.seq(...san)));

  const algorithm = signatureAlgorithmFor(signingKey);
  const signatureAlgorithm = der.algorithmIdentifier(algorithm.oid, algorithm.nullParameters ? null : undefined);
  const tbs = der.seq(
    der.context(0, der.smallInteger(2)),
    der.unsignedInteger(serial),
    signatureAlgorithm,
    issuerParts ? issuerParts.subject : subject,
    der.seq(der.time(template.notBefore), der.time(template.notAfter)),
    subject,
    spki,
    der.context(3, der.seq(...extensions)),
  );
  return der.seq(tbs, signatureAlgorithm, der.bitString(signWith(signingKey, tbs)));
}

export function toPem(der: Buffer, label = 'CERTIFICATE'): string {
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

/** The facts the inventory keeps about a certificate, read back from its DER (not from what we meant to write). */
export interface CertificateFacts {
  readonly subject: string;
  readonly issuer: string;
  readonly serialHex: string;
  readonly fingerprintSha256: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

const SHORT_NAMES: Record<string, string> = Object.fromEntries(Object.entries(NAME_OIDS).map(([k, v]) => [v, k]));

/** A Name as 'O=Example, CN=device', most significant first (the order openssl -nameopt RFC2253 reverses). */
export function formatName(nameDer: Buffer): string {
  return nameAttributes(nameDer)
    .map(([id, value]) => `${SHORT_NAMES[id] ?? id}=${value}`)
    .join(', ');
}

/** (OID, value) pairs of a Name in order; `attribute` is set for the types certmdm knows. */
export function nameAttributes(nameDer: Buffer): [string, string, NameAttribute | undefined][] {
  const name = der.parse(nameDer);
  checkName(name, 'Name');
  return der
    .children(name)
    .flatMap((rdn) => der.children(der.expect(rdn, der.TAG.SET, 'RelativeDistinguishedName')))
    .map((atv) => {
      const [type, value] = der.children(der.expect(atv, der.TAG.SEQUENCE, 'AttributeTypeAndValue'));
      const id = der.readOid(type);
      return [id, der.readString(value), SHORT_NAMES[id] as NameAttribute | undefined];
    });
}

export function readCertificate(certificate: Buffer): CertificateFacts {
  const parts = certificateParts(certificate);
  const known = factsCache.get(parts);
  if (known) return known;
  const { notBefore, notAfter } = tbsFields(der.parse(parts.tbs));
  const facts: CertificateFacts = {
    subject: formatName(parts.subject),
    issuer: formatName(parts.issuer),
    serialHex: parts.serial.toString('hex').replace(/^00(?=[89a-f])/, ''),
    fingerprintSha256: createHash('sha256').update(certificate).digest('hex'),
    notBefore,
    notAfter,
  };
  // Shared by every caller that reads the same certificate: frozen so none can change it for the others.
  factsCache.set(parts, Object.freeze(facts));
  return facts;
}
