import { AUDIT_OUTCOMES, type AuditQuery } from '../store/types.ts';

/** A query string's single values: a repeated parameter (an array) or anything else is dropped, never trusted as text. */
export function stringQuery(query: unknown): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = Object.create(null);
  if (query && typeof query === 'object') for (const [k, v] of Object.entries(query)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** The audit log's filters from a query string (the console's Audit log page and GET /v1/audit): unknown values are dropped. */
export function auditQuery(q: Record<string, string | undefined>): AuditQuery {
  const text = (v: string | undefined) => (v && v.trim() ? v.trim().slice(0, 200) : undefined);
  const before = Number(q.before);
  return {
    actionPrefix: text(q.action),
    actor: text(q.actor),
    target: text(q.target),
    outcome: AUDIT_OUTCOMES.find((o) => o === q.outcome),
    beforeId: q.before && Number.isSafeInteger(before) && before > 0 ? before : undefined,
    limit: 100,
  };
}
