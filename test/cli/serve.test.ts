import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openApp } from '../../src/app/context.ts';
import { resolveConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { exportRole, runCli, run, snapshot, startServer, tempDir, TEST_FLAGS } from '../helpers/cli.ts';

function init(dataDir: string) {
  const r = runCli(['init', '--data', dataDir, ...TEST_FLAGS]);
  assert.equal(r.status, 0, r.stderr);
  const token = /^(cmdm_\S+)$/m.exec(r.stdout)?.[1];
  return { stdout: r.stdout, token };
}

function fingerprints(dataDir: string): Record<string, string> {
  const r = runCli(['certs', 'list', '--json', '--data', dataDir]);
  assert.equal(r.status, 0, r.stderr);
  const entries = JSON.parse(r.stdout) as { role: string; status: string; fingerprintSha256: string }[];
  return Object.fromEntries(entries.filter((e) => e.status === 'active').map((e) => [e.role, e.fingerprintSha256]));
}

async function get(port: string | number, path: string, ca: string, token?: string) {
  const r = run('curl', [
    '-sS',
    '--cacert',
    ca,
    '-w',
    '\n%{http_code}',
    ...(token ? ['-H', `Authorization: Bearer ${token}`] : []),
    `https://localhost:${port}${path}`,
  ]);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  const status = Number(lines.pop());
  return { status, body: lines.join('\n') };
}

test('a served certmdm passes openssl s_client against its own root, and restarts on the same CA', async (t) => {
  const dataDir = join(tempDir(), 'data');
  const server = await startServer(dataDir);
  t.after(() => server.stop());
  const token = /^\s+(cmdm_\S+)$/m.exec(server.stderr())?.[1];
  assert.ok(token, 'the first start prints the first admin token');
  assert.match(server.stderr(), /server URL\s+https:\/\/localhost:\d+\//);
  const root = exportRole(dataDir, 'root');

  const sclient = run(
    'openssl',
    [
      's_client',
      '-connect',
      `127.0.0.1:${server.port}`,
      '-servername',
      'localhost',
      '-CAfile',
      root,
      '-verify_return_error',
      '-verify_hostname',
      'localhost',
    ],
    { input: '' },
  );
  assert.equal(sclient.status, 0, sclient.stderr + sclient.stdout);
  assert.match(sclient.stdout, /Verify return code: 0 \(ok\)/);

  // s_client must fail against a root that is not ours: the test can tell a good chain from a bad one.
  const otherDir = join(tempDir(), 'other');
  init(otherDir);
  const foreign = run(
    'openssl',
    ['s_client', '-connect', `127.0.0.1:${server.port}`, '-CAfile', exportRole(otherDir, 'root'), '-verify_return_error'],
    { input: '' },
  );
  assert.notEqual(foreign.status, 0);

  const health = await get(server.port, '/healthz', root);
  assert.equal(health.status, 200);
  assert.equal(JSON.parse(health.body).status, 'ok');

  const anonymous = await get(server.port, '/v1/certs', root);
  assert.equal(anonymous.status, 401);
  const forged = await get(server.port, '/v1/certs', root, token!.slice(0, -4) + 'AAAA');
  assert.equal(forged.status, 401);
  const listed = await get(server.port, '/v1/certs', root, token);
  assert.equal(listed.status, 200);
  const certs = JSON.parse(listed.body).certificates as { role: string; notAfter: string; dependants: unknown[] }[];
  assert.deepEqual(new Set(certs.map((c) => c.role)), new Set(['root', 'intermediate', 'tls', 'profile-signing', 'scep-ra']));
  const expiries = certs.map((c) => c.notAfter);
  assert.deepEqual(expiries, [...expiries].sort(), 'soonest expiry first');
  assert.ok(certs.find((c) => c.role === 'root')!.dependants.length >= 1);
  assert.doesNotMatch(server.stdout(), new RegExp(token!.split('_')[2]!), 'the token never reaches the log');

  const audit = runCli(['audit', 'list', '--json', '--data', dataDir]);
  const events = JSON.parse(audit.stdout) as { action: string; outcome: string; reason: string | null }[];
  assert.ok(events.some((e) => e.action === 'admin.authenticate' && e.outcome === 'denied' && e.reason === 'unknown token'));
  assert.ok(events.some((e) => e.action === 'certs.list' && e.outcome === 'ok'));

  const before = fingerprints(dataDir);
  await server.stop();
  const again = await startServer(dataDir);
  t.after(() => again.stop());
  assert.deepEqual(fingerprints(dataDir), before, 'a restart reuses the CA, TLS and signing certificates');
  assert.doesNotMatch(again.stderr(), /cmdm_/, 'the first token is printed only once');
  const sclient2 = run('openssl', ['s_client', '-connect', `127.0.0.1:${again.port}`, '-CAfile', root, '-verify_return_error'], {
    input: '',
  });
  assert.equal(sclient2.status, 0, sclient2.stderr);
});

test('a second init overwrites nothing', () => {
  const dataDir = join(tempDir(), 'data');
  const first = init(dataDir);
  assert.ok(first.token);
  const before = snapshot(dataDir, { ignore: /-(wal|shm)$/ });
  const second = runCli(['init', '--data', dataDir, ...TEST_FLAGS]);
  assert.equal(second.status, 0, second.stderr);
  assert.match(second.stdout, /already initialised/);
  assert.doesNotMatch(second.stdout, /cmdm_/);
  assert.deepEqual(snapshot(dataDir, { ignore: /-(wal|shm)$/ }), before);
});

test('no file under the data directory holds a private key in the clear; keys and directory are private', async () => {
  const dataDir = join(tempDir(), 'data');
  const server = await startServer(dataDir);
  await server.stop();
  assert.equal(statSync(dataDir).mode & 0o777, 0o700);

  const app = await openApp(resolveConfig({ data: dataDir, 'root-algorithm': 'rsa-2048', hostname: ['localhost', '127.0.0.1'] }, {}), {
    logger: createLogger('silent'),
    create: false,
  });
  const keys = await app.store.listSealedKeys();
  const plaintexts = await Promise.all(keys.map(async (k) => (await app.keyring.open(k.id)).export({ type: 'pkcs8', format: 'der' })));
  const pkcs1 = await Promise.all(
    keys
      .filter((k) => k.algorithm.startsWith('rsa'))
      .map(async (k) => (await app.keyring.open(k.id)).export({ type: 'pkcs1', format: 'der' })),
  );
  await app.close();
  assert.equal(keys.length, 5, 'root, intermediate, TLS, profile-signing and SCEP RA keys are all in the store');

  for (const name of readdirSync(dataDir)) {
    const path = join(dataDir, name);
    assert.equal(statSync(path).mode & 0o777, 0o600, `${name} is 0600`);
    const bytes = readFileSync(path);
    assert.doesNotMatch(bytes.toString('latin1'), /PRIVATE KEY/);
    for (const der of [...plaintexts, ...pkcs1]) {
      // The private exponent region is the secret part; search a 64-byte slice from the middle of the DER.
      const probe = der.subarray(Math.floor(der.length / 2), Math.floor(der.length / 2) + 64);
      assert.equal(bytes.indexOf(probe), -1, `${name} contains plaintext private key material`);
    }
  }
});

test('serve --help documents every option', () => {
  const r = runCli(['serve', '--help']);
  assert.equal(r.status, 0);
  for (const option of [
    '--data',
    '--config',
    '--listen',
    '--port',
    '--hostname',
    '--root-algorithm',
    '--tls-days',
    '--master-key-file',
    'CERTMDM_MASTER_KEY',
    'CERTMDM_DATA',
  ]) {
    assert.ok(r.stdout.includes(option), option);
  }
});

test('config comes from flags over env over the config file', async () => {
  const { resolveConfig: resolve } = await import('../../src/config.ts');
  const dir = tempDir();
  const file = join(dir, 'certmdm.json');
  (await import('node:fs')).writeFileSync(file, JSON.stringify({ port: '9000', organization: 'File Org', 'tls-days': '100' }));
  const fromFile = resolve({ config: file }, {}, dir);
  assert.equal(fromFile.port, 9000);
  assert.equal(fromFile.organization, 'File Org');
  const fromEnv = resolve({ config: file }, { CERTMDM_PORT: '9100', CERTMDM_HOSTNAMES: 'a.example,10.0.0.1' }, dir);
  assert.equal(fromEnv.port, 9100);
  assert.deepEqual(fromEnv.hostnames, ['a.example', '10.0.0.1']);
  const fromFlag = resolve({ config: file, port: '9200' }, { CERTMDM_PORT: '9100' }, dir);
  assert.equal(fromFlag.port, 9200);
  assert.equal(fromFlag.tlsDays, 100);
  assert.throws(() => resolve({ 'tls-days': '826' }, {}, dir), /exceeds 825/);
});
