import Database from 'better-sqlite3';
import { join } from 'node:path';

/** Audit rows read straight from a running server's database: cheaper than `certmdm audit list` per request. */
export interface AuditRow {
  id: number;
  action: string;
  outcome: string;
  target: string | null;
  reason: string | null;
  detail: Record<string, unknown> | null;
}

function readOnly<T>(dataDir: string, read: (db: Database.Database) => T): T {
  const db = new Database(join(dataDir, 'certmdm.db'), { readonly: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/** Audit rows after `afterId`, oldest first. */
export function auditSince(dataDir: string, afterId = 0): AuditRow[] {
  return readOnly(dataDir, (db) =>
    (
      db.prepare('SELECT id, action, outcome, target, reason, detail FROM audit_log WHERE id > ? ORDER BY id').all(afterId) as (Omit<
        AuditRow,
        'detail'
      > & { detail: string | null })[]
    ).map((row) => ({ ...row, detail: row.detail ? (JSON.parse(row.detail) as Record<string, unknown>) : null })),
  );
}

export function lastAuditId(dataDir: string): number {
  return readOnly(dataDir, (db) => (db.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM audit_log').get() as { id: number }).id);
}
