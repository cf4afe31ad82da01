import { createPublicKey, type KeyObject } from 'node:crypto';
import { DerError } from './der.ts';

/**
 * Public keys from SubjectPublicKeyInfo DER, remembered: OpenSSL 3's key decoding costs more than an RSA verify,
 * and a SCEP or MDM request needs the same device key several times (signature, CSR, response encryption).
 */
const cache = new Map<string, KeyObject>();
const LIMIT = 4096;

export function publicKeyFromSpki(spki: Buffer): KeyObject {
  const id = spki.toString('base64');
  const hit = cache.get(id);
  if (hit) return hit;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    // OpenSSL's message names its internals; the caller needs only "this key cannot be read".
    throw new DerError('the SubjectPublicKeyInfo is not a public key certmdm can read');
  }
  if (cache.size >= LIMIT) cache.delete(cache.keys().next().value!);
  cache.set(id, key);
  return key;
}
