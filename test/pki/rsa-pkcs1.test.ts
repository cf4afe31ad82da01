import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, publicEncrypt, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Pkcs1KeyTransport } from '../../src/pki/rsa-pkcs1.ts';

const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const transport = new Pkcs1KeyTransport(privateKey);

/** Raw RSA of a hand-made block, to produce paddings a correct encoder never would. */
function rawEncrypt(block: Buffer): Buffer {
  return publicEncrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, block);
}

function block(keyLength: number, mutate: (b: Buffer) => void = () => {}): { block: Buffer; key: Buffer } {
  const b = Buffer.alloc(256);
  b[0] = 0;
  b[1] = 2;
  for (let i = 2; i < 256 - keyLength - 1; i++) b[i] = 1 + (randomBytes(1)[0]! % 255);
  b[256 - keyLength - 1] = 0;
  const key = randomBytes(keyLength);
  key.copy(b, 256 - keyLength);
  mutate(b);
  return { block: b, key };
}

test('a PKCS#1 v1.5 block made by OpenSSL unwraps to its key', () => {
  for (const length of [16, 24, 32]) {
    const key = randomBytes(length);
    const encrypted = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, key);
    assert.deepEqual(transport.decryptKey(encrypted, length), key);
  }
});

test('bad paddings yield a synthetic key instead of an error: deterministic per ciphertext, never the real key', () => {
  const cases: [string, (b: Buffer) => void][] = [
    ['first byte not zero', (b) => (b[0] = 1)],
    ['block type 1', (b) => (b[1] = 1)],
    ['zero inside the padding string', (b) => (b[5] = 0)],
    ['no separator where the key length says', (b) => (b[256 - 16 - 1] = 9)],
  ];
  for (const [name, mutate] of cases) {
    const { block: b, key } = block(16, mutate);
    const ciphertext = rawEncrypt(b);
    const first = transport.decryptKey(ciphertext, 16);
    assert.equal(first.length, 16, name);
    assert.notDeepEqual(first, key, name);
    assert.deepEqual(transport.decryptKey(ciphertext, 16), first, `${name}: same ciphertext, same synthetic key`);
  }
  const a = transport.decryptKey(rawEncrypt(block(16, (b) => (b[1] = 1)).block), 16);
  const b = transport.decryptKey(rawEncrypt(block(16, (b) => (b[1] = 1)).block), 16);
  assert.notDeepEqual(a, b, 'different ciphertexts, different synthetic keys');
});

test('a message of another length than the cipher needs is rejected implicitly', () => {
  const key = randomBytes(32);
  const encrypted = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, key);
  const out = transport.decryptKey(encrypted, 16);
  assert.equal(out.length, 16);
  assert.notDeepEqual(out, key.subarray(16));
  assert.notDeepEqual(out, key.subarray(0, 16));
});

test('ciphertexts of the wrong size or out of range do not throw', () => {
  assert.equal(transport.decryptKey(Buffer.alloc(10, 1), 16).length, 16);
  assert.equal(transport.decryptKey(Buffer.alloc(256, 0xff), 16).length, 16);
});
