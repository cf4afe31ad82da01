import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { run, runCli, tempDir, TEST_FLAGS } from '../helpers/cli.ts';
import { fakeApple, newTopic } from '../helpers/apple.ts';

function activePush(dataDir: string): string | undefined {
  const list = JSON.parse(runCli(['certs', 'list', '--json', '--data', dataDir]).stdout) as {
    role: string;
    status: string;
    fingerprintSha256: string;
  }[];
  return list.find((c) => c.role === 'push' && c.status === 'active')?.fingerprintSha256;
}

test('push CSR → vendor signature → Apple certificate → import, and every bad import is refused leaving the current certificate', () => {
  const dataDir = join(tempDir(), 'data');
  assert.equal(runCli(['init', '--data', dataDir, ...TEST_FLAGS]).status, 0);
  const work = tempDir('push-');
  const apple = fakeApple();

  // The customer CSR: openssl verifies its self-signature.
  const csrPem = join(work, 'push.csr');
  const csr = runCli(['push', 'csr', '--out', csrPem, '--data', dataDir]);
  assert.equal(csr.status, 0, csr.stderr);
  const verified = run('openssl', ['req', '-in', csrPem, '-verify', '-noout']);
  assert.equal(verified.status, 0, verified.stderr);
  assert.match(verified.stderr + verified.stdout, /verify OK/);

  // The vendor's PushCertificateRequest: plistlib decodes it; openssl verifies the signature over the CSR DER.
  const requestFile = join(work, 'request.b64');
  const signed = runCli([
    'push',
    'vendor-sign',
    '--csr',
    csrPem,
    '--vendor-cert',
    apple.vendorCert,
    '--vendor-key',
    apple.vendorKey,
    '--chain',
    apple.chain,
    '--out',
    requestFile,
  ]);
  assert.equal(signed.status, 0, signed.stderr);
  const decoded = run('python3', [
    '-c',
    'import base64,json,plistlib,sys\nd=plistlib.loads(base64.b64decode(open(sys.argv[1]).read()))\nprint(json.dumps(d))',
    requestFile,
  ]);
  assert.equal(decoded.status, 0, decoded.stderr);
  const request = JSON.parse(decoded.stdout) as { PushCertRequestCSR: string; PushCertCertificateChain: string; PushCertSignature: string };
  const csrDer = Buffer.from(readFileSync(csrPem, 'utf8').replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  assert.deepEqual(Buffer.from(request.PushCertRequestCSR, 'base64'), csrDer);
  assert.equal((request.PushCertCertificateChain.match(/BEGIN CERTIFICATE/g) ?? []).length, 3, 'vendor, Apple intermediate, Apple root');
  writeFileSync(join(work, 'csr.der'), csrDer);
  writeFileSync(join(work, 'sig.bin'), Buffer.from(request.PushCertSignature, 'base64'));
  run('openssl', ['x509', '-in', apple.vendorCert, '-pubkey', '-noout', '-out', join(work, 'vendor.pub')]);
  const dgst = run('openssl', [
    'dgst',
    '-sha256',
    '-verify',
    join(work, 'vendor.pub'),
    '-signature',
    join(work, 'sig.bin'),
    join(work, 'csr.der'),
  ]);
  assert.match(dgst.stdout, /Verified OK/);

  // Apple's certificate for that CSR matches the sealed CSR key.
  const topic = newTopic();
  const pushPem = apple.issue(csrPem, `/C=US/UID=${topic}/CN=APSP:${topic.split('.').pop()}`);
  const imported = runCli(['push', 'import', pushPem, '--data', dataDir]);
  assert.equal(imported.status, 0, imported.stderr);
  assert.match(imported.stdout, new RegExp(`imported push certificate for ${topic.replace(/\./g, '\\.')}`));
  const current = activePush(dataDir);
  assert.ok(current);
  assert.match(runCli(['push', 'status', '--data', dataDir]).stdout, new RegExp(topic.replace(/\./g, '\\.')));

  const refusals: [string, string[], RegExp][] = [];
  const noUid = apple.issueWithKey('/C=US/CN=no topic here');
  refusals.push(['no UID', [noUid.cert, '--key', noUid.key], /no UID \(topic\)/]);
  const wrongPrefix = apple.issueWithKey('/C=US/UID=com.example.push/CN=x');
  refusals.push(['wrong prefix', [wrongPrefix.cert, '--key', wrongPrefix.key], /does not start with com\.apple\.mgmt\./]);
  const sameTopic = apple.issueWithKey(`/C=US/UID=${topic}/CN=APSP:x`);
  refusals.push(['key mismatch', [sameTopic.cert, '--key', noUid.key], /does not match the push certificate/]);
  const otherTopic = apple.issueWithKey(`/C=US/UID=${newTopic()}/CN=APSP:y`);
  const p12 = join(work, 'other.p12');
  assert.equal(
    run('openssl', ['pkcs12', '-export', '-in', otherTopic.cert, '-inkey', otherTopic.key, '-out', p12, '-passout', 'pass:right']).status,
    0,
  );
  refusals.push(['wrong p12 password', [p12, '--password', 'wrong'], /wrong password/]);
  refusals.push(['topic change', [p12, '--password', 'right'], /every enrolled device would be orphaned/]);
  refusals.push(['expired', [apple.issueExpired(sameTopic.key, topic), '--key', sameTopic.key], /expired on/]);
  const garbage = join(work, 'garbage.bin');
  writeFileSync(garbage, 'this is no certificate at all');
  refusals.push(['garbage', [garbage], /neither PEM, a DER certificate nor PKCS#12/]);
  for (const [name, args, reason] of refusals) {
    const r = runCli(['push', 'import', ...args, '--data', dataDir]);
    assert.notEqual(r.status, 0, name);
    assert.match(r.stderr, reason, name);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${name}: one line`);
    assert.equal(activePush(dataDir), current, `${name}: the current push certificate stays`);
  }

  // A renewal with the same topic, from a PKCS#12 with its key, replaces the current one.
  const renewal = join(work, 'renewal.p12');
  assert.equal(
    run('openssl', ['pkcs12', '-export', '-in', sameTopic.cert, '-inkey', sameTopic.key, '-out', renewal, '-passout', 'pass:pw']).status,
    0,
  );
  assert.equal(runCli(['push', 'import', renewal, '--password', 'pw', '--data', dataDir]).status, 0);
  assert.notEqual(activePush(dataDir), current);
  // A new topic only when forced, and audited.
  const forced = runCli(['push', 'import', p12, '--password', 'right', '--force-new-topic', '--data', dataDir]);
  assert.equal(forced.status, 0, forced.stderr);
  const audit = JSON.parse(runCli(['audit', 'list', '--json', '--data', dataDir, '--limit', '20']).stdout) as { action: string }[];
  assert.ok(audit.some((e) => e.action === 'push.topic-changed'));
  assert.ok(
    audit.some((e) => e.action === 'push.import'),
    'refusals are audited',
  );
});
