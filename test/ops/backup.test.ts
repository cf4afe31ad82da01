import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, snapshot, startServer, tempDir } from '../helpers/cli.ts';
import { plistBody } from '../helpers/device.ts';
import { mtlsServer, putAs, scepIdentity } from '../helpers/mtls.ts';
import { plistlibPlain } from '../helpers/profile.ts';

const TOPIC = 'com.apple.mgmt.External.backup-test';

/** A refusal: a non-zero exit with one line on stderr, matching `reason`. */
function refused(r: { status: number | null; stderr: string }, reason: RegExp) {
  assert.notEqual(r.status, 0);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, reason);
}

test('backup while serving, restore elsewhere: the same CA, bindings and queue answer the same device; bad input refused', async (t) => {
  const { dataDir, server, say, authenticate, root, admin } = await mtlsServer(TOPIC);
  t.after(() => server.stop());
  const udid = 'BACKUP-DEVICE-1';
  const device = scepIdentity(dataDir, server.port, root, udid);
  assert.equal(say(device, authenticate(udid)).status, 200);
  const queued = admin('POST', '/v1/commands', { devices: [udid], command: { RequestType: 'ProfileList' }, push: false });
  assert.equal(queued.status, 201, queued.body);
  const commandUuid = JSON.parse(queued.body).command_uuid as string;

  // A snapshot while the server serves; it holds the sealed keys, so only its owner reads it.
  const work = tempDir('backup-');
  const file = join(work, 'certmdm.backup');
  const made = runCli(['backup', '--out', file, '--data', dataDir]);
  assert.equal(made.status, 0, made.stderr);
  assert.match(made.stdout, /backed up to .*: schema \d+, \d+ certificates, 1 enrollments/);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const bytes = readFileSync(file);
  refused(runCli(['backup', '--out', file, '--data', dataDir]), /exists; a backup never overwrites a file/);
  assert.ok(readFileSync(file).equals(bytes), 'the existing backup is untouched');

  // Elsewhere, without the master key: refused, and nothing made.
  const target = join(tempDir('restore-'), 'data');
  refused(runCli(['restore', '--from', file, '--data', target]), /master key/);
  assert.equal(existsSync(target), false);

  // A wrong master key: refused, nothing written.
  mkdirSync(target, { mode: 0o700 });
  writeFileSync(join(target, 'master.key'), 'ab'.repeat(32), { mode: 0o600 });
  refused(runCli(['restore', '--from', file, '--data', target]), /does not open this backup/);
  assert.equal(existsSync(join(target, 'certmdm.db')), false);

  // A truncated backup: refused, nothing written.
  copyFileSync(join(dataDir, 'master.key'), join(target, 'master.key'));
  const truncated = join(work, 'truncated.backup');
  copyFileSync(file, truncated);
  truncateSync(truncated, Math.floor(bytes.length / 2));
  refused(runCli(['restore', '--from', truncated, '--data', target]), /damaged|not a readable certmdm backup/);
  assert.equal(existsSync(join(target, 'certmdm.db')), false);

  // Onto the live data directory: refused without --force, and with it while the server has it open.
  const live = snapshot(dataDir, { ignore: /-(wal|shm)$/ });
  refused(runCli(['restore', '--from', file, '--data', dataDir]), /exists; restore replaces a database only with --force/);
  refused(runCli(['restore', '--from', file, '--data', dataDir, '--force']), /is in use/);
  assert.deepEqual(snapshot(dataDir, { ignore: /-(wal|shm)$/ }), live, 'the live data directory is unchanged');

  // The real restore, and a server on it: the same root, and the same device is served its queued command.
  const restored = runCli(['restore', '--from', file, '--data', target]);
  assert.equal(restored.status, 0, restored.stderr);
  assert.equal(statSync(join(target, 'certmdm.db')).mode & 0o777, 0o600);
  const again = await startServer(target, ['--scep-ciphers', 'aes,des3,des', '--mdm-identity-sources', 'mtls', '--push-topic', TOPIC]);
  t.after(() => again.stop());
  const rootOf = (dir: string) =>
    (JSON.parse(runCli(['certs', 'list', '--json', '--data', dir]).stdout) as { role: string; fingerprintSha256: string }[]).find(
      (c) => c.role === 'root',
    )!.fingerprintSha256;
  assert.equal(rootOf(target), rootOf(dataDir));
  const idle = putAs(
    `https://localhost:${again.port}/mdm/server`,
    device,
    root,
    plistBody({ UDID: udid, Status: 'Idle' }),
    'application/x-apple-aspen-mdm',
  );
  assert.equal(idle.status, 200, idle.body);
  assert.equal(plistlibPlain(idle.raw).CommandUUID, commandUuid, 'the queue came back with it');
  // Another device's identity still may not speak for it: the bindings came back too.
  const other = scepIdentity(target, again.port, root, 'BACKUP-OTHER');
  assert.equal(
    putAs(
      `https://localhost:${again.port}/mdm/server`,
      other,
      root,
      plistBody({ UDID: udid, Status: 'Idle' }),
      'application/x-apple-aspen-mdm',
    ).status,
    403,
  );
});
