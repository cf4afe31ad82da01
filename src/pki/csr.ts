import { sign, verify } from 'node:crypto';
import { formatName } from './certificate.ts';
import * as der from './der.ts';
import { OID, SIGNATURE_DIGEST } from './oids.ts';
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

export function parseCsr(input: Buffer): CertificationRequest {
  try {
    const [infoNode, algNode, sigNode] = der.children(der.expect(der.parse(input), der.TAG.SEQUENCE, 'CertificationRequest'));
    const info = der.expect(infoNode, der.TAG.SEQUENCE, 'CertificationRequestInfo');
    const [version, subject, spki, attributes] = der.children(info);
    der.expect(version, der.TAG.INTEGER, 'version');
    der.expect(subject, der.TAG.SEQUENCE, 'subject');
    der.expect(spki, der.TAG.SEQUENCE, 'subjectPKInfo');
    let challengePassword: string | undefined;
    const extensions: CertificationRequest['extensions'] = [];
    if (attributes) {
      for (const attr of der.children(der.expect(attributes, 0xa0, 'attributes'))) {
        const [type, values] = der.children(attr);
        const id = der.readOid(type!);
        const first = der.children(der.expect(values, der.TAG.SET, 'attribute values'))[0];
        if (!first) continue;
        if (id === OID.challengePassword) challengePassword = der.readString(first);
        if (id === OID.extensionRequest) {
          for (const ext of der.children(first)) {
            const parts = der.children(ext);
            const critical = parts.length === 3 && parts[1]!.tag === der.TAG.BOOLEAN && parts[1]!.content[0] !== 0;
            extensions.push({ id: der.readOid(parts[0]!), critical, value: Buffer.from(der.readOctets(parts[parts.length - 1]!)) });
          }
        }
      }
    }
    return {
      raw: input,
      info: Buffer.from(info.raw),
      subject: Buffer.from(subject!.raw),
      subjectText: formatName(Buffer.from(subject!.raw)),
      spki: Buffer.from(spki!.raw),
      challengePassword,
      extensions,
      signatureAlgorithm: der.readOid(der.children(der.expect(algNode, der.TAG.SEQUENCE, 'signatureAlgorithm'))[0]!),
      signature: Buffer.from(der.expect(sigNode, der.TAG.BIT_STRING, 'signature').content.subarray(1)),
    };
  } catch (err) {
    if (err instanceof CsrError) throw err;
    throw new CsrError(`malformed certification request: ${err instanceof Error ? err.message : String(err)}`);
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

/**
 * What the requester asks for in its extensionRequest; policy decides what of it to grant. An extension value that
 * is not the structure its OID defines is a CsrError, as any other malformed part of the request is.
 */
export function requestedUsage(csr: CertificationRequest): RequestedUsage {
  const out: RequestedUsage = {
    ca: false,
    keyUsage: new Set(),
    extendedKeyUsage: [],
    subjectAltName: { dns: [], email: [], uri: [], other: 0 },
  };
  for (const ext of csr.extensions) {
    try {
      if (ext.id === OID.basicConstraints) {
        const first = der.children(der.expect(der.parse(ext.value), der.TAG.SEQUENCE, 'basicConstraints'))[0];
        out.ca = first?.tag === der.TAG.BOOLEAN && first.content[0] !== 0;
      } else if (ext.id === OID.keyUsage) {
        const bits = der.expect(der.parse(ext.value), der.TAG.BIT_STRING, 'keyUsage').content.subarray(1);
        KEY_USAGE_NAMES.forEach((name, i) => {
          if ((bits[Math.floor(i / 8)] ?? 0) & (0x80 >> (i % 8))) out.keyUsage.add(name);
        });
      } else if (ext.id === OID.extKeyUsage) {
        out.extendedKeyUsage = der.children(der.expect(der.parse(ext.value), der.TAG.SEQUENCE, 'extKeyUsage')).map(der.readOid);
      } else if (ext.id === OID.subjectAltName) {
        for (const name of der.children(der.expect(der.parse(ext.value), der.TAG.SEQUENCE, 'subjectAltName'))) {
          const text = name.content.toString('latin1');
          if (name.tag === 0x82) out.subjectAltName.dns.push(text);
          else if (name.tag === 0x81) out.subjectAltName.email.push(text);
          else if (name.tag === 0x86) out.subjectAltName.uri.push(text);
          else out.subjectAltName.other++;
        }
      }
    } catch (err) {
      throw new CsrError(`malformed extension ${ext.id} in the request: ${err instanceof Error ? err.message : String(err)}`);
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
