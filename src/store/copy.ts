import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { OperatorError } from '../errors.ts';
import { redacted } from './url.ts';
import { PostgresStore } from './postgres/index.ts';
import type { Row } from './rows.ts';
import { SqliteDb } from './sqlite/connection.ts';
import { SqliteStore } from './sqlite/index.ts';

/**
 * Tables in an order their foreign keys allow, each read in SQLite's rowid order (PostgreSQL's `seq` columns keep
 * that order). Certificates name each other (issuer, successor, renewed identity): they go in issuer order, and the
 * two forward references are filled in once every certificate is there.
 */
const TABLES = [
  'meta',
  'sealed_keys',
  'certificates',
  'certificate_dependants',
  'api_tokens',
  'audit_log',
  'scep_challenges',
  'profiles',
  'profile_certificates',
  'enrollment_links',
  'enrollments',
  'certificate_bindings',
  'user_channels',
  'commands',
  'command_queue',
  'certificate_requests',
  'profile_deliveries',
  'admin_accounts',
  // Console sessions are not copied: an administrator logs in again on the new store.
] as const;

/** Identity columns whose values are copied: their sequences continue after the highest. */
const IDENTITIES: Record<string, string> = { audit_log: 'id', command_queue: 'seq' };

export interface CopyReport {
  tables: Record<string, number>;
  certificates: number;
}

/** Certificates parents first, so each row's issuer is already there. */
function issuerOrder(rows: Row[]): Row[] {
  const byId = new Map(rows.map((r) => [String(r.id), r]));
  const done = new Set<string>();
  const out: Row[] = [];
  const visit = (r: Row, depth: number) => {
    const id = String(r.id);
    if (done.has(id) || depth > 64) return;
    const issuer = r.issuer_id ? byId.get(String(r.issuer_id)) : undefined;
    if (issuer && issuer !== r) visit(issuer, depth + 1);
    done.add(id);
    out.push(r);
  };
  for (const r of rows) visit(r, 0);
  return out;
}

async function insertRows(client: pg.Client, table: string, rows: Row[]): Promise<void> {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0]!);
  // At most 60,000 parameters in one statement.
  const perStatement = Math.max(1, Math.floor(60_000 / columns.length));
  for (let i = 0; i < rows.length; i += perStatement) {
    const batch = rows.slice(i, i + perStatement);
    const values: unknown[] = [];
    const tuples = batch.map((row) => `(${columns.map((c) => (values.push(toPg(row[c])), `$${values.length}`)).join(', ')})`);
    await client.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${tuples.join(', ')}`, values);
  }
}

const toPg = (v: unknown) => (v instanceof Uint8Array ? Buffer.from(v) : typeof v === 'bigint' ? Number(v) : v);

/**
 * `certmdm store migrate`: copies a SQLite deployment (its data directory's database) into an empty PostgreSQL
 * database, in one transaction, then verifies it: the same row count in every table, and every certificate present
 * with a fingerprint that is the SHA-256 of its DER. The sealed keys move sealed; the master key stays where it is
 * (every instance needs the same one). Refuses a target that already holds a certmdm deployment.
 */
export async function copySqliteToPostgres(dataDir: string, url: string): Promise<CopyReport> {
  const file = join(dataDir, 'certmdm.db');
  if (!existsSync(file)) throw new OperatorError(`no certmdm database in ${dataDir}`);
  // The schema brought up to date first, through the normal path (it refuses a database from a newer certmdm).
  const source = SqliteStore.open(file);
  await source.migrate();
  await source.close();
  const target = PostgresStore.open(url);
  try {
    await target.migrate();
  } finally {
    await target.close();
  }
  const db = SqliteDb.open(file);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const unresolved = db.connection
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'command_queue_unresolved'")
      .get();
    if (unresolved && (db.connection.prepare('SELECT count(*) AS n FROM command_queue_unresolved').get() as Row).n !== 0)
      throw new OperatorError(
        'the SQLite database holds queue rows no channel could be resolved for (command_queue_unresolved); resolve or delete them first',
      );
    const report: CopyReport = { tables: {}, certificates: 0 };
    await client.query('BEGIN');
    for (const table of TABLES) {
      const existing = Number((await client.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
      if (existing > 0)
        throw new OperatorError(`the target ${redacted(url)} is not empty (${table} has ${existing} rows); migrate into a new database`);
    }
    // One read transaction: a snapshot of the whole database, even if a server writes to it meanwhile (WAL). Writes
    // after the snapshot are not copied: stop every server before migrating.
    const snapshot = db.connection.transaction(
      () => new Map(TABLES.map((t) => [t, db.connection.prepare(`SELECT * FROM ${t} ORDER BY rowid`).all() as Row[]])),
    )();
    for (const table of TABLES) {
      let rows = snapshot.get(table)!;
      if (table === 'certificates') rows = issuerOrder(rows).map((r) => ({ ...r, superseded_by: null, renewal_of: null }));
      await insertRows(client, table, rows);
      report.tables[table] = rows.length;
    }
    for (const r of snapshot.get('certificates')!.filter((c) => c.superseded_by !== null || c.renewal_of !== null))
      await client.query('UPDATE certificates SET superseded_by = $1, renewal_of = $2 WHERE id = $3', [
        r.superseded_by,
        r.renewal_of,
        r.id,
      ]);
    for (const [table, column] of Object.entries(IDENTITIES))
      await client.query(
        `SELECT setval(pg_get_serial_sequence('${table}', '${column}'), coalesce(max(${column}), 0) + 1, false) FROM ${table}`,
      );

    // Verified inside the transaction: anything short and nothing is committed.
    for (const table of TABLES) {
      const copied = Number((await client.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
      if (copied !== report.tables[table]) throw new Error(`${table}: ${report.tables[table]} rows read, ${copied} in the target`);
    }
    const wanted = new Set(snapshot.get('certificates')!.map((r) => String(r.fingerprint_sha256)));
    const copied = (await client.query('SELECT fingerprint_sha256, der FROM certificates')).rows as {
      fingerprint_sha256: string;
      der: Buffer;
    }[];
    for (const c of copied) {
      if (!wanted.delete(c.fingerprint_sha256) || createHash('sha256').update(c.der).digest('hex') !== c.fingerprint_sha256)
        throw new Error(`certificate ${c.fingerprint_sha256} did not arrive intact`);
    }
    if (wanted.size > 0) throw new Error(`${wanted.size} certificate(s) missing in the target`);
    report.certificates = copied.length;
    await client.query('COMMIT');
    return report;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    await client.end();
    db.connection.close();
  }
}
