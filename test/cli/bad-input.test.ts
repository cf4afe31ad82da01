import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, snapshot, tempDir, TEST_FLAGS } from '../helpers/cli.ts';

/** An initialised data directory and its snapshot, to prove a refusal leaves every byte as it was. */
function initialised() {
  const dataDir = join(tempDir(), 'data');
  const r = runCli(['init', '--data', dataDir, ...TEST_FLAGS]);
  assert.equal(r.status, 0, r.stderr);
  return { dataDir, before: snapshot(dataDir, { ignore: /-(wal|shm)$/ }) };
}

function assertRefused(r: { status: number | null; stderr: string }, pattern: RegExp) {
  assert.notEqual(r.status, 0, 'exit status is non-zero');
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line of error, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^certmdm: error: /);
  assert.match(lines[0]!, pattern);
}

for (const command of [['init'], ['serve', '--port', '0']]) {
  test(`${command[0]}: a wrong master key is refused and nothing changes`, () => {
    const { dataDir, before } = initialised();
    const r = runCli([...command, '--data', dataDir, ...TEST_FLAGS], { env: { CERTMDM_MASTER_KEY: 'cd'.repeat(32) } });
    assertRefused(r, /master key does not open this data directory/);
    assert.deepEqual(snapshot(dataDir, { ignore: /-(wal|shm)$/ }), before);
  });
}

test('a corrupt master key file is refused and not replaced', () => {
  const { dataDir } = initialised();
  writeFileSync(join(dataDir, 'master.key'), 'this is not a key\n', { mode: 0o600 });
  const before = snapshot(dataDir, { ignore: /-(wal|shm)$/ });
  assertRefused(runCli(['serve', '--port', '0', '--data', dataDir, ...TEST_FLAGS]), /master key file .* is not a master key/);
  assert.deepEqual(snapshot(dataDir, { ignore: /-(wal|shm)$/ }), before);
});

test('a missing master key file for an existing database is refused, not regenerated', () => {
  const { dataDir } = initialised();
  const key = readFileSync(join(dataDir, 'master.key'));
  const moved = join(tempDir(), 'master.key');
  writeFileSync(moved, key, { mode: 0o600 });
  rmSync(join(dataDir, 'master.key'));
  const before = snapshot(dataDir, { ignore: /-(wal|shm)$/ });
  assertRefused(runCli(['serve', '--port', '0', '--data', dataDir, ...TEST_FLAGS]), /master key file .* is missing/);
  assert.deepEqual(snapshot(dataDir, { ignore: /-(wal|shm)$/ }), before);
  // The key given explicitly works again.
  const ok = runCli(['certs', 'list', '--data', dataDir, '--master-key-file', moved]);
  assert.equal(ok.status, 0, ok.stderr);
});

test('a master key file readable by others is refused', () => {
  const { dataDir, before } = initialised();
  chmodSync(join(dataDir, 'master.key'), 0o644);
  assertRefused(runCli(['certs', 'list', '--data', dataDir]), /readable by others/);
  chmodSync(join(dataDir, 'master.key'), 0o600);
  assert.deepEqual(snapshot(dataDir, { ignore: /-(wal|shm)$/ }), before);
});

test('a corrupt database is refused and left as it is', () => {
  const { dataDir } = initialised();
  const db = join(dataDir, 'certmdm.db');
  const bytes = readFileSync(db);
  bytes.fill(0x5a, 0, 100); // destroy the SQLite header
  writeFileSync(db, bytes);
  const before = snapshot(dataDir, { ignore: /-(wal|shm)$/ });
  assertRefused(runCli(['serve', '--port', '0', '--data', dataDir, ...TEST_FLAGS]), /is not a valid SQLite database/);
  assert.deepEqual(snapshot(dataDir, { ignore: /-(wal|shm)$/ }), before);
});

test('a database locked by another process is refused within the busy timeout', async () => {
  const { dataDir, before } = initialised();
  // Python's sqlite3 (not our code) takes an exclusive lock and holds it.
  const holder = spawn('python3', [
    '-c',
    `
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('PRAGMA locking_mode=EXCLUSIVE')
c.execute('BEGIN EXCLUSIVE')
c.execute("SELECT count(*) FROM meta").fetchall()
print('locked', flush=True)
time.sleep(30)
`,
    join(dataDir, 'certmdm.db'),
  ]);
  try {
    await new Promise<void>((resolve, reject) => {
      holder.stdout.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
      holder.on('exit', (code) => reject(new Error(`lock holder exited ${code}`)));
    });
    const r = runCli(['serve', '--port', '0', '--data', dataDir, '--db-busy-timeout-ms', '200', ...TEST_FLAGS]);
    assertRefused(r, /is locked by another process/);
  } finally {
    holder.kill();
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.deepEqual(snapshot(dataDir, { ignore: /-(wal|shm)$/ }), before);
});

test('an unwritable data directory is refused', () => {
  const dataDir = join(tempDir(), 'data');
  mkdirSync(dataDir);
  chmodSync(dataDir, 0o555);
  // Root ignores permission bits; the CLI runs without that privilege (and without needing another user to be able
  // to read the checkout, whose parent directories may be private).
  const r = runCli(['init', '--data', dataDir, ...TEST_FLAGS], { bindPermissions: true });
  assertRefused(r, /data directory .* is not writable|cannot create data directory/);
  assert.deepEqual(snapshot(dataDir), {});
});

test('a data directory path that is a file is refused', () => {
  const file = join(tempDir(), 'data');
  writeFileSync(file, 'not a directory');
  assertRefused(runCli(['init', '--data', file, ...TEST_FLAGS]), /is not a directory/);
  assert.equal(readFileSync(file, 'utf8'), 'not a directory');
});

for (const hostname of ['bad_host!', '-leading.example', 'a..b', 'x'.repeat(64) + '.example', '*.example.com']) {
  test(`hostname '${hostname.slice(0, 20)}' is refused before anything is created`, () => {
    const dataDir = join(tempDir(), 'data');
    const r = runCli(['init', '--data', dataDir, '--root-algorithm', 'rsa-2048', `--hostname=${hostname}`]);
    assertRefused(r, /is not a valid DNS name or IP address/);
    assert.throws(() => readFileSync(join(dataDir, 'certmdm.db')), /ENOENT/);
  });
}

test('a TLS validity over 825 days is refused', () => {
  const dataDir = join(tempDir(), 'data');
  assertRefused(runCli(['init', '--data', dataDir, ...TEST_FLAGS, '--tls-days', '900']), /exceeds 825/);
});

test('lifetimes under which identities would be cut short by their issuer are refused at start, in one line', () => {
  const dataDir = join(tempDir(), 'data');
  assertRefused(
    runCli(['serve', '--port', '0', '--data', dataDir, ...TEST_FLAGS, '--intermediate-days', '120', '--identity-days', '90']),
    /--intermediate-days 120 cannot serve --identity-days 90/,
  );
  assertRefused(
    runCli(['init', '--data', dataDir, ...TEST_FLAGS, '--root-days', '150', '--intermediate-days', '150', '--identity-days', '90']),
    /--root-days 150 cannot serve/,
  );
  assert.equal(existsSync(dataDir), false, 'nothing was created');
});

test('unknown options and commands are usage errors', () => {
  const r = runCli(['serve', '--no-such-option']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^certmdm: error: .*no-such-option/);
});
