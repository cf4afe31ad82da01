import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort, run, runCli, startServer, tempDir } from '../helpers/cli.ts';

test('enroll-link from the CLI, fetched with curl over HTTPS, yields a profile openssl verifies; profile trust writes one', async (t) => {
  const dataDir = join(tempDir(), 'data');
  const port = await freePort();
  const settings = ['--push-topic', 'com.apple.mgmt.External.cli-test', '--public-url', `https://localhost:${port}`];
  const server = await startServer(dataDir, ['--port', String(port), ...settings]);
  t.after(() => server.stop());
  const work = tempDir();
  const root = join(work, 'root.pem');
  assert.equal(runCli(['certs', 'export', '--role', 'root', '--out', root, '--data', dataDir]).status, 0);

  const link = runCli(['enroll-link', '--identity', 'scep', '--data', dataDir, ...settings]);
  assert.equal(link.status, 0, link.stderr);
  const url = link.stdout.trim();
  assert.match(url, new RegExp(`^https://localhost:${port}/enroll/[0-9a-f]{56}$`));
  const file = join(work, 'enroll.mobileconfig');
  const fetched = run('curl', ['-sS', '--cacert', root, '-o', file, '-w', '%{http_code} %{content_type}', url]);
  assert.equal(fetched.stdout, '200 application/x-apple-aspen-config');
  const verified = run('openssl', ['cms', '-verify', '-inform', 'DER', '-in', file, '-CAfile', root, '-out', join(work, 'enroll.plist')]);
  assert.equal(verified.status, 0, verified.stderr);
  assert.match(readFileSync(join(work, 'enroll.plist'), 'utf8'), /<string>com.apple.mgmt.External.cli-test<\/string>/);
  assert.equal(run('curl', ['-sS', '--cacert', root, '-o', '/dev/null', '-w', '%{http_code}', url]).stdout, '410');
  assert.doesNotMatch(server.stdout(), new RegExp(url.split('/').pop()!), 'the link token never reaches the log');

  const trust = join(work, 'trust.mobileconfig');
  const written = runCli(['profile', 'trust', '--out', trust, '--data', dataDir, ...settings]);
  assert.equal(written.status, 0, written.stderr);
  assert.equal(run('openssl', ['cms', '-verify', '-inform', 'DER', '-in', trust, '-CAfile', root, '-out', '/dev/null']).status, 0);
});
