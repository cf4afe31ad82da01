import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { CommandQueue } from '../../src/mdm/command-queue.ts';
import { DeviceTokens } from '../../src/mdm/device-tokens.ts';
import { MasterKey } from '../../src/pki/master-key.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { tempDir } from '../helpers/cli.ts';
import { storeConformance } from './conformance.ts';

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

test('sqlite: a migration numbered below the newest applied (merged from parallel work) still runs', async () => {
  const path = join(tempDir(), 'store.db');
  const store = SqliteStore.open(path);
  await store.migrate();
  await store.close();
  // As if migration 8 had been written in parallel and merged after 9 and 11 were applied here.
  const db = new Database(path);
  const indexes = [
    'scep_challenges_by_certificate',
    'profiles_by_challenge',
    'profile_certificates_by_certificate',
    'profile_deliveries_by_enrollment',
    'enrollments_by_status',
  ];
  for (const index of indexes) db.exec(`DROP INDEX ${index}`);
  db.exec('DELETE FROM schema_migrations WHERE version = 8');
  db.close();
  const again = SqliteStore.open(path);
  await again.migrate();
  await again.close();
  const check = new Database(path, { readonly: true });
  const present = check
    .prepare("SELECT name FROM sqlite_master WHERE type = 'index'")
    .all()
    .map((r) => (r as { name: string }).name);
  const versions = check
    .prepare('SELECT version FROM schema_migrations ORDER BY version')
    .all()
    .map((r) => (r as { version: number }).version);
  check.close();
  for (const index of indexes) assert.ok(present.includes(index), index);
  assert.ok(versions.includes(8) && versions.includes(11), versions.join(','));
});

test('sqlite: migration 11 erases the bodies of commands already answered and keeps pending ones for delivery', async () => {
  const path = join(tempDir(), 'store.db');
  const store = SqliteStore.open(path);
  await store.migrate();
  await store.close();
  // Back to schema 10's shape for the commands table, with one answered and one pending command in clear.
  const db = new Database(path);
  db.exec(`DROP INDEX commands_by_secrets_expiry;
    ALTER TABLE commands DROP COLUMN body_sealed; ALTER TABLE commands DROP COLUMN secrets_expire_at; ALTER TABLE commands DROP COLUMN body_erased_at;
    ALTER TABLE enrollments DROP COLUMN tokens_sealed;
    DELETE FROM schema_migrations WHERE version = 11;
    INSERT INTO enrollments (id, kind, status, unlock_token, bootstrap_token, enrolled_at, last_seen_at)
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
  assert.equal((await commands.next('D', { reviveNotNow: false, now: new Date() }))?.body.toString(), 'challenge-in-clear-2');

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
