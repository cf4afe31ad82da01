import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { run, runCli, startServer, tempDir, TEST_FLAGS } from '../helpers/cli.ts';
import { startPostgres } from '../helpers/postgres.ts';

test('certmdm store migrate copies a SQLite deployment into PostgreSQL, verified; a second run into it is refused', async () => {
  const cluster = await startPostgres();
  after(() => cluster.stop());
  const source = join(tempDir(), 'data');
  const ok = (args: string[]) => {
    const r = runCli(args);
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  // A deployment with a CA, an admin token, challenges, profiles and an audit trail.
  const token = /(cmdm_\S+)/.exec(ok(['init', '--data', source, ...TEST_FLAGS]))![1]!;
  ok(['scep', 'challenge', '--data', source]);
  ok([
    'profile',
    'enroll',
    '--out',
    join(tempDir(), 'enroll.mobileconfig'),
    '--data',
    source,
    '--push-topic',
    'com.apple.mgmt.External.migrate-test',
  ]);
  ok(['profile', 'trust', '--out', join(tempDir(), 'trust.mobileconfig'), '--data', source]);

  const url = await cluster.createDatabase();
  const report = ok(['store', 'migrate', '--from', source, '--to', url]);
  assert.match(report, /certificates, each matching its SHA-256 fingerprint/);
  assert.match(report, /profiles\s+2/);

  // A second instance's data directory: the master key only; everything else comes from PostgreSQL.
  const instance = join(tempDir(), 'instance');
  mkdirSync(instance, { mode: 0o700 });
  copyFileSync(join(source, 'master.key'), join(instance, 'master.key'));
  const inventory = (args: string[]) => JSON.parse(ok(['certs', 'list', '--json', ...args])) as unknown[];
  assert.deepEqual(inventory(['--data', instance, '--store', url]), inventory(['--data', source]), 'the same inventory, row for row');
  const audit = (args: string[]) =>
    (JSON.parse(ok(['audit', 'list', '--json', '--limit', '500', ...args])) as { action: string }[]).map((e) => e.action);
  assert.deepEqual(audit(['--data', instance, '--store', url]), audit(['--data', source]), 'the same audit trail');

  // The migrated deployment serves: the admin token made on SQLite opens the API of an instance on PostgreSQL.
  const server = await startServer(instance, ['--store', url, '--lifecycle-interval-minutes', '0']);
  after(() => server.stop());
  const root = join(tempDir(), 'root.pem');
  ok(['certs', 'export', '--role', 'root', '--out', root, '--data', instance, '--store', url]);
  const api = run('curl', [
    '-sS',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '--cacert',
    root,
    '-H',
    `Authorization: Bearer ${token}`,
    `https://localhost:${server.port}/v1/certs`,
  ]);
  assert.equal(api.stdout, '200', api.stderr);

  const again = runCli(['store', 'migrate', '--from', source, '--to', url]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /is not empty/);
  assert.equal(again.stderr.trim().split('\n').length, 1, 'one line');
  assert.deepEqual(inventory(['--data', instance, '--store', url]), inventory(['--data', source]), 'nothing changed by the refusal');
});
