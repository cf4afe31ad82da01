import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
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
