import assert from 'node:assert/strict';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadMasterKey, MasterKey } from '../../src/pki/master-key.ts';
import { tempDir } from '../helpers/cli.ts';

test('sealed blobs open only with the same key and the same associated data', () => {
  const key = MasterKey.generate();
  const secret = Buffer.from('private key bytes');
  const sealed = key.seal(secret, 'key_1');
  assert.ok(!sealed.includes(secret));
  assert.deepEqual(key.open(sealed, 'key_1'), secret);
  assert.throws(() => key.open(sealed, 'key_2'));
  assert.throws(() => MasterKey.generate().open(sealed, 'key_1'));
  const tampered = Buffer.from(sealed);
  tampered[20]! ^= 1;
  assert.throws(() => key.open(tampered, 'key_1'));
  assert.throws(() => key.open(Buffer.alloc(5), 'key_1'), /malformed/);
});

test('the check value recognises the right key only', () => {
  const key = MasterKey.generate();
  assert.ok(key.matches(key.checkValue()));
  assert.ok(!MasterKey.generate().matches(key.checkValue()));
  assert.ok(!key.matches('short'));
});

test('master key parsing accepts hex and base64 and rejects anything else', () => {
  const hex = 'ab'.repeat(32);
  assert.ok(MasterKey.parse(hex, 'env').matches(new MasterKey(Buffer.from(hex, 'hex')).checkValue()));
  assert.ok(MasterKey.parse(Buffer.alloc(32, 7).toString('base64'), 'env'));
  assert.throws(() => MasterKey.parse('not a key', 'env'), /is not a master key/);
  assert.throws(() => MasterKey.parse('ab'.repeat(31), 'env'), /is not a master key/);
});

test('the key file is created 0600 once and never replaced', () => {
  const file = join(tempDir(), 'master.key');
  const created = loadMasterKey({ file, create: true });
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const loaded = loadMasterKey({ file, create: true });
  assert.ok(loaded.key.matches(created.key.checkValue()));
  assert.throws(() => loadMasterKey({ file: join(tempDir(), 'missing.key'), create: false }), /missing/);
  writeFileSync(file, 'garbage\n', { mode: 0o600 });
  assert.throws(() => loadMasterKey({ file, create: true }), /is not a master key/);
});
