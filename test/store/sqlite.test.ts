import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { SQLITE_MIGRATIONS } from '../../src/store/sqlite/migrations.ts';
import { CommandQueue } from '../../src/mdm/command-queue.ts';
import { DeviceTokens } from '../../src/mdm/device-tokens.ts';
import { MasterKey } from '../../src/pki/master-key.ts';
import { deviceChannel } from '../../src/store/types.ts';
import { SqliteStore } from '../../src/store/sqlite/index.ts';
import { tempDir } from '../helpers/cli.ts';
import { storeConformance } from './conformance/index.ts';

storeConformance('sqlite', async () => SqliteStore.open(join(tempDir(), 'store.db')));

test('sqlite: WAL and foreign keys are on', async () => {
  const path = join(tempDir(), 'store.db');
  const store = SqliteStore.open(path);
  await store.migrate();
  await store.close();
  const db = new Database(path, { readonly: true });
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  db.close();
});

test('sqlite: a database from a newer certmdm is refused, not downgraded', async () => {
  const path = join(tempDir(), 'store.db');
  const store = SqliteStore.open(path);
  await store.migrate();
  await store.close();
  const db = new Database(path);
  db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)").run();
  db.close();
  const again = SqliteStore.open(path);
  await assert.rejects(again.migrate(), /schema version 999, newer than this certmdm knows/);
  await again.close();
});

/** A database as an older certmdm left it: exactly `versions` applied, recorded as the runner records them. */
function databaseAt(path: string, versions: number[]): Database.Database {
  const db = new Database(path);
  db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  for (const m of SQLITE_MIGRATIONS.filter((m) => versions.includes(m.version))) {
    db.exec(m.sql);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)').run(m.version, m.name);
  }
  return db;
}

test('sqlite: every missing migration runs once, in order, even below the highest applied one (numbers may have gaps)', async () => {
  const path = join(tempDir(), 'store.db');
  const known = SQLITE_MIGRATIONS.map((m) => m.version);
  assert.deepEqual(
    known,
    [...known].sort((a, b) => a - b),
    'listed in version order',
  );
  assert.equal(new Set(known).size, known.length, 'each number once');
  // 9 is missing while 12 is applied: a branch's migration landed before an earlier-numbered one.
  databaseAt(
    path,
    known.filter((v) => v !== 9),
  ).close();
  const store = SqliteStore.open(path);
  await store.migrate();
  await store.migrate();
  await store.close();
  const db = new Database(path, { readonly: true });
  assert.deepEqual(
    (db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[]).map((r) => r.version),
    known,
  );
  assert.ok(
    (db.prepare('PRAGMA table_info(enrollments)').all() as { name: string }[]).some((c) => c.name === 'renewal_attempts'),
    'the missing migration ran',
  );
  db.close();
});

test('sqlite: a database with a migration this certmdm does not know is refused, not migrated', async () => {
  const path = join(tempDir(), 'store.db');
  const store = SqliteStore.open(path);
  await store.migrate();
  await store.close();
  const db = new Database(path);
  db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (0, 'another-build', 0)").run();
  db.close();
  const again = SqliteStore.open(path);
  await assert.rejects(again.migrate(), /migration 0 that this certmdm does not know/);
  await again.close();
});

test('sqlite: migration 12 converts string channel ids to (enrollment, user), setting aside any it cannot read one way', async () => {
  const path = join(tempDir(), 'store.db');
  const db = databaseAt(
    path,
    SQLITE_MIGRATIONS.map((m) => m.version).filter((v) => v < 12),
  );
  db.prepare(
    "INSERT INTO certificates (id, role, subject, serial_hex, fingerprint_sha256, not_before, not_after, status, der, created_at) VALUES ('c', 'device-identity', 'CN=x', '01', 'fp', 0, 1, 'active', x'00', 0)",
  ).run();
  for (const id of ['V', 'V:U', 'W', 'W:x:y'])
    db.prepare(
      "INSERT INTO enrollments (id, kind, status, identity_certificate_id, enrolled_at, last_seen_at) VALUES (?, 'device', 'enrolled', 'c', 0, 0)",
    ).run(id);
  const userChannel = db.prepare(
    'INSERT INTO user_channels (id, enrollment_id, user_id, user_short_name, push_magic, last_seen_at) VALUES (?, ?, ?, ?, ?, 5)',
  );
  userChannel.run('V:U', 'V', 'U', 'victim-user', 'magic-v');
  userChannel.run('W:x', 'W', 'x', null, 'magic-w');
  const queued = [
    ['V', 'device of V'],
    ['V:U', 'device V:U or user U of V'],
    ['W:x', 'user x of W'],
    ['W:y', 'user y of W, not checked in yet'],
    ['W:x:y', 'device W:x:y or user x:y of W'],
    ['GHOST', 'nothing'],
    ['GHOST:u', 'nothing'],
  ];
  for (const [i, [channel]] of queued.entries()) {
    db.prepare(
      "INSERT INTO commands (uuid, request_type, body, priority, created_by, created_at) VALUES (?, 'ProfileList', x'00', 0, 't', 0)",
    ).run(`c${i}`);
    db.prepare("INSERT INTO command_queue (channel_id, command_uuid, priority, status, updated_at) VALUES (?, ?, 0, 'queued', 0)").run(
      channel,
      `c${i}`,
    );
  }
  db.close();

  const store = SqliteStore.open(path);
  await store.migrate();
  const uuids = async (enrollmentId: string, userId: string | null) =>
    (await store.listQueue({ enrollmentId, userId })).map((q) => q.commandUuid);
  assert.deepEqual(await uuids('V', null), ['c0']);
  assert.deepEqual(await uuids('V', 'U'), [], 'an ambiguous id is given to neither reading');
  assert.deepEqual(await uuids('V:U', null), []);
  assert.deepEqual(await uuids('W', 'x'), ['c2']);
  assert.deepEqual(await uuids('W', 'y'), ['c3']);
  assert.deepEqual(await uuids('W:x:y', null), []);
  assert.deepEqual(await uuids('W', 'x:y'), []);
  assert.deepEqual(
    [await store.getUserChannel('V', 'U'), await store.getUserChannel('W', 'x')].map((c) => [
      c?.userShortName,
      c?.pushMagic,
      c?.lastSeenAt.getTime(),
    ]),
    [
      ['victim-user', 'magic-v', 5],
      [null, 'magic-w', 5],
    ],
  );
  const audit = await store.listAudit({ action: 'migration.channel-unresolved' });
  await store.close();
  assert.deepEqual(audit.map((e) => [e.target, e.outcome, e.detail?.command, e.detail?.readings]).sort(), [
    ['GHOST', 'denied', 'c5', 0],
    ['GHOST:u', 'denied', 'c6', 0],
    ['V:U', 'denied', 'c1', 2],
    ['W:x:y', 'denied', 'c4', 2],
  ]);
  const after = new Database(path, { readonly: true });
  assert.deepEqual(
    (after.prepare('SELECT channel_id, command_uuid, status FROM command_queue_unresolved ORDER BY seq').all() as object[]).map((r) =>
      Object.values(r),
    ),
    [
      ['V:U', 'c1', 'queued'],
      ['W:x:y', 'c4', 'queued'],
      ['GHOST', 'c5', 'queued'],
      ['GHOST:u', 'c6', 'queued'],
    ],
    'kept, delivered to no one',
  );
  after.close();
});

test('sqlite: migration 11 erases the bodies of commands already answered and keeps pending ones for delivery', async () => {
  const path = join(tempDir(), 'store.db');
  // A database at schema 10, with one answered and one pending command in clear and escrowed tokens in clear.
  const db = databaseAt(
    path,
    SQLITE_MIGRATIONS.map((m) => m.version).filter((v) => v <= 10),
  );
  db.exec(`INSERT INTO enrollments (id, kind, status, unlock_token, bootstrap_token, enrolled_at, last_seen_at)
      VALUES ('D', 'device', 'enrolled', 'unlock-in-clear', 'bootstrap-in-clear', 0, 0);
    INSERT INTO commands VALUES ('answered', 'InstallProfile', 'challenge-in-clear-1', 0, 'test', 0), ('pending', 'InstallProfile', 'challenge-in-clear-2', 0, 'test', 0);
    INSERT INTO command_queue (channel_id, command_uuid, priority, status, updated_at) VALUES ('D', 'answered', 0, 'acknowledged', 0), ('D', 'pending', 0, 'queued', 0);`);
  db.close();
  const again = SqliteStore.open(path);
  await again.migrate();
  const answered = await again.getCommand('answered');
  assert.equal(answered?.body.length, 0);
  assert.ok(answered.bodyErasedAt);
  const pending = await again.getCommand('pending');
  assert.deepEqual([pending?.body.toString(), pending?.sealed, pending?.bodyErasedAt], ['challenge-in-clear-2', false, null]);

  // Opening the app seals what is still in clear; the device still gets the command as it was.
  const commands = new CommandQueue({ store: again, master: MasterKey.generate() });
  assert.equal(await commands.sealStoredInClear(), 1);
  assert.equal(await commands.sealStoredInClear(), 0, 'once');
  const sealed = await again.getCommand('pending');
  assert.equal(sealed?.sealed, true);
  assert.ok(!sealed.body.includes('challenge-in-clear'));
  assert.equal(
    (await commands.next(deviceChannel('D'), { reviveNotNow: false, now: new Date() }))?.body.toString(),
    'challenge-in-clear-2',
  );

  // And the escrowed tokens of enrollments from before.
  const tokens = new DeviceTokens(MasterKey.generate());
  const seal = (id: string, kind: 'unlock-token' | 'bootstrap-token', token: Buffer) => tokens.seal(id, kind, token);
  assert.equal(await again.sealEnrollmentTokens(seal), 1);
  assert.equal(await again.sealEnrollmentTokens(seal), 0, 'once');
  const enrollment = await again.getEnrollment('D');
  assert.equal(tokens.open('D', 'unlock-token', enrollment!.unlockToken!).toString(), 'unlock-in-clear');
  assert.equal(tokens.open('D', 'bootstrap-token', enrollment!.bootstrapToken!).toString(), 'bootstrap-in-clear');
  await again.close();
});
