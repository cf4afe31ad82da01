import { chmodSync, closeSync, copyFileSync, existsSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { OperatorError, messageOf } from '../errors.ts';
import { MASTER_KEY_CHECK, type MasterKey } from '../pki/master-key.ts';

export interface BackupFacts {
  schemaVersion: number;
  certificates: number;
  enrollments: number;
  masterKeyCheck: string;
}

/**
 * What a backup file holds, read without changing it: it must be a whole SQLite database (integrity_check), made by
 * certmdm (a schema and a master key check value). A corrupt or truncated file is one line, never a stack.
 */
export function inspectBackup(file: string): BackupFacts {
  if (!existsSync(file)) throw new OperatorError(`no backup at ${file}`);
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const check = db.pragma('integrity_check', { simple: true });
    if (check !== 'ok') throw new OperatorError(`${file} is damaged (SQLite integrity check: ${String(check).slice(0, 120)})`);
    const tables = new Set(
      (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name),
    );
    if (!tables.has('schema_migrations') || !tables.has('meta')) throw new OperatorError(`${file} is not a certmdm backup`);
    const meta = db.prepare('SELECT value FROM meta WHERE key = ?').get(MASTER_KEY_CHECK) as { value: string } | undefined;
    if (!meta) throw new OperatorError(`${file} has no master key check value: not a certmdm backup`);
    const count = (table: string) => Number((db!.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n);
    return {
      schemaVersion: Number((db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number }).v ?? 0),
      certificates: count('certificates'),
      enrollments: count('enrollments'),
      masterKeyCheck: meta.value,
    };
  } catch (err) {
    if (err instanceof OperatorError) throw err;
    throw new OperatorError(`${file} is not a readable certmdm backup (${messageOf(err)})`);
  } finally {
    db?.close();
  }
}

/**
 * A consistent snapshot of a SQLite database while the server writes to it (SQLite's online backup), written next
 * to `out` and renamed into place once whole and checked; `out` must not exist. It holds the sealed keys, never the
 * master key.
 */
export async function backupSqlite(databasePath: string, out: string): Promise<BackupFacts> {
  if (existsSync(out)) throw new OperatorError(`${out} exists; a backup never overwrites a file`);
  if (!existsSync(databasePath)) throw new OperatorError(`no certmdm database at ${databasePath}`);
  const partial = join(dirname(out), `.${basename(out)}.partial`);
  const source = new Database(databasePath, { readonly: true, fileMustExist: true });
  try {
    await source.backup(partial);
  } catch (err) {
    rmSync(partial, { force: true });
    throw new OperatorError(`cannot write the backup to ${out} (${messageOf(err)})`);
  } finally {
    source.close();
  }
  try {
    const facts = inspectBackup(partial);
    chmodSync(partial, 0o600); // it holds the sealed keys
    const fd = openSync(partial, 'r+');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(partial, out);
    return facts;
  } catch (err) {
    rmSync(partial, { force: true });
    throw err;
  }
}

/** Whether another connection has the database open: a connection in WAL mode keeps a lock that blocks this. */
function inUse(databasePath: string): boolean {
  const db = new Database(databasePath, { fileMustExist: true, timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE; COMMIT');
    // Leaving WAL needs every other connection gone; a running certmdm keeps one open.
    return String(db.pragma('journal_mode = DELETE', { simple: true })) !== 'delete';
  } catch {
    return true;
  } finally {
    db.close();
  }
}

/**
 * Restores a backup into a data directory, checking everything before it writes: the file is whole and certmdm's,
 * the master key at hand opens it, and the directory holds no database — or, with `force`, one nobody has open.
 * The database is then replaced in one rename; nothing is overwritten on a refusal.
 */
export function restoreSqlite(file: string, databasePath: string, options: { master: MasterKey; force: boolean }): BackupFacts {
  const facts = inspectBackup(file);
  if (!options.master.matches(facts.masterKeyCheck))
    throw new OperatorError('the master key at hand does not open this backup (restore it with the master key it was made under)');
  if (existsSync(databasePath)) {
    if (!options.force) throw new OperatorError(`${databasePath} exists; restore replaces a database only with --force`);
    if (inUse(databasePath)) throw new OperatorError(`${databasePath} is in use (a certmdm is serving from it); stop it first`);
  }
  const incoming = `${databasePath}.restoring`;
  try {
    copyFileSync(file, incoming);
    chmodSync(incoming, 0o600);
    const fd = openSync(incoming, 'r+');
    fsyncSync(fd);
    closeSync(fd);
    // The old database's write-ahead log must not be replayed into the restored one.
    for (const suffix of ['-wal', '-shm']) rmSync(`${databasePath}${suffix}`, { force: true });
    renameSync(incoming, databasePath);
  } catch (err) {
    rmSync(incoming, { force: true });
    throw new OperatorError(`cannot restore into ${databasePath} (${messageOf(err)})`);
  }
  return facts;
}
