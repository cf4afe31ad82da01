import { redacted } from '../url.ts';
import pg from 'pg';
import { OperatorError, messageOf } from '../../errors.ts';
import type { Row } from '../rows.ts';
import { POSTGRES_MIGRATIONS } from './migrations.ts';

// BIGINT (epoch milliseconds, identities) as numbers, as SQLite gives them: every value stored fits in 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** Positional ($1…) parameters, or named ones (@name) as the SQLite statements take them. */
export type Params = unknown[] | Record<string, unknown>;

/** What a statement runs on: the pool, or the one client of a transaction. */
export interface Sql {
  rows(text: string, params?: Params): Promise<Row[]>;
  one(text: string, params?: Params): Promise<Row | undefined>;
  /** Rows changed. */
  run(text: string, params?: Params): Promise<number>;
}

/** SQLSTATEs after which a transaction is run again from the start: it lost a race, not an argument. */
const RETRIED = new Set(['40001', '40P01']);
const ATTEMPTS = 5;

export const UNIQUE_VIOLATION = '23505';
export const sqlState = (err: unknown) => (err as { code?: string }).code;

interface Statement {
  name: string;
  text: string;
  /** For named parameters: their names in $n order. */
  order?: string[];
}

/**
 * Names every statement text once, so each pooled connection prepares it once and reuses the plan; named parameters
 * are rewritten to positional ones once per text.
 */
class Statements {
  readonly #statements = new Map<string, Statement>();
  get(text: string, named: boolean): Statement {
    let statement = this.#statements.get(text);
    if (!statement) {
      const name = `certmdm_${this.#statements.size}`;
      if (named) {
        const order: string[] = [];
        const positional = text.replace(/(?<![:@\w])@(\w+)/g, (_, key: string) => {
          if (!order.includes(key)) order.push(key);
          return `$${order.indexOf(key) + 1}`;
        });
        statement = { name, text: positional, order };
      } else statement = { name, text };
      this.#statements.set(text, statement);
    }
    return statement;
  }
}

function sqlOver(query: (config: pg.QueryConfig) => Promise<pg.QueryResult>, statements: Statements): Sql {
  const exec = (text: string, params: Params = []) => {
    const named = !Array.isArray(params);
    const statement = statements.get(text, named);
    const values = named ? statement.order!.map((key) => (params as Record<string, unknown>)[key] ?? null) : params;
    return query({ name: statement.name, text: statement.text, values });
  };
  return {
    rows: async (text, params) => (await exec(text, params)).rows as Row[],
    one: async (text, params) => (await exec(text, params)).rows[0] as Row | undefined,
    run: async (text, params) => (await exec(text, params)).rowCount ?? 0,
  };
}

/** A PostgreSQL database: a pool, its statements and its migrations, shared by every store part. */
export class PgDb {
  readonly #statements = new Statements();
  readonly sql: Sql;

  private constructor(
    readonly pool: pg.Pool,
    readonly url: string,
  ) {
    this.sql = sqlOver((config) => pool.query(config), this.#statements);
  }

  static open(url: string, options: { max?: number } = {}): PgDb {
    const pool = new pg.Pool({ connectionString: url, max: options.max ?? 10 });
    // An idle client that loses its server (a restart) is dropped by the pool; the next query gets a fresh one.
    pool.on('error', () => {});
    return new PgDb(pool, url);
  }

  /**
   * Runs `work` in one transaction on one connection (READ COMMITTED plus the row locks each operation takes), again
   * from the start when PostgreSQL reports a serialization failure or a deadlock.
   */
  async transaction<T>(work: (sql: Sql) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      try {
        await client.query('BEGIN');
        const result = await work(sqlOver((config) => client.query(config), this.#statements));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        if (attempt < ATTEMPTS && RETRIED.has(sqlState(err) ?? '')) continue;
        throw err;
      } finally {
        client.release();
      }
    }
  }

  readonly #leases = new Map<string, pg.Client>();

  /**
   * A session advisory lock on a connection outside the pool, kept open while the lease is held. Each call asks the
   * server again on that connection (TCP keepalive on, a short statement timeout): a connection a firewall dropped
   * silently, or a server that ended the session, loses the lease here rather than leaving two leaders.
   */
  async holdLease(name: string): Promise<boolean> {
    const key = `lease:${name}`;
    const held = this.#leases.get(name);
    if (held) {
      const still = await held
        .query("SELECT count(*) > 0 AS held FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()")
        .then((r) => (r.rows[0] as Row).held === true)
        .catch(() => false);
      if (still) return true;
      this.#leases.delete(name);
      await held.end().catch(() => {});
    }
    const client = new pg.Client({ connectionString: this.url, keepAlive: true, statement_timeout: 10_000, query_timeout: 15_000 });
    // The connection lost (the database restarted): the lease is gone with it; the next call competes again.
    client.on('error', () => {
      if (this.#leases.get(name) === client) this.#leases.delete(name);
    });
    await client.connect();
    const row = (await client.query('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS held', [key])).rows[0] as Row;
    if (row.held === true) {
      this.#leases.set(name, client);
      return true;
    }
    await client.end();
    return false;
  }

  async close(): Promise<void> {
    for (const client of this.#leases.values()) await client.end().catch(() => {});
    this.#leases.clear();
    await this.pool.end();
  }
}

/** What every part shares: the database. */
export abstract class PgConcern {
  constructor(protected readonly db: PgDb) {}

  protected get sql(): Sql {
    return this.db.sql;
  }
}

/** The database itself: schema version, migrations, settings. */
export class PgMeta extends PgConcern {
  readonly backend = 'postgres';

  async close(): Promise<void> {
    await this.db.close();
  }

  async schemaVersion(): Promise<number> {
    try {
      const table = await this.sql.one("SELECT to_regclass('schema_migrations') AS t");
      if (!table?.t) return 0;
      return Number((await this.sql.one('SELECT max(version) AS v FROM schema_migrations'))?.v ?? 0);
    } catch (err) {
      throw explain(this.db.url, err);
    }
  }

  async migrate(): Promise<void> {
    const latest = Math.max(0, ...POSTGRES_MIGRATIONS.map((m) => m.version));
    const current = await this.schemaVersion();
    if (current > latest) {
      throw new OperatorError(
        `database ${redacted(this.db.url)} has schema version ${current}, newer than this certmdm knows (${latest}); upgrade certmdm`,
      );
    }
    try {
      // One instance migrates at a time: the others wait on the lock, then find nothing left to do.
      await this.db.transaction(async (sql) => {
        await sql.run('SELECT pg_advisory_xact_lock(hashtext($1))', ['certmdm:migrate']);
        await sql.run(
          'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
        );
        const applied = new Set((await sql.rows('SELECT version FROM schema_migrations')).map((r) => Number(r.version)));
        for (const migration of [...POSTGRES_MIGRATIONS].sort((a, b) => a.version - b.version)) {
          if (applied.has(migration.version)) continue;
          for (const statement of migration.sql
            .split(/;\s*\n/)
            .map((s) => s.trim())
            .filter(Boolean))
            await sql.run(statement);
          await sql.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
            migration.version,
            migration.name,
            Date.now(),
          ]);
        }
      });
    } catch (err) {
      throw explain(this.db.url, err);
    }
  }

  holdLease(name: string): Promise<boolean> {
    return this.db.holdLease(name);
  }

  async identityEpoch(): Promise<number> {
    return Number((await this.sql.one('SELECT value FROM identity_epoch WHERE id = 1'))!.value);
  }

  async getMeta(key: string): Promise<string | undefined> {
    const row = await this.sql.one('SELECT value FROM meta WHERE key = $1', [key]);
    return row ? String(row.value) : undefined;
  }

  async setMetaIfAbsent(key: string, value: string): Promise<boolean> {
    return (await this.sql.run('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [key, value])) === 1;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.sql.run('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value', [
      key,
      value,
    ]);
  }
}

/** PostgreSQL's failures to connect or migrate as one-line operator errors (never with the password). */
export function explain(url: string, err: unknown): OperatorError {
  const code = (err as { code?: string }).code ?? '';
  const where = redacted(url);
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ENOENT')
    return new OperatorError(`cannot reach PostgreSQL at ${where}: ${messageOf(err)}`);
  if (code === '28P01' || code === '28000') return new OperatorError(`PostgreSQL at ${where} refused the login: ${messageOf(err)}`);
  if (code === '3D000') return new OperatorError(`PostgreSQL at ${where}: ${messageOf(err)}; create it first`);
  return new OperatorError(`cannot use PostgreSQL at ${where}: ${messageOf(err)}`);
}
