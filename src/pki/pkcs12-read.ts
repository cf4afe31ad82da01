import { createDecipheriv, createHash, createHmac, createPrivateKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import * as der from './der.ts';
import { pbkdf2Async, pkcs12KdfAsync } from './pkcs12-kdf.ts';

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

/**
 * The most iterations certmdm runs for one derivation. OpenSSL 3 writes 2,048 (PKCS12_DEFAULT_ITER), Java's keytool
 * 10,000, macOS Keychain a few thousand; 600,000 is OWASP's 2023 figure for PBKDF2-HMAC-SHA256, so every real export
 * fits with room to spare, while 2,000,000 (6 s of CPU) or 2^48 (forever) is refused before any work.
 */
export const MAX_PKCS12_ITERATIONS = 600_000;
/** Salts are 8 or 16 bytes in practice; the KDFs hash the salt, so a huge one is work for nothing. */
const MAX_SALT = 1024;
/** Derivations per file: the MAC, the certificate safe and a key bag need three; a few more for extra bags. */
const MAX_DERIVATIONS = 8;

function bmpPassword(password: string): Buffer {
  const out = Buffer.alloc(password.length * 2 + 2);
  for (let i = 0; i < password.length; i++) out.writeUInt16BE(password.charCodeAt(i), i * 2);
  return out;
}

function iterationCount(node: der.Node | undefined): number {
  const n = der.readSmallInteger(node, 2 ** 48, 'PKCS#12 iteration count');
  if (n > MAX_PKCS12_ITERATIONS)
    throw new Pkcs12Error(
      `the PKCS#12 file asks for ${n} key-derivation iterations; certmdm accepts at most ${MAX_PKCS12_ITERATIONS} (export it again with fewer)`,
    );
  if (n < 1) throw new Pkcs12Error('the PKCS#12 iteration count must be at least 1');
  return n;
}

function salt(node: der.Node | undefined): Buffer {
  const value = der.readOctets(node);
  if (value.length > MAX_SALT) throw new Pkcs12Error('the PKCS#12 salt is too long');
  return value;
}

/** Counts key derivations, so one file cannot ask for many expensive ones. */
class Budget {
  used = 0;
  spend(): void {
    if (++this.used > MAX_DERIVATIONS) throw new Pkcs12Error('the PKCS#12 file asks for too many key derivations');
  }
}

async function decrypt(algorithm: der.Node, data: Buffer, password: string, budget: Budget): Promise<Buffer> {
  const [oidNode, params] = der.children(der.expect(algorithm, der.TAG.SEQUENCE, 'encryption algorithm'));
  const oid = der.readOid(oidNode);
  if (oid === OID_PBE_SHA1_3DES) {
    const [saltNode, iterationsNode] = der.children(der.expect(params, der.TAG.SEQUENCE, 'PBE parameters'));
    const s = salt(saltNode);
    const n = iterationCount(iterationsNode);
    const bmp = bmpPassword(password);
    budget.spend();
    const [key, iv] = await Promise.all([pkcs12KdfAsync('sha1', bmp, s, 1, n, 24), pkcs12KdfAsync('sha1', bmp, s, 2, n, 8)]);
    return decipher('des-ede3-cbc', key, iv, data);
  }
  if (oid === OID_PBES2) {
    const [kdf, scheme] = der.children(der.expect(params, der.TAG.SEQUENCE, 'PBES2 parameters'));
    const [kdfOid, kdfParams] = der.children(der.expect(kdf, der.TAG.SEQUENCE, 'PBES2 key derivation'));
    if (der.readOid(kdfOid) !== OID_PBKDF2) throw new Pkcs12Error('PBES2 with a key derivation other than PBKDF2');
    const kp = der.children(der.expect(kdfParams, der.TAG.SEQUENCE, 'PBKDF2 parameters'));
    const s = salt(kp[0]);
    const iterations = iterationCount(kp[1]);
    const prfNode = kp.find((n, i) => i >= 2 && n.tag === der.TAG.SEQUENCE);
    const prf = prfNode ? PRF[der.readOid(der.children(prfNode)[0])] : 'sha1';
    const [schemeOid, iv] = der.children(der.expect(scheme, der.TAG.SEQUENCE, 'PBES2 encryption scheme'));
    const cipher = AES[der.readOid(schemeOid)];
    if (!cipher || !prf) throw new Pkcs12Error('PBES2 with an unsupported cipher or PRF');
    budget.spend();
    const key = await pbkdf2Async(Buffer.from(password, 'utf8'), s, iterations, Number(cipher.slice(4, 7)) / 8, prf);
    return decipher(cipher, key, der.readOctets(iv), data);
  }
  if (oid === OID_PBE_SHA1_RC2_40 || oid === OID_PBE_SHA1_RC2_128) {
    throw new Pkcs12Error('the PKCS#12 file uses RC2 (a legacy export); export it again without -legacy (AES) or with 3DES');
  }
  throw new Pkcs12Error(`unsupported PKCS#12 encryption ${oid}`);
}

function decipher(name: string, key: Buffer, iv: Buffer, data: Buffer): Buffer {
  try {
    const d = createDecipheriv(name, key, iv);
    return Buffer.concat([d.update(data), d.final()]);
  } catch {
    throw new Pkcs12Error('wrong password, or the PKCS#12 file is damaged');
  }
}

function privateKey(pkcs8: Buffer): KeyObject {
  try {
    return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  } catch {
    throw new Pkcs12Error('the private key in the PKCS#12 file cannot be read');
  }
}

export interface Pkcs12Contents {
  certificates: Buffer[];
  privateKey?: KeyObject;
}

/** Reads a PKCS#12 file; every refusal is a Pkcs12Error. Key derivation runs off the event loop. */
export async function readPkcs12(input: Buffer, password: string): Promise<Pkcs12Contents> {
  let pfx: readonly der.Node[];
  try {
    pfx = der.children(der.expect(der.parse(input), der.TAG.SEQUENCE, 'PFX'));
  } catch {
    throw new Pkcs12Error('not a PKCS#12 file');
  }
  try {
    const [, authSafe, macData] = pfx;
    const [contentType, wrapped] = der.children(der.expect(authSafe, der.TAG.SEQUENCE, 'authSafe'));
    if (der.readOid(contentType) !== OID_DATA) throw new Pkcs12Error('PKCS#12 signed with a public key is not supported');
    const authenticatedSafe = der.readOctets(der.children(der.expect(wrapped, 0xa0, 'authSafe content'))[0]);
    const budget = new Budget();
    if (macData) {
      // The MAC is checked first: a wrong password is reported as such, before any decryption.
      const [digestInfo, macSalt, iterationsNode] = der.children(der.expect(macData, der.TAG.SEQUENCE, 'MacData'));
      const [alg, mac] = der.children(der.expect(digestInfo, der.TAG.SEQUENCE, 'DigestInfo'));
      const hash = DIGESTS[der.readOid(der.children(der.expect(alg, der.TAG.SEQUENCE, 'MAC digest'))[0])];
      if (hash !== 'sha1' && hash !== 'sha256') throw new Pkcs12Error('unsupported PKCS#12 MAC digest');
      const iterations = iterationsNode ? iterationCount(iterationsNode) : 1;
      const length = createHash(hash).digest().length;
      budget.spend();
      const key = await pkcs12KdfAsync(hash, bmpPassword(password), salt(macSalt), 3, iterations, length);
      const expected = createHmac(hash, key).update(authenticatedSafe).digest();
      const presented = der.readOctets(mac);
      if (expected.length !== presented.length || !timingSafeEqual(expected, presented))
        throw new Pkcs12Error('wrong password (the PKCS#12 MAC does not match)');
    }
    const contents: Pkcs12Contents = { certificates: [] };
    for (const info of der.children(der.expect(der.parse(authenticatedSafe), der.TAG.SEQUENCE, 'AuthenticatedSafe'))) {
      const [type, content] = der.children(der.expect(info, der.TAG.SEQUENCE, 'ContentInfo'));
      const typeOid = der.readOid(type);
      let safeContents: Buffer;
      if (typeOid === OID_DATA) safeContents = der.readOctets(der.children(der.expect(content, 0xa0, 'data content'))[0]);
      else if (typeOid === OID_ENCRYPTED_DATA) {
        const encryptedData = der.children(
          der.expect(der.children(der.expect(content, 0xa0, 'encrypted content'))[0], der.TAG.SEQUENCE, 'EncryptedData'),
        );
        const [, algorithm, encrypted] = der.children(der.expect(encryptedData[1], der.TAG.SEQUENCE, 'EncryptedContentInfo'));
        const data = der.implicitOctets(encrypted, 0x80, 'encryptedContent');
        safeContents = await decrypt(der.expect(algorithm, der.TAG.SEQUENCE, 'encryption algorithm'), data, password, budget);
      } else throw new Pkcs12Error(`unsupported PKCS#12 content ${typeOid}`);
      for (const bag of der.children(der.expect(der.parse(safeContents), der.TAG.SEQUENCE, 'SafeContents'))) {
        const [bagId, bagValue] = der.children(der.expect(bag, der.TAG.SEQUENCE, 'SafeBag'));
        const id = der.readOid(bagId);
        const value = der.child(der.expect(bagValue, 0xa0, 'bagValue'), 0, 'bagValue');
        if (id === OID_CERT_BAG) {
          const certValue = der.child(der.expect(value, der.TAG.SEQUENCE, 'CertBag'), 1, 'certValue');
          contents.certificates.push(Buffer.from(der.readOctets(der.child(der.expect(certValue, 0xa0, 'certValue'), 0, 'certValue'))));
        } else if (id === OID_KEY_BAG) contents.privateKey = privateKey(value.raw);
        else if (id === OID_KEY_BAG_SHROUDED) {
          const [algorithm, encrypted] = der.children(der.expect(value, der.TAG.SEQUENCE, 'EncryptedPrivateKeyInfo'));
          contents.privateKey = privateKey(
            await decrypt(der.expect(algorithm, der.TAG.SEQUENCE, 'encryption algorithm'), der.readOctets(encrypted), password, budget),
          );
        }
      }
    }
    return contents;
  } catch (err) {
    if (err instanceof Pkcs12Error) throw err;
    if (err instanceof der.DerError) throw new Pkcs12Error(`the PKCS#12 file is malformed: ${err.message}`);
    throw err;
  }
}
