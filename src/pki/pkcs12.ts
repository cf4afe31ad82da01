import { createCipheriv, createHash, createHmac, pbkdf2Sync, randomBytes, type KeyObject } from 'node:crypto';
import * as der from './der.ts';

/**
 * PKCS#12 (RFC 7292) for identities certmdm generates for a device (the `com.apple.security.pkcs12` payload).
 *
 * - `legacy` (default): pbeWithSHAAnd3-KeyTripleDES-CBC for key and certificate, HMAC-SHA1 MAC — the form every Apple
 *   OS version imports.
 * - `modern`: PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) and an HMAC-SHA256 MAC — OpenSSL 3's default; current Apple
 *   OS versions import it, older ones do not.
 */
export type Pkcs12Encryption = 'legacy' | 'modern';

const OID_DATA = '1.2.840.113549.1.7.1';
const OID_ENCRYPTED_DATA = '1.2.840.113549.1.7.6';
const OID_KEY_BAG_SHROUDED = '1.2.840.113549.1.12.10.1.2';
const OID_CERT_BAG = '1.2.840.113549.1.12.10.1.3';
const OID_X509_CERT = '1.2.840.113549.1.9.22.1';
const OID_LOCAL_KEY_ID = '1.2.840.113549.1.9.21';
const OID_FRIENDLY_NAME = '1.2.840.113549.1.9.20';
const OID_PBE_SHA1_3DES = '1.2.840.113549.1.12.1.3';
const OID_PBES2 = '1.2.840.113549.1.5.13';
const OID_PBKDF2 = '1.2.840.113549.1.5.12';
const OID_HMAC_SHA256 = '1.2.840.113549.2.9';
const OID_AES256_CBC = '2.16.840.1.101.3.4.1.42';
const OID_SHA1 = '1.3.14.3.2.26';
const OID_SHA256 = '2.16.840.1.101.3.4.2.1';

const ITERATIONS = 2048;

/** The PKCS#12 password encoding: BMPString (UTF-16BE) with a two-byte terminator. */
function bmpPassword(password: string): Buffer {
  const out = Buffer.alloc(password.length * 2 + 2);
  for (let i = 0; i < password.length; i++) out.writeUInt16BE(password.charCodeAt(i), i * 2);
  return out;
}

/** RFC 7292 Appendix B.2 key derivation (id 1: key, 2: IV, 3: MAC key). */
export function pkcs12Kdf(hash: 'sha1' | 'sha256', password: Buffer, salt: Buffer, id: number, iterations: number, length: number): Buffer {
  const u = hash === 'sha1' ? 20 : 32;
  const v = 64;
  const fill = (data: Buffer) => {
    if (data.length === 0) return Buffer.alloc(0);
    const out = Buffer.alloc(v * Math.ceil(data.length / v));
    for (let i = 0; i < out.length; i++) out[i] = data[i % data.length]!;
    return out;
  };
  const D = Buffer.alloc(v, id);
  const I = Buffer.concat([fill(salt), fill(password)]);
  const blocks: Buffer[] = [];
  for (let produced = 0; produced < length; produced += u) {
    let A = createHash(hash).update(D).update(I).digest();
    for (let r = 1; r < iterations; r++) A = createHash(hash).update(A).digest();
    blocks.push(A);
    const B = fill(A);
    // I_j = (I_j + B + 1) mod 2^(8v) for each v-byte block of I.
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = I[j + k]! + B[k]! + carry;
        I[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return Buffer.concat(blocks).subarray(0, length);
}

interface Encrypted {
  algorithm: Buffer;
  data: Buffer;
}

function encrypt(plaintext: Buffer, password: string, encryption: Pkcs12Encryption): Encrypted {
  const salt = randomBytes(encryption === 'legacy' ? 8 : 16);
  if (encryption === 'legacy') {
    const bmp = bmpPassword(password);
    const key = pkcs12Kdf('sha1', bmp, salt, 1, ITERATIONS, 24);
    const iv = pkcs12Kdf('sha1', bmp, salt, 2, ITERATIONS, 8);
    const cipher = createCipheriv('des-ede3-cbc', key, iv);
    return {
      algorithm: der.seq(der.oid(OID_PBE_SHA1_3DES), der.seq(der.octets(salt), der.smallInteger(ITERATIONS))),
      data: Buffer.concat([cipher.update(plaintext), cipher.final()]),
    };
  }
  const iv = randomBytes(16);
  const key = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, ITERATIONS, 32, 'sha256');
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const params = der.seq(
    der.seq(
      der.oid(OID_PBKDF2),
      der.seq(der.octets(salt), der.smallInteger(ITERATIONS), der.smallInteger(32), der.algorithmIdentifier(OID_HMAC_SHA256, null)),
    ),
    der.seq(der.oid(OID_AES256_CBC), der.octets(iv)),
  );
  return { algorithm: der.seq(der.oid(OID_PBES2), params), data: Buffer.concat([cipher.update(plaintext), cipher.final()]) };
}

function bmpString(text: string): Buffer {
  const out = Buffer.alloc(text.length * 2);
  for (let i = 0; i < text.length; i++) out.writeUInt16BE(text.charCodeAt(i), i * 2);
  return der.tlv(0x1e, out);
}

export function buildPkcs12(options: {
  certificate: Buffer;
  privateKey: KeyObject;
  /** Issuer certificates to include after the identity. */
  chain?: Buffer[];
  password: string;
  friendlyName?: string;
  encryption?: Pkcs12Encryption;
}): Buffer {
  const encryption = options.encryption ?? 'legacy';
  const localKeyId = createHash('sha1').update(options.certificate).digest();
  const attributes = der.setOf(
    der.seq(der.oid(OID_LOCAL_KEY_ID), der.setOf(der.octets(localKeyId))),
    ...(options.friendlyName ? [der.seq(der.oid(OID_FRIENDLY_NAME), der.setOf(bmpString(options.friendlyName)))] : []),
  );
  const certBag = (cert: Buffer, withAttributes: boolean) =>
    der.seq(
      der.oid(OID_CERT_BAG),
      der.context(0, der.seq(der.oid(OID_X509_CERT), der.context(0, der.octets(cert)))),
      ...(withAttributes ? [attributes] : []),
    );
  const certContents = der.seq(certBag(options.certificate, true), ...(options.chain ?? []).map((c) => certBag(c, false)));
  const encryptedCerts = encrypt(certContents, options.password, encryption);
  const certsInfo = der.seq(
    der.oid(OID_ENCRYPTED_DATA),
    der.context(
      0,
      der.seq(der.smallInteger(0), der.seq(der.oid(OID_DATA), encryptedCerts.algorithm, der.context(0, encryptedCerts.data, true))),
    ),
  );

  const pkcs8 = options.privateKey.export({ type: 'pkcs8', format: 'der' });
  const encryptedKey = encrypt(pkcs8, options.password, encryption);
  pkcs8.fill(0);
  const keyBag = der.seq(
    der.oid(OID_KEY_BAG_SHROUDED),
    der.context(0, der.seq(encryptedKey.algorithm, der.octets(encryptedKey.data))),
    attributes,
  );
  const keyInfo = der.seq(der.oid(OID_DATA), der.context(0, der.octets(der.seq(keyBag))));

  const authenticatedSafe = der.seq(certsInfo, keyInfo);
  const macHash = encryption === 'legacy' ? 'sha1' : 'sha256';
  const macSalt = randomBytes(encryption === 'legacy' ? 8 : 16);
  const macKey = pkcs12Kdf(macHash, bmpPassword(options.password), macSalt, 3, ITERATIONS, macHash === 'sha1' ? 20 : 32);
  const mac = createHmac(macHash, macKey).update(authenticatedSafe).digest();
  const macData = der.seq(
    der.seq(der.algorithmIdentifier(macHash === 'sha1' ? OID_SHA1 : OID_SHA256, null), der.octets(mac)),
    der.octets(macSalt),
    der.smallInteger(ITERATIONS),
  );
  return der.seq(der.smallInteger(3), der.seq(der.oid(OID_DATA), der.context(0, der.octets(authenticatedSafe))), macData);
}
