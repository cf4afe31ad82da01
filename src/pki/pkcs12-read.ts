import { createDecipheriv, createHash, createHmac, createPrivateKey, pbkdf2Sync, timingSafeEqual, type KeyObject } from 'node:crypto';
import * as der from './der.ts';
import { pkcs12Kdf } from './pkcs12.ts';

/**
 * Reads a PKCS#12 file (RFC 7292): MAC check, then certificate and key bags, decrypting PBES2 (PBKDF2 with
 * AES-CBC — OpenSSL 3's default) and pbeWithSHAAnd3-KeyTripleDES-CBC. RC2-40 (`openssl pkcs12 -legacy`, old
 * Keychain exports) is refused with a clear error rather than decrypted: Node's OpenSSL no longer ships RC2.
 */
export class Pkcs12Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Pkcs12Error';
  }
}

const OID_DATA = '1.2.840.113549.1.7.1';
const OID_ENCRYPTED_DATA = '1.2.840.113549.1.7.6';
const OID_KEY_BAG = '1.2.840.113549.1.12.10.1.1';
const OID_KEY_BAG_SHROUDED = '1.2.840.113549.1.12.10.1.2';
const OID_CERT_BAG = '1.2.840.113549.1.12.10.1.3';
const OID_PBE_SHA1_3DES = '1.2.840.113549.1.12.1.3';
const OID_PBE_SHA1_RC2_40 = '1.2.840.113549.1.12.1.6';
const OID_PBE_SHA1_RC2_128 = '1.2.840.113549.1.12.1.5';
const OID_PBES2 = '1.2.840.113549.1.5.13';
const OID_PBKDF2 = '1.2.840.113549.1.5.12';
const PRF: Record<string, 'sha1' | 'sha256' | 'sha384' | 'sha512'> = {
  '1.2.840.113549.2.7': 'sha1',
  '1.2.840.113549.2.9': 'sha256',
  '1.2.840.113549.2.10': 'sha384',
  '1.2.840.113549.2.11': 'sha512',
};
const AES: Record<string, string> = {
  '2.16.840.1.101.3.4.1.2': 'aes-128-cbc',
  '2.16.840.1.101.3.4.1.22': 'aes-192-cbc',
  '2.16.840.1.101.3.4.1.42': 'aes-256-cbc',
};
const DIGESTS: Record<string, 'sha1' | 'sha256' | 'sha384' | 'sha512'> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

function bmpPassword(password: string): Buffer {
  const out = Buffer.alloc(password.length * 2 + 2);
  for (let i = 0; i < password.length; i++) out.writeUInt16BE(password.charCodeAt(i), i * 2);
  return out;
}

function decrypt(algorithm: der.Node, data: Buffer, password: string): Buffer {
  const [oidNode, params] = der.children(algorithm);
  const oid = der.readOid(oidNode!);
  try {
    if (oid === OID_PBE_SHA1_3DES) {
      const [salt, iterations] = der.children(params!);
      const n = iterations!.content.readUIntBE(0, iterations!.content.length);
      const bmp = bmpPassword(password);
      const key = pkcs12Kdf('sha1', bmp, salt!.content, 1, n, 24);
      const iv = pkcs12Kdf('sha1', bmp, salt!.content, 2, n, 8);
      const d = createDecipheriv('des-ede3-cbc', key, iv);
      return Buffer.concat([d.update(data), d.final()]);
    }
    if (oid === OID_PBES2) {
      const [kdf, scheme] = der.children(params!);
      const [kdfOid, kdfParams] = der.children(kdf!);
      if (der.readOid(kdfOid!) !== OID_PBKDF2) throw new Pkcs12Error('PBES2 with a key derivation other than PBKDF2');
      const kp = der.children(kdfParams!);
      const salt = kp[0]!.content;
      const iterations = kp[1]!.content.readUIntBE(0, kp[1]!.content.length);
      const prfNode = kp.find((n, i) => i >= 2 && n.tag === der.TAG.SEQUENCE);
      const prf = prfNode ? PRF[der.readOid(der.children(prfNode)[0]!)] : 'sha1';
      const [schemeOid, iv] = der.children(scheme!);
      const cipher = AES[der.readOid(schemeOid!)];
      if (!cipher || !prf) throw new Pkcs12Error('PBES2 with an unsupported cipher or PRF');
      const key = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, Number(cipher.slice(4, 7)) / 8, prf);
      const d = createDecipheriv(cipher, key, iv!.content);
      return Buffer.concat([d.update(data), d.final()]);
    }
  } catch (err) {
    if (err instanceof Pkcs12Error) throw err;
    throw new Pkcs12Error('wrong password, or the PKCS#12 file is damaged');
  }
  if (oid === OID_PBE_SHA1_RC2_40 || oid === OID_PBE_SHA1_RC2_128) {
    throw new Pkcs12Error('the PKCS#12 file uses RC2 (a legacy export); export it again without -legacy (AES) or with 3DES');
  }
  throw new Pkcs12Error(`unsupported PKCS#12 encryption ${oid}`);
}

export interface Pkcs12Contents {
  certificates: Buffer[];
  privateKey?: KeyObject;
}

export function readPkcs12(input: Buffer, password: string): Pkcs12Contents {
  let pfx: der.Node[];
  try {
    pfx = der.children(der.parse(input));
  } catch {
    throw new Pkcs12Error('not a PKCS#12 file');
  }
  try {
    const [, authSafe, macData] = pfx;
    const [contentType, wrapped] = der.children(authSafe!);
    if (der.readOid(contentType!) !== OID_DATA) throw new Pkcs12Error('PKCS#12 signed with a public key is not supported');
    const authenticatedSafe = der.readOctets(der.children(wrapped!)[0]!);
    if (macData) {
      // The MAC is checked first: a wrong password is reported as such, before any decryption.
      const [digestInfo, salt, iterationsNode] = der.children(macData);
      const [alg, mac] = der.children(digestInfo!);
      const hash = DIGESTS[der.readOid(der.children(alg!)[0]!)];
      if (hash !== 'sha1' && hash !== 'sha256') throw new Pkcs12Error('unsupported PKCS#12 MAC digest');
      const iterations = iterationsNode ? iterationsNode.content.readUIntBE(0, iterationsNode.content.length) : 1;
      const length = createHash(hash).digest().length;
      const key = pkcs12Kdf(hash, bmpPassword(password), salt!.content, 3, iterations, length);
      const expected = createHmac(hash, key).update(authenticatedSafe).digest();
      if (expected.length !== mac!.content.length || !timingSafeEqual(expected, mac!.content))
        throw new Pkcs12Error('wrong password (the PKCS#12 MAC does not match)');
    }
    const contents: Pkcs12Contents = { certificates: [] };
    for (const info of der.children(der.parse(authenticatedSafe))) {
      const [type, content] = der.children(info);
      const typeOid = der.readOid(type!);
      let safeContents: Buffer;
      if (typeOid === OID_DATA) safeContents = der.readOctets(der.children(content!)[0]!);
      else if (typeOid === OID_ENCRYPTED_DATA) {
        const encryptedData = der.children(der.children(content!)[0]!);
        const [, algorithm, encrypted] = der.children(encryptedData[1]!);
        const data = encrypted!.tag === 0x80 ? encrypted!.content : Buffer.concat(der.children(encrypted!).map(der.readOctets));
        safeContents = decrypt(algorithm!, data, password);
      } else throw new Pkcs12Error(`unsupported PKCS#12 content ${typeOid}`);
      for (const bag of der.children(der.parse(safeContents))) {
        const [bagId, bagValue] = der.children(bag);
        const id = der.readOid(bagId!);
        const value = der.children(bagValue!)[0]!;
        if (id === OID_CERT_BAG) contents.certificates.push(Buffer.from(der.readOctets(der.children(der.children(value)[1]!)[0]!)));
        else if (id === OID_KEY_BAG) contents.privateKey = createPrivateKey({ key: value.raw, format: 'der', type: 'pkcs8' });
        else if (id === OID_KEY_BAG_SHROUDED) {
          const [algorithm, encrypted] = der.children(value);
          contents.privateKey = createPrivateKey({ key: decrypt(algorithm!, encrypted!.content, password), format: 'der', type: 'pkcs8' });
        }
      }
    }
    return contents;
  } catch (err) {
    if (err instanceof Pkcs12Error) throw err;
    throw new Pkcs12Error(`the PKCS#12 file is malformed: ${(err as Error).message}`);
  }
}
