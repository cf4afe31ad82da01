import type { AuditQuery } from './types.ts';

/**
 * The audit log's search in SQL both backends run: `placeholder(n)` spells the n-th parameter (`?` for SQLite, `$n`
 * for PostgreSQL). A prefix is matched by substr rather than LIKE, so `%` and `_` in it mean themselves.
 */
export function auditQuerySql(query: AuditQuery, placeholder: (n: number) => string): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const next = (value: unknown): string => {
    params.push(value);
    return placeholder(params.length);
  };
  const where: string[] = [];
  if (query.action !== undefined) where.push(`action = ${next(query.action)}`);
  if (query.actionPrefix !== undefined) where.push(`substr(action, 1, ${next(query.actionPrefix.length)}) = ${next(query.actionPrefix)}`);
  if (query.actor !== undefined) where.push(`actor = ${next(query.actor)}`);
  if (query.target !== undefined) where.push(`target = ${next(query.target)}`);
  if (query.outcome !== undefined) where.push(`outcome = ${next(query.outcome)}`);
  if (query.beforeId !== undefined) where.push(`id < ${next(query.beforeId)}`);
  // Clamped both ways: SQLite reads a negative LIMIT as no limit at all.
  const limit = Math.max(1, Math.min(Math.trunc(query.limit ?? 100) || 100, 10_000));
  const sql = `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${next(limit)}`;
  return { sql, params };
}
