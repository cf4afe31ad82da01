import Database from 'better-sqlite3';
import { OperatorError, messageOf } from '../../errors.ts';
import type { Row } from '../rows.ts';
import { SQLITE_MIGRATIONS } from './migrations.ts';

/** Turns SQLite's failures to open into one-line operator errors. */
export function explainOpenError(path: string, err: unknown): OperatorError {
  const code = (err as { code?: string }).code ?? '';
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new OperatorError(`database ${path} is locked by another process; stop it or wait, then retry`);
  }
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new OperatorError(`database ${path} is not a valid SQLite database (corrupt?); restore it from a backup`);
  }
  if (code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY' || code === 'SQLITE_PERM') {
    return new OperatorError(`cannot open database ${path} for writing: ${messageOf(err)}`);
  }
  return new OperatorError(`cannot use database ${path}: ${messageOf(err)}`);
}

/**
 * A WHERE clause of only the filters given, so SQLite can use the index on them (the `(@x IS NULL OR x = @x)` form
 * scans the table: every device identity or profile ever made). Keys are column names, not user input.
 */
export function onlyGiven(filters: Record<string, string | undefined>): { where: string; params: Record<string, string> } {
  const given = Object.entries(filters).filter((e): e is [string, string] => e[1] !== undefined);
  return {
    where: given.length ? `WHERE ${given.map(([column]) => `${column} = @${column}`).join(' AND ')}` : '',
    params: Object.fromEntries(given),
  };
}

export interface SqliteOptions {
  busyTimeoutMs?: number;
}

/** One SQLite database: the connection, its prepared statements and its migrations, shared by every store part. */
export class SqliteDb {
  readonly #statements = new Map<string, Database.Statement>();

  private constructor(
    readonly connection: Database.Database,
    readonly path: string,
  ) {}

  /** Opens (creating if absent) and configures the database; does not migrate. */
  static open(path: string, options: SqliteOptions = {}): SqliteDb {
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { timeout: options.busyTimeoutMs ?? 5000 });
      // Reading the schema is the first real access: it fails here on a corrupt or locked file.
      db.prepare('SELECT count(*) FROM sqlite_master').get();
      if (String(db.pragma('journal_mode', { simple: true })) !== 'wal') db.pragma('journal_mode = WAL');
      db.pragma('foreign_keys = ON');
      db.pragma('synchronous = NORMAL');
      // Erased content (a command body once answered) is overwritten with zeros, not left in free pages.
      db.pragma('secure_delete = ON');
      return new SqliteDb(db, path);
    } catch (err) {
      db?.close();
      throw explainOpenError(path, err);
    }
  }

  /** Prepared once, reused: preparing costs more than running these small statements. */
  sql(text: string): Database.Statement {
    let statement = this.#statements.get(text);
    if (!statement) {
      statement = this.connection.prepare(text);
      this.#statements.set(text, statement);
    }
    return statement;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  transaction<F extends (...args: any[]) => any>(fn: F): Database.Transaction<F> {
    return this.connection.transaction(fn);
  }
}

/** What every part shares: the database. */
export abstract class SqliteConcern {
  constructor(protected readonly db: SqliteDb) {}

  protected sql(text: string): Database.Statement {
    return this.db.sql(text);
  }
}

/** The database itself: schema version, migrations, settings. */
export class SqliteMeta extends SqliteConcern {
  readonly backend = 'sqlite';

  async close(): Promise<void> {
    if (this.db.connection.open) this.db.connection.close();
  }

  async schemaVersion(): Promise<number> {
    return this.#schemaVersionSync();
  }

  #schemaVersionSync(): number {
    const table = this.db.connection.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
    if (!table) return 0;
    const row = this.db.connection.prepare('SELECT max(version) AS v FROM schema_migrations').get() as Row;
    return Number(row.v ?? 0);
  }

  async migrate(): Promise<void> {
    const latest = Math.max(0, ...SQLITE_MIGRATIONS.map((m) => m.version));
    try {
      const current = this.#schemaVersionSync();
      if (current > latest) {
        throw new OperatorError(
          `database ${this.db.path} has schema version ${current}, newer than this certmdm knows (${latest}); upgrade certmdm`,
        );
      }
      // Each missing version, not each version above the highest: numbers may have gaps that are filled later
      // (branches reserve numbers), and a migration must still run once, in version order.
      const applied = new Set(
        current === 0
          ? []
          : (this.db.connection.prepare('SELECT version FROM schema_migrations').all() as Row[]).map((r) => Number(r.version)),
      );
      const known = new Set(SQLITE_MIGRATIONS.map((m) => m.version));
      const unknown = [...applied].filter((v) => !known.has(v));
      if (unknown.length) {
        throw new OperatorError(
          `database ${this.db.path} has migration ${unknown.join(', ')} that this certmdm does not know; use the certmdm that applied it`,
        );
      }
      for (const migration of [...SQLITE_MIGRATIONS].sort((a, b) => a.version - b.version)) {
        if (applied.has(migration.version)) continue;
        this.db.connection.transaction(() => {
          this.db.connection.exec(
            'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
          );
          this.db.connection.exec(migration.sql);
          this.db.connection
            .prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)')
            .run(migration.version, migration.name, Date.now());
        })();
      }
    } catch (err) {
      if (err instanceof OperatorError) throw err;
      throw explainOpenError(this.db.path, err);
    }
  }

  async holdLease(_name: string): Promise<boolean> {
    return true;
  }

  async identityEpoch(): Promise<number> {
    return Number((this.sql('SELECT value FROM identity_epoch WHERE id = 1').get() as Row).value);
  }

  async getMeta(key: string): Promise<string | undefined> {
    const row = this.sql('SELECT value FROM meta WHERE key = ?').get(key) as Row | undefined;
    return row ? String(row.value) : undefined;
  }

  async setMetaIfAbsent(key: string, value: string): Promise<boolean> {
    return this.sql('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(key, value).changes === 1;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.sql('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }
}
