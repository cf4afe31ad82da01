import { SqliteConcern } from './connection.ts';
import { auditQuerySql } from '../audit-sql.ts';
import { ms, tokenFromRow, type Row, auditFromRow } from '../rows.ts';
import { type ApiTokenRecord, type AuditEvent, type StoredAuditEvent, type AdminStore, type AuditQuery } from '../types.ts';

export class SqliteAdmin extends SqliteConcern implements AdminStore {
  async insertApiToken(t: ApiTokenRecord): Promise<void> {
    this.sql('INSERT INTO api_tokens (id, name, secret_hash, created_at, last_used_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)').run(
      t.id,
      t.name,
      t.secretHash,
      ms(t.createdAt),
      t.lastUsedAt && ms(t.lastUsedAt),
      t.revokedAt && ms(t.revokedAt),
    );
  }

  async getApiToken(id: string): Promise<ApiTokenRecord | undefined> {
    const r = this.sql('SELECT * FROM api_tokens WHERE id = ?').get(id) as Row | undefined;
    return r ? tokenFromRow(r) : undefined;
  }

  async listApiTokens(): Promise<ApiTokenRecord[]> {
    return (this.sql('SELECT * FROM api_tokens ORDER BY created_at, id').all() as Row[]).map(tokenFromRow);
  }

  async touchApiToken(id: string, at: Date): Promise<void> {
    this.sql('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(ms(at), id);
  }

  async revokeApiToken(id: string, at: Date): Promise<boolean> {
    return this.sql('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(ms(at), id).changes === 1;
  }

  async appendAudit(e: AuditEvent): Promise<number> {
    const result = this.sql('INSERT INTO audit_log (at, actor, action, target, outcome, reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
      ms(e.at),
      e.actor,
      e.action,
      e.target ?? null,
      e.outcome,
      e.reason ?? null,
      e.detail ? JSON.stringify(e.detail) : null,
    );
    return Number(result.lastInsertRowid);
  }

  async listAudit(query: AuditQuery = {}): Promise<StoredAuditEvent[]> {
    const { sql, params } = auditQuerySql(query, () => '?');
    return (this.sql(sql).all(...params) as Row[]).map(auditFromRow);
  }
}
