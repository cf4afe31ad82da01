import { adminAccountFromRow, consoleSessionFromRow, ms } from '../rows.ts';
import { ConflictError, type AdminAccountRecord, type ConsoleSessionRecord, type ConsoleStore } from '../types.ts';
import { PgConcern, sqlState } from './connection.ts';

export class PgConsole extends PgConcern implements ConsoleStore {
  async insertAdminAccount(a: AdminAccountRecord): Promise<void> {
    try {
      await this.sql.run(
        'INSERT INTO admin_accounts (name, password_hash, created_at, password_changed_at, last_login_at) VALUES ($1, $2, $3, $4, $5)',
        [a.name, a.passwordHash, ms(a.createdAt), ms(a.passwordChangedAt), a.lastLoginAt && ms(a.lastLoginAt)],
      );
    } catch (err) {
      if (sqlState(err)?.startsWith('23')) throw new ConflictError(`an administrator named ${a.name} already exists`);
      throw err;
    }
  }

  async getAdminAccount(name: string): Promise<AdminAccountRecord | undefined> {
    const r = await this.sql.one('SELECT * FROM admin_accounts WHERE name = $1', [name]);
    return r ? adminAccountFromRow(r) : undefined;
  }

  async listAdminAccounts(): Promise<AdminAccountRecord[]> {
    return (await this.sql.rows('SELECT * FROM admin_accounts ORDER BY name')).map(adminAccountFromRow);
  }

  async setAdminPassword(name: string, passwordHash: string, at: Date): Promise<boolean> {
    return await this.db.transaction(async (sql) => {
      const changed = await sql.run('UPDATE admin_accounts SET password_hash = $1, password_changed_at = $2 WHERE name = $3', [
        passwordHash,
        ms(at),
        name,
      ]);
      await sql.run('DELETE FROM console_sessions WHERE account = $1', [name]);
      return changed === 1;
    });
  }

  async deleteAdminAccount(name: string): Promise<boolean> {
    return await this.db.transaction(async (sql) => {
      await sql.run('DELETE FROM console_sessions WHERE account = $1', [name]);
      return (await sql.run('DELETE FROM admin_accounts WHERE name = $1', [name])) === 1;
    });
  }

  async recordAdminLogin(name: string, at: Date): Promise<void> {
    await this.sql.run('UPDATE admin_accounts SET last_login_at = $1 WHERE name = $2', [ms(at), name]);
  }

  async insertConsoleSession(s: ConsoleSessionRecord): Promise<void> {
    await this.sql.run(
      'INSERT INTO console_sessions (id_hash, account, created_at, last_used_at, expires_at) VALUES ($1, $2, $3, $4, $5)',
      [s.idHash, s.account, ms(s.createdAt), ms(s.lastUsedAt), ms(s.expiresAt)],
    );
  }

  async getConsoleSession(idHash: Buffer): Promise<ConsoleSessionRecord | undefined> {
    const r = await this.sql.one('SELECT * FROM console_sessions WHERE id_hash = $1', [idHash]);
    return r ? consoleSessionFromRow(r) : undefined;
  }

  async touchConsoleSession(idHash: Buffer, at: Date): Promise<void> {
    await this.sql.run('UPDATE console_sessions SET last_used_at = $1 WHERE id_hash = $2 AND last_used_at < $1', [ms(at), idHash]);
  }

  async deleteConsoleSession(idHash: Buffer): Promise<boolean> {
    return (await this.sql.run('DELETE FROM console_sessions WHERE id_hash = $1', [idHash])) === 1;
  }

  async deleteStaleConsoleSessions(now: Date, idleSince: Date): Promise<number> {
    return await this.sql.run('DELETE FROM console_sessions WHERE expires_at <= $1 OR last_used_at < $2', [ms(now), ms(idleSince)]);
  }
}
