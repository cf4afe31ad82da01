import { ms, auditFromRow, tokenFromRow } from '../rows.ts';
import type { AdminStore, ApiTokenRecord, AuditEvent, AuditQuery, StoredAuditEvent } from '../types.ts';
import { auditQuerySql } from '../audit-sql.ts';
import { PgConcern } from './connection.ts';

export class PgAdmin extends PgConcern implements AdminStore {
  async insertApiToken(t: ApiTokenRecord): Promise<void> {
    await this.sql.run(
      'INSERT INTO api_tokens (id, name, secret_hash, created_at, last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)',
      [t.id, t.name, t.secretHash, ms(t.createdAt), t.lastUsedAt && ms(t.lastUsedAt), t.revokedAt && ms(t.revokedAt)],
    );
  }

  async getApiToken(id: string): Promise<ApiTokenRecord | undefined> {
    const r = await this.sql.one('SELECT * FROM api_tokens WHERE id = $1', [id]);
    return r ? tokenFromRow(r) : undefined;
  }

  async listApiTokens(): Promise<ApiTokenRecord[]> {
    return (await this.sql.rows('SELECT * FROM api_tokens ORDER BY created_at, id')).map(tokenFromRow);
  }

  async touchApiToken(id: string, at: Date): Promise<void> {
    await this.sql.run('UPDATE api_tokens SET last_used_at = $1 WHERE id = $2', [ms(at), id]);
  }

  async revokeApiToken(id: string, at: Date): Promise<boolean> {
    return (await this.sql.run('UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [ms(at), id])) === 1;
  }

  async appendAudit(e: AuditEvent): Promise<number> {
    const r = await this.sql.one(
      'INSERT INTO audit_log (at, actor, action, target, outcome, reason, detail) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id',
      [ms(e.at), e.actor, e.action, e.target ?? null, e.outcome, e.reason ?? null, e.detail ? JSON.stringify(e.detail) : null],
    );
    return Number(r!.id);
  }

  async listAudit(query: AuditQuery = {}): Promise<StoredAuditEvent[]> {
    const { sql, params } = auditQuerySql(query, (n) => `$${n}`);
    return (await this.sql.rows(sql, params)).map(auditFromRow);
  }
}
