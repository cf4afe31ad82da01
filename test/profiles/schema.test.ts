import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveConfig } from '../../src/config.ts';
import { validatePayload } from '../helpers/apple-schema.ts';
import { scepFixture } from '../scep/fixture.ts';

// The validator itself must catch what it is there to catch, or the profile tests prove nothing.
const good = {
  PayloadType: 'com.apple.mdm',
  PayloadVersion: 1,
  PayloadIdentifier: 'x.mdm',
  PayloadUUID: 'C3E4A1C2-0000-4000-8000-000000000000',
  IdentityCertificateUUID: 'C3E4A1C2-0000-4000-8000-000000000001',
  Topic: 'com.apple.mgmt.External.x',
  ServerURL: 'https://mdm.example.test/mdm/server',
  ServerCapabilities: ['com.apple.mdm.per-user-connections'],
};

test('the schema validator accepts a good payload and names each kind of fault', () => {
  assert.deepEqual(validatePayload(good), []);
  assert.deepEqual(validatePayload({ ...good, Bogus: 1 }), ['com.apple.mdm.Bogus: unknown key']);
  const { Topic: _topic, ...noTopic } = good;
  assert.deepEqual(validatePayload(noTopic), ['com.apple.mdm.Topic: required key missing']);
  assert.deepEqual(validatePayload({ ...good, SignMessage: 'yes' }), ['com.apple.mdm.SignMessage: expected <boolean>, got <string>']);
  assert.deepEqual(validatePayload({ ...good, ServerCapabilities: ['com.apple.mdm.nope'] }), [
    'com.apple.mdm.ServerCapabilities[0]: "com.apple.mdm.nope" is not one of ["com.apple.mdm.per-user-connections","com.apple.mdm.bootstraptoken","com.apple.mdm.token"]',
  ]);
  const scep = {
    PayloadType: 'com.apple.security.scep',
    PayloadVersion: 1,
    PayloadIdentifier: 'x.scep',
    PayloadUUID: 'u',
    PayloadContent: { URL: 'https://x/scep', Keysize: 3000, Subject: [[['CN']]] },
  };
  assert.deepEqual(validatePayload(scep), [
    'com.apple.security.scep.PayloadContent.Keysize: 3000 is not one of [1024,2048,4096]',
    'com.apple.security.scep.PayloadContent.Subject[0][0]: fewer than 2 items',
  ]);
});

test('a profile cannot be made without an APNs topic', async () => {
  const f = await scepFixture({ 'push-topic': '' });
  try {
    await assert.rejects(f.profiles.enrollment({ identity: 'scep', createdBy: 'test' }), /no APNs topic yet/);
    assert.deepEqual(await f.app.store.listProfiles(), []);
  } finally {
    await f.close();
  }
});

test('device URLs must be https and parseable; the topic must be an MDM topic', () => {
  assert.throws(
    () => resolveConfig({ 'public-url': 'http://mdm.example.test' }, {}),
    /--public-url 'http:\/\/mdm.example.test' must use https/,
  );
  assert.throws(() => resolveConfig({ 'public-url': 'not a url' }, {}), /--public-url 'not a url' is not a URL/);
  assert.throws(() => resolveConfig({ 'public-url': 'https://mdm.example.test/?x=1' }, {}), /must not carry a query/);
  assert.throws(() => resolveConfig({ 'scep-url': 'ftp://x/scep' }, {}), /--scep-url .* must use https or http/);
  assert.throws(() => resolveConfig({ 'push-topic': 'com.example.topic' }, {}), /not an MDM push topic/);
  const ok = resolveConfig({ 'public-url': 'https://mdm.example.test/', hostname: ['mdm.example.test'] }, {});
  assert.equal(ok.publicUrl, 'https://mdm.example.test');
  assert.equal(ok.scepUrl, 'https://mdm.example.test/scep');
  assert.equal(resolveConfig({ hostname: ['mdm.example.test'], port: '9443' }, {}).publicUrl, 'https://mdm.example.test:9443');
});
