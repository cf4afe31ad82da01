import { sign, verify } from 'node:crypto';
import { formatName } from './certificate.ts';
import * as der from './der.ts';
import { OID, readSignatureAlgorithm, SIGNATURE_DIGEST } from './oids.ts';
import { publicKeyFromSpki } from './public-keys.ts';

/** A PKCS#10 CertificationRequest (RFC 2986), read without trusting any of it. */
export interface CertificationRequest {
  raw: Buffer;
  info: Buffer;
  subject: Buffer;
  subjectText: string;
  spki: Buffer;
  challengePassword?: string;
  extensions: { id: string; critical: boolean; value: Buffer }[];
  signatureAlgorithm: string;
  signature: Buffer;
}

export class CsrError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CsrError';
  }
}

/** More attributes or extensions than any client sends (a handful). */
const MAX_ATTRIBUTES = 32;

/**
 * Reads a CSR. Everything certmdm later reads from it — subject, attributes, and the value of every extension it
 * understands — is decoded here, so a malformed request is refused as a CsrError now, not as a crash later.
 */
export function parseCsr(input: Buffer): CertificationRequest {
  try {
    const outer = der.children(der.expect(der.parse(input), der.TAG.SEQUENCE, 'CertificationRequest'));
    if (outer.length !== 3) throw new CsrError('a CertificationRequest has three fields');
    const [infoNode, algNode, sigNode] = outer;
    const info = der.expect(infoNode, der.TAG.SEQUENCE, 'CertificationRequestInfo');
    const [version, subject, spki, attributes] = der.children(info);
    der.readInteger(version, 'version');
    if (der.readSmallInteger(version, 0, 'version') !== 0) throw new CsrError('unsupported CSR version');
    der.expect(subject, der.TAG.SEQUENCE, 'subject');
    der.expect(spki, der.TAG.SEQUENCE, 'subjectPKInfo');
    let challengePassword: string | undefined;
    const extensions: CertificationRequest['extensions'] = [];
    if (attributes) {
      const list = der.children(der.expect(attributes, 0xa0, 'attributes'));
      if (list.length > MAX_ATTRIBUTES) throw new CsrError('too many CSR attributes');
      for (const attr of list) {
        const parts = der.children(der.expect(attr, der.TAG.SEQUENCE, 'attribute'));
        if (parts.length !== 2) throw new CsrError('an attribute has a type and values');
        const id = der.readOid(parts[0]);
        const first = der.children(der.expect(parts[1], der.TAG.SET, 'attribute values'))[0];
        if (!first) throw new CsrError('an attribute needs a value');
        if (id === OID.challengePassword) challengePassword = der.readString(first);
        if (id === OID.extensionRequest) {
          const requested = der.children(der.expect(first, der.TAG.SEQUENCE, 'extensionRequest'));
          if (requested.length + extensions.length > MAX_ATTRIBUTES) throw new CsrError('too many requested extensions');
          for (const ext of requested) {
            const parts = der.children(der.expect(ext, der.TAG.SEQUENCE, 'Extension'));
            if (parts.length < 2 || parts.length > 3) throw new CsrError('an Extension has two or three fields');
            const critical = parts.length === 3 && der.readBoolean(parts[1], 'Extension critical');
            extensions.push({ id: der.readOid(parts[0]), critical, value: Buffer.from(der.readOctets(parts[parts.length - 1])) });
          }
        }
      }
    }
    const signature = der.expect(sigNode, der.TAG.BIT_STRING, 'signature').content;
    if (signature.length < 1 || signature[0] !== 0) throw new CsrError('the CSR signature must be whole bytes');
    const csr: CertificationRequest = {
      raw: input,
      info: Buffer.from(info.raw),
      subject: Buffer.from(subject!.raw),
      subjectText: formatName(Buffer.from(subject!.raw)),
      spki: Buffer.from(spki!.raw),
      challengePassword,
      extensions,
      signatureAlgorithm: readSignatureAlgorithm(algNode, 'signatureAlgorithm'),
      signature: Buffer.from(signature.subarray(1)),
    };
    // Every extension value certmdm reads is decoded now, so a malformed one is refused as the request's fault.
    requestedUsage(csr);
    return csr;
  } catch (err) {
    if (err instanceof CsrError) throw err;
    if (err instanceof der.DerError) throw new CsrError(`malformed certification request: ${err.message}`);
    throw err;
  }
}

/** Proof of possession: the CSR is signed by the key it asks a certificate for. */
export function csrSignatureValid(csr: CertificationRequest): boolean {
  const digest = SIGNATURE_DIGEST[csr.signatureAlgorithm];
  if (!digest) return false;
  try {
    const key = publicKeyFromSpki(csr.spki);
    return verify(digest, csr.info, key, csr.signature);
  } catch {
    return false;
  }
}

export interface RequestedUsage {
  ca: boolean;
  keyUsage: Set<string>;
  extendedKeyUsage: string[];
  subjectAltName: { dns: string[]; email: string[]; uri: string[]; other: number };
}

const KEY_USAGE_NAMES = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
];

/** What the requester asks for in its extensionRequest; policy decides what of it to grant. */
export function requestedUsage(csr: CertificationRequest): RequestedUsage {
  try {
    return decodeRequestedUsage(csr.extensions);
  } catch (err) {
    if (err instanceof der.DerError) throw new CsrError(`malformed extension in the certification request: ${err.message}`);
    throw err;
  }
}

/** Decodes the extensions certmdm understands; a malformed value throws DerError. */
function decodeRequestedUsage(extensions: CertificationRequest['extensions']): RequestedUsage {
  const out: RequestedUsage = {
    ca: false,
    keyUsage: new Set(),
    extendedKeyUsage: [],
    subjectAltName: { dns: [], email: [], uri: [], other: 0 },
  };
  for (const ext of extensions) {
    if (ext.id === OID.basicConstraints) {
      const fields = der.children(der.expect(der.parse(ext.value), der.TAG.SEQUENCE, 'basicConstraints'));
      const first = fields[0];
      if (first?.tag === der.TAG.BOOLEAN && first.content.length !== 1) throw new der.DerError('basicConstraints cA is not a BOOLEAN');
      out.ca = first?.tag === der.TAG.BOOLEAN && first.content[0] !== 0;
    } else if (ext.id === OID.keyUsage) {
      const node = der.expect(der.parse(ext.value), der.TAG.BIT_STRING, 'keyUsage');
      if (node.content.length < 1) throw new der.DerError('keyUsage BIT STRING is empty');
      const bits = node.content.subarray(1);
      KEY_USAGE_NAMES.forEach((name, i) => {
        if ((bits[Math.floor(i / 8)] ?? 0) & (0x80 >> (i % 8))) out.keyUsage.add(name);
      });
    } else if (ext.id === OID.extKeyUsage) {
      out.extendedKeyUsage = der.children(der.expect(der.parse(ext.value), der.TAG.SEQUENCE, 'extKeyUsage')).map((n) => der.readOid(n));
    } else if (ext.id === OID.subjectAltName) {
      for (const name of der.children(der.expect(der.parse(ext.value), der.TAG.SEQUENCE, 'subjectAltName'))) {
        const text = name.content.toString('latin1');
        if (name.tag === 0x82) out.subjectAltName.dns.push(text);
        else if (name.tag === 0x81) out.subjectAltName.email.push(text);
        else if (name.tag === 0x86) out.subjectAltName.uri.push(text);
        else out.subjectAltName.other++;
      }
    }
  }
  return out;
}

/** Builds a PKCS#10 request signed with SHA-256 (clients and the simulator; the server only reads them). */
export function buildCsr(options: {
  subject: Buffer;
  publicKey: import('node:crypto').KeyObject;
  privateKey: import('node:crypto').KeyObject;
  challengePassword?: string;
}): Buffer {
  const spki = options.publicKey.export({ type: 'spki', format: 'der' });
  const attributes = options.challengePassword
    ? [der.seq(der.oid(OID.challengePassword), der.setOf(der.printable(options.challengePassword)))]
    : [];
  const info = der.seq(der.smallInteger(0), options.subject, spki, der.context(0, Buffer.concat(attributes)));
  const signature = sign('sha256', info, options.privateKey);
  return der.seq(info, der.algorithmIdentifier(OID.sha256WithRSAEncryption, null), der.bitString(signature));
}
