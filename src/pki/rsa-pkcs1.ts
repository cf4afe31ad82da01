import { constants, createHmac, privateDecrypt, randomBytes, type KeyObject } from 'node:crypto';

/**
 * RSA PKCS#1 v1.5 key transport decryption with implicit rejection.
 *
 * Node 20 refuses RSA_PKCS1_PADDING for privateDecrypt (Marvin attack hardening), yet SCEP's EnvelopedData uses it.
 * So we decrypt raw (RSA_NO_PADDING) and check the padding here without branching on secret data: every byte is
 * examined, and a bad padding yields a synthetic key derived from the ciphertext, so a failure looks exactly like a
 * message encrypted under a wrong key (the content decryption fails later, the same way).
 *
 * `keyLength` is the content-encryption key length the message's algorithm requires; only a message of exactly
 * that length is accepted, which removes the variable-length copy that timing attacks exploit.
 */
export class Pkcs1KeyTransport {
  /** Per-process secret for synthetic keys: an attacker cannot predict the rejection output. */
  readonly #rejectionSecret = randomBytes(32);

  constructor(private readonly privateKey: KeyObject) {}

  decryptKey(encryptedKey: Buffer, keyLength: number): Buffer {
    const k = Math.ceil((this.privateKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
    const synthetic = createHmac('sha256', this.#rejectionSecret).update(encryptedKey).digest();
    const fallback = Buffer.alloc(keyLength);
    for (let i = 0; i < keyLength; i++) fallback[i] = synthetic[i % synthetic.length]! ^ Math.floor(i / synthetic.length);

    let em: Buffer;
    try {
      // A ciphertext of the wrong length or >= n is a public fact, not a padding oracle: reject it outright.
      if (encryptedKey.length !== k) return fallback;
      em = privateDecrypt({ key: this.privateKey, padding: constants.RSA_NO_PADDING }, encryptedKey);
    } catch {
      return fallback;
    }
    if (em.length !== k || k < keyLength + 11) return fallback;

    // good stays 0xff only if: em[0] == 0, em[1] == 2, em[2..sep) all non-zero, em[sep] == 0.
    const separator = k - keyLength - 1;
    let bad = em[0]! | (em[1]! ^ 2);
    for (let i = 2; i < separator; i++) {
      // (x - 1) >> 8 is all ones exactly when x == 0.
      bad |= ((em[i]! - 1) >> 8) & 1;
    }
    bad |= em[separator]!;
    const good = ((bad - 1) >> 8) & 0xff; // 0xff when bad == 0, else 0x00

    const key = Buffer.alloc(keyLength);
    const offset = separator + 1;
    for (let i = 0; i < keyLength; i++) key[i] = (em[offset + i]! & good) | (fallback[i]! & ~good & 0xff);
    em.fill(0);
    return key;
  }
}
