import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { TEST_FLAGS, run, runCli, startServer, tempDir } from '../helpers/cli.ts';

const PASSWORD = 'a long enough console password';

/** curl against the compiled server, with a cookie jar: status, headers and body. */
function curl(jar: string, url: string, args: string[] = []): { status: number; headers: string; body: string } {
  const r = run('curl', ['-sk', '-c', jar, '-b', jar, '-D', '-', url, ...args]);
  assert.equal(r.status, 0, r.stderr);
  const split = r.stdout.indexOf('\r\n\r\n');
  const headers = r.stdout.slice(0, split);
  return { status: Number(/^HTTP\/\S+ (\d+)/.exec(headers)?.[1]), headers, body: r.stdout.slice(split + 4) };
}

function login(base: string, jar: string, password: string) {
  const form = curl(jar, `${base}/console/login`);
  const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)![1]!;
  return curl(jar, `${base}/console/login`, [
    '--data-urlencode',
    `csrf=${csrf}`,
    '-d',
    'name=ops',
    '--data-urlencode',
    `password=${password}`,
  ]);
}

test('certmdm admin: accounts from the command line (password on stdin, never an argument); the compiled server logs them in', async (t) => {
  const dataDir = join(tempDir(), 'data');
  assert.equal(runCli(['init', '--data', dataDir, ...TEST_FLAGS]).status, 0);
  const short = runCli(['admin', 'create', '--name', 'ops', '--data', dataDir], { input: 'too short\n' });
  assert.equal(short.status, 2);
  assert.match(short.stderr, /12 to 1024 characters/);
  const bad = runCli(['admin', 'create', '--name', 'no spaces', '--data', dataDir], { input: `${PASSWORD}\n` });
  assert.equal(bad.status, 2);
  const created = runCli(['admin', 'create', '--name', 'ops', '--data', dataDir], { input: `${PASSWORD}\n` });
  assert.equal(created.status, 0, created.stderr);
  const again = runCli(['admin', 'create', '--name', 'ops', '--data', dataDir], { input: `${PASSWORD}\n` });
  assert.notEqual(again.status, 0);
  assert.match(again.stderr, /already exists/);
  const listed = JSON.parse(runCli(['admin', 'list', '--json', '--data', dataDir]).stdout) as {
    name: string;
    lastLoginAt: string | null;
  }[];
  assert.deepEqual(
    listed.map((a) => [a.name, a.lastLoginAt]),
    [['ops', null]],
  );

  const server = await startServer(dataDir);
  t.after(() => server.stop());
  const base = `https://127.0.0.1:${server.port}`;
  const jar = join(tempDir(), 'jar');
  const refused = login(base, jar, 'not the password, no');
  assert.equal(refused.status, 403);
  const ok = login(base, jar, PASSWORD);
  assert.equal(ok.status, 303, ok.body);
  assert.match(ok.headers, /set-cookie: __Host-certmdm-console=[A-Za-z0-9_-]{43}; Path=\/; Secure; HttpOnly; SameSite=Strict/i);
  const session = /__Host-certmdm-console=([A-Za-z0-9_-]{43})/.exec(ok.headers)![1]!;

  // The forecast page and the CLI tell the same thing from the same inventory.
  const page = curl(jar, `${base}/console/forecast?days=30`);
  assert.equal(page.status, 200);
  assert.match(page.headers, /content-security-policy: default-src 'none'; script-src 'none'/i);
  assert.match(page.headers, /cache-control: no-store/i);
  const cli = runCli(['lifecycle', 'forecast', '--days', '30', '--json', '--data', dataDir]);
  assert.equal(cli.status, 0, cli.stderr);
  const forecast = JSON.parse(cli.stdout) as { days: number; devices: number; lost: unknown[] };
  assert.equal(forecast.days, 30);
  assert.match(page.body, new RegExp(`id="forecast-summary" data-lost="${forecast.lost.length}" data-devices="${forecast.devices}"`));
  assert.match(runCli(['lifecycle', 'forecast', '--data', dataDir]).stdout, /Forecast .* \(90 days\), 0 enrolled device\(s\)/);
  assert.equal(runCli(['lifecycle', 'forecast', '--days', '0', '--data', dataDir]).status, 2);

  // Neither the password nor the session secret is anywhere in the data directory (only their hashes).
  const files = readdirSync(dataDir).map((f) => readFileSync(join(dataDir, f)));
  for (const secret of [PASSWORD, session]) assert.ok(!files.some((b) => b.includes(secret)), 'no secret in clear at rest');
  assert.ok(
    !server.stdout().includes(PASSWORD) && !server.stderr().includes(PASSWORD) && !server.stderr().includes(session),
    'nor in the log',
  );

  // A new password ends every session of the account at once.
  assert.equal(runCli(['admin', 'passwd', '--name', 'ops', '--data', dataDir], { input: `${PASSWORD} changed\n` }).status, 0);
  const after = curl(jar, `${base}/console`);
  assert.equal(after.status, 303);
  assert.match(after.headers, /location: \/console\/login/i);
  assert.equal(login(base, jar, PASSWORD).status, 403, 'the old password no longer works');
  assert.equal(login(base, jar, `${PASSWORD} changed`).status, 303);
});

test('serve --console false: no console at all', async (t) => {
  const dataDir = join(tempDir(), 'data');
  const server = await startServer(dataDir, ['--console', 'false']);
  t.after(() => server.stop());
  const r = curl(join(tempDir(), 'jar'), `https://127.0.0.1:${server.port}/console/login`);
  assert.equal(r.status, 404);
});
