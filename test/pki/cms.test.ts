import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as cms from '../../src/pki/cms.ts';
import { run, tempDir } from '../helpers/cli.ts';
import { newRequester } from '../helpers/scep.ts';
import { mdmSignature, type SignatureForm } from '../helpers/device.ts';

/** openssl makes the signatures, in the forms real clients send (see mdmSignature); our parser must verify them. */
function opensslSign(form: SignatureForm) {
  const signer = newRequester();
  const body = Buffer.from(
    `<?xml version="1.0"?><plist><dict><key>UDID</key><string>${randomBytes(8).toString('hex')}</string></dict></plist>`,
  );
  const signature = Buffer.from(mdmSignature(body, { certPem: signer.selfSignedPem, requester: signer }, form), 'base64');
  return { body, signature, signer };
}

test("Apple's Mdm-Signature form: BER, indefinite lengths, SHA-1, no signed attributes", () => {
  // openssl -stream writes indefinite lengths (and, unlike a device, embeds the content: BER OCTET STRING segments).
  const { body, signature, signer } = opensslSign('apple');
  assert.equal(signature.toString('base64').slice(0, 20), 'MIAGCSqGSIb3DQEHAqCA', 'indefinite-length BER as Apple sends');
  const parsed = cms.parseSignedData(signature);
  assert.deepEqual(parsed.content, body);
  const verified = cms.verifySignedData(parsed, body);
  assert.deepEqual(verified.certificate, signer.selfSigned);
  assert.throws(() => cms.verifySignedData(parsed, Buffer.concat([body, Buffer.from(' ')])), /does not verify/);
});

test('detached, no signed attributes, SHA-1: verified against the body given separately', () => {
  const { body, signature } = opensslSign('detached');
  const parsed = cms.parseSignedData(signature);
  assert.equal(parsed.content, undefined, 'detached');
  assert.ok(cms.verifySignedData(parsed, body));
  assert.throws(() => cms.verifySignedData(parsed, Buffer.from('tampered')), /does not verify/);
});

test('DER with signed attributes and SHA-256: messageDigest and signingTime are read and checked', () => {
  const { body, signature } = opensslSign('attributes');
  const verified = cms.verifySignedData(cms.parseSignedData(signature), body);
  assert.ok(verified.signingTime && Math.abs(verified.signingTime.getTime() - Date.now()) < 60_000);
  assert.throws(() => cms.verifySignedData(cms.parseSignedData(signature), Buffer.from('other body')), /messageDigest does not match/);
});

test('malformed CMS is a CmsError, never a crash', () => {
  const { signature } = opensslSign('attributes');
  for (const bad of [
    Buffer.alloc(0),
    Buffer.from('garbage'),
    signature.subarray(0, signature.length - 10),
    Buffer.concat([signature, Buffer.from([0])]),
  ]) {
    assert.throws(() => cms.parseSignedData(bad), cms.CmsError);
  }
});

test('our certs-only and EnvelopedData are read by openssl', () => {
  const recipient = newRequester();
  const dir = tempDir();
  const content = randomBytes(100);
  for (const oid of Object.keys(cms.CONTENT_CIPHERS).filter((o) => cms.CONTENT_CIPHERS[o as cms.ContentCipherOid].family !== 'des')) {
    writeFileSync(join(dir, 'env.der'), cms.buildEnvelopedData(content, recipient.selfSigned, oid as cms.ContentCipherOid));
    const r = run('openssl', [
      'cms',
      '-decrypt',
      '-inform',
      'DER',
      '-in',
      join(dir, 'env.der'),
      '-recip',
      recipient.selfSignedPem,
      '-inkey',
      recipient.keyPem,
      '-out',
      join(dir, 'out'),
      '-binary',
    ]);
    assert.equal(r.status, 0, `${oid}: ${r.stderr}`);
    assert.deepEqual(readFileSync(join(dir, 'out')), content);
  }
  writeFileSync(join(dir, 'p7.der'), cms.buildCertsOnly([recipient.selfSigned]));
  const printed = run('openssl', ['pkcs7', '-inform', 'DER', '-in', join(dir, 'p7.der'), '-print_certs', '-noout']);
  assert.match(printed.stdout, /CN = SCEP requester/);
});
