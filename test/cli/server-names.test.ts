import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { test } from 'node:test';
import { freePort, run, runCli, startServer, tempDir } from '../helpers/cli.ts';

/** The certificate the live listener presents, as its SHA-256 fingerprint (hex, lower case). */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      const der = socket.getPeerCertificate().raw;
      socket.end();
      resolve(createHash('sha256').update(der).digest('hex'));
    });
    socket.on('error', reject);
  });
}

type Entry = { role: string; status: string; fingerprintSha256: string };

test('the CLI never re-issues the server TLS certificate, and its links and profiles name the server it runs beside', async (t) => {
  const dataDir = join(tempDir(), 'data');
  const port = await freePort();
  const publicUrl = `https://mdm.names-test.example:${port}`;
  const server = await startServer(dataDir, [
    '--port',
    String(port),
    '--hostname',
    'mdm.names-test.example',
    '--public-url',
    publicUrl,
    '--push-topic',
    'com.apple.mgmt.External.names-test',
    '--organization',
    'Names Test Org',
  ]);
  t.after(() => server.stop());

  const inventory = () => {
    const r = runCli(['certs', 'list', '--json', '--data', dataDir]);
    assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as Entry[]).filter((c) => c.role === 'tls');
  };
  const tlsIssued = () => {
    const r = runCli(['audit', 'list', '--json', '--limit', '1000', '--data', dataDir]);
    assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as { action: string; actor: string }[]).filter((e) => e.action === 'pki.tls-issued');
  };
  const [served] = inventory();
  assert.equal(served?.status, 'active');
  assert.equal(await servedFingerprint(server.port), served.fingerprintSha256);
  assert.equal(tlsIssued().length, 1, 'serve issued it once, at first start');

  // Without any of the server's flags, as an administrator runs them beside the live server.
  const work = tempDir();
  const link = runCli(['enroll-link', '--data', dataDir]);
  assert.equal(link.status, 0, link.stderr);
  assert.deepEqual(inventory(), [served], 'making a link re-issued nothing');
  assert.match(link.stdout.trim(), new RegExp(`^${publicUrl.replace(/\./g, '\\.')}/enroll/[0-9a-f]{56}$`));
  const enroll = runCli(['profile', 'enroll', '--out', join(work, 'enroll.mobileconfig'), '--data', dataDir]);
  assert.equal(enroll.status, 0, enroll.stderr);
  const trust = runCli(['profile', 'trust', '--out', join(work, 'trust.mobileconfig'), '--data', dataDir]);
  assert.equal(trust.status, 0, trust.stderr);
  const init = runCli(['init', '--data', dataDir]);
  assert.equal(init.status, 0, init.stderr);
  assert.match(init.stdout, /already initialised/);

  // The enrollment profile points at the server's URLs, with its organization and topic.
  const plist = join(work, 'enroll.plist');
  const opened = run('openssl', ['cms', '-verify', '-noverify', '-inform', 'DER', '-in', join(work, 'enroll.mobileconfig'), '-out', plist]);
  assert.equal(opened.status, 0, opened.stderr);
  const profile = readFileSync(plist, 'utf8');
  assert.ok(profile.includes(`<string>${publicUrl}/mdm/server</string>`), 'ServerURL is the public URL');
  assert.ok(profile.includes(`<string>${publicUrl}/scep</string>`), 'so is the SCEP URL');
  assert.ok(profile.includes('<string>com.apple.mgmt.External.names-test</string>'));
  assert.ok(profile.includes('Names Test Org'));

  // A URL other than the server's is refused, not put in a profile.
  const other = runCli(['enroll-link', '--data', dataDir, '--public-url', 'https://elsewhere.example']);
  assert.notEqual(other.status, 0);
  assert.match(other.stderr, /is not the server's/);

  // The certificate being served is untouched: same one, still active, the only one, and the listener presents it.
  assert.deepEqual(inventory(), [served]);
  assert.deepEqual(
    tlsIssued().map((e) => e.actor),
    ['system'],
    'no re-issue by anyone since the first',
  );
  assert.equal(await servedFingerprint(server.port), served.fingerprintSha256);
});
