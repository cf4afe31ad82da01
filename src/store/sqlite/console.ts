import { SqliteConcern } from './connection.ts';
import { adminAccountFromRow, consoleSessionFromRow, ms, type Row } from '../rows.ts';
import { ConflictError, type AdminAccountRecord, type ConsoleSessionRecord, type ConsoleStore } from '../types.ts';

export class SqliteConsole extends SqliteConcern implements ConsoleStore {
  async insertAdminAccount(a: AdminAccountRecord): Promise<void> {
    try {
      this.sql(
        'INSERT INTO admin_accounts (name, password_hash, created_at, password_changed_at, last_login_at) VALUES (?, ?, ?, ?, ?)',
      ).run(a.name, a.passwordHash, ms(a.createdAt), ms(a.passwordChangedAt), a.lastLoginAt && ms(a.lastLoginAt));
    } catch (err) {
      if (String((err as { code?: string }).code).startsWith('SQLITE_CONSTRAINT'))
        throw new ConflictError(`an administrator named ${a.name} already exists`);
      throw err;
    }
  }

  async getAdminAccount(name: string): Promise<AdminAccountRecord | undefined> {
    const r = this.sql('SELECT * FROM admin_accounts WHERE name = ?').get(name) as Row | undefined;
    return r ? adminAccountFromRow(r) : undefined;
  }

  async listAdminAccounts(): Promise<AdminAccountRecord[]> {
    return (this.sql('SELECT * FROM admin_accounts ORDER BY name').all() as Row[]).map(adminAccountFromRow);
  }

  async setAdminPassword(name: string, passwordHash: string, at: Date): Promise<boolean> {
    return this.db.transaction(() => {
      const changed = this.sql('UPDATE admin_accounts SET password_hash = ?, password_changed_at = ? WHERE name = ?').run(
        passwordHash,
        ms(at),
        name,
      );
      this.sql('DELETE FROM console_sessions WHERE account = ?').run(name);
      return changed.changes === 1;
    })();
  }

  async deleteAdminAccount(name: string): Promise<boolean> {
    return this.db.transaction(() => {
      this.sql('DELETE FROM console_sessions WHERE account = ?').run(name);
      return this.sql('DELETE FROM admin_accounts WHERE name = ?').run(name).changes === 1;
    })();
  }

  async recordAdminLogin(name: string, at: Date): Promise<void> {
    this.sql('UPDATE admin_accounts SET last_login_at = ? WHERE name = ?').run(ms(at), name);
  }

  async insertConsoleSession(s: ConsoleSessionRecord): Promise<void> {
    this.sql('INSERT INTO console_sessions (id_hash, account, created_at, last_used_at, expires_at) VALUES (?, ?, ?, ?, ?)').run(
      s.idHash,
      s.account,
      ms(s.createdAt),
      ms(s.lastUsedAt),
      ms(s.expiresAt),
    );
  }

  async getConsoleSession(idHash: Buffer): Promise<ConsoleSessionRecord | undefined> {
    const r = this.sql('SELECT * FROM console_sessions WHERE id_hash = ?').get(idHash) as Row | undefined;
    return r ? consoleSessionFromRow(r) : undefined;
  }

  async touchConsoleSession(idHash: Buffer, at: Date): Promise<void> {
    this.sql('UPDATE console_sessions SET last_used_at = ? WHERE id_hash = ? AND last_used_at < ?').run(ms(at), idHash, ms(at));
  }

  async deleteConsoleSession(idHash: Buffer): Promise<boolean> {
    return this.sql('DELETE FROM console_sessions WHERE id_hash = ?').run(idHash).changes === 1;
  }

  async deleteStaleConsoleSessions(now: Date, idleSince: Date): Promise<number> {
    return this.sql('DELETE FROM console_sessions WHERE expires_at <= ? OR last_used_at < ?').run(ms(now), ms(idleSince)).changes;
  }
}
