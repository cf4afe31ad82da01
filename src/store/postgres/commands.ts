import { ms, commandFromRow, queueEntryFromRow, type Row } from '../rows.ts';
import { ConflictError, type ChannelKey, type CommandRecord, type CommandStore, type QueueEntry, type QueueStatus } from '../types.ts';
import { PgConcern, sqlState, type Sql } from './connection.ts';

/**
 * The condition naming one channel, from parameter $first on: `user_id = $n` for a user channel, `user_id IS NULL`
 * for the device channel (a comparison with NULL would match nothing; IS NOT DISTINCT FROM would not use the index).
 */
function channelIs(channel: ChannelKey, first: number, alias = ''): { where: string; params: unknown[] } {
  return channel.userId === null
    ? { where: `${alias}enrollment_id = $${first} AND ${alias}user_id IS NULL`, params: [channel.enrollmentId] }
    : { where: `${alias}enrollment_id = $${first} AND ${alias}user_id = $${first + 1}`, params: [channel.enrollmentId, channel.userId] };
}

const erase = (sql: Sql, now: number, uuid: string) =>
  sql.run("UPDATE commands SET body = ''::bytea, body_erased_at = $1 WHERE uuid = $2 AND body_erased_at IS NULL", [now, uuid]);

export class PgCommands extends PgConcern implements CommandStore {
  async enqueueCommand(command: CommandRecord, channels: ChannelKey[]): Promise<void> {
    try {
      await this.db.transaction(async (sql) => {
        await sql.run(
          `INSERT INTO commands (uuid, request_type, body, priority, created_by, created_at, body_sealed, secrets_expire_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [
            command.uuid,
            command.requestType,
            command.body,
            command.priority,
            command.createdBy,
            ms(command.createdAt),
            command.sealed ? 1 : 0,
            command.secretsExpireAt ? ms(command.secretsExpireAt) : null,
          ],
        );
        for (const channel of channels) {
          await sql.run(
            "INSERT INTO command_queue (enrollment_id, user_id, command_uuid, priority, status, updated_at) VALUES ($1, $2, $3, $4, 'queued', $5)",
            [channel.enrollmentId, channel.userId, command.uuid, command.priority, ms(command.createdAt)],
          );
        }
      });
    } catch (err) {
      // The UUID names the command in every report: a second command under one UUID would answer for the first.
      if (sqlState(err)?.startsWith('23')) throw new ConflictError(`a command with UUID ${command.uuid} already exists`);
      throw err;
    }
  }

  async getCommand(uuid: string): Promise<CommandRecord | undefined> {
    const r = await this.sql.one('SELECT * FROM commands WHERE uuid = $1', [uuid]);
    return r ? commandFromRow(r) : undefined;
  }

  async nextCommand(
    channel: ChannelKey,
    options: { reviveNotNow: boolean; now: Date },
  ): Promise<(QueueEntry & { body: Buffer; sealed: boolean }) | undefined> {
    const now = ms(options.now);
    // Most sessions find nothing waiting: one read answers them, without a transaction or a row lock.
    const waiting = channelIs(channel, 1);
    if (
      !(await this.sql.one(
        `SELECT 1 AS waiting FROM command_queue WHERE ${waiting.where} AND status ${options.reviveNotNow ? "IN ('queued', 'not-now')" : "= 'queued'"} LIMIT 1`,
        waiting.params,
      ))
    )
      return undefined;
    return this.db.transaction(async (sql) => {
      if (options.reviveNotNow) {
        const on = channelIs(channel, 2);
        await sql.run(`UPDATE command_queue SET status = 'queued', updated_at = $1 WHERE ${on.where} AND status = 'not-now'`, [
          now,
          ...on.params,
        ]);
      }
      // A command whose secrets expired is not delivered, even before the sweep erases it. The queue row is locked for
      // this transaction and skipped by another one at the same moment: a command goes to one session at a time.
      const on = channelIs(channel, 2, 'q.');
      const r = await sql.one(
        `SELECT q.*, c.request_type, c.body, c.body_sealed, c.body_erased_at FROM command_queue q JOIN commands c ON c.uuid = q.command_uuid
         WHERE ${on.where} AND q.status = 'queued' AND c.body_erased_at IS NULL AND (c.secrets_expire_at IS NULL OR c.secrets_expire_at > $1)
         ORDER BY q.priority DESC, q.seq LIMIT 1 FOR UPDATE OF q SKIP LOCKED`,
        [now, ...on.params],
      );
      return r ? { ...queueEntryFromRow(r), body: Buffer.from(r.body as Uint8Array), sealed: Number(r.body_sealed) === 1 } : undefined;
    });
  }

  async recordCommandResult(
    channel: ChannelKey,
    commandUuid: string,
    status: Exclude<QueueStatus, 'queued' | 'expired'>,
    result: Buffer,
    now: Date,
  ): Promise<boolean> {
    const at = ms(now);
    return this.db.transaction(async (sql) => {
      // The command's row first: results for one command (its channels, on any instance) are stored one at a time, so
      // the last one sees every other answered and erases the body.
      if (!(await sql.one('SELECT uuid FROM commands WHERE uuid = $1 FOR UPDATE', [commandUuid]))) return false;
      const on = channelIs(channel, 5);
      const changed =
        (await sql.run(
          `UPDATE command_queue SET status = $1, result = $2, updated_at = $3
           WHERE command_uuid = $4 AND ${on.where} AND status IN ('queued', 'not-now')`,
          [status, result, at, commandUuid, ...on.params],
        )) === 1;
      // An acknowledged InstallProfile means the profile, and the roots in it, are on the device (its device channel).
      if (changed && status === 'acknowledged' && channel.userId === null) {
        await sql.run(
          'UPDATE profile_deliveries SET acknowledged_at = $1 WHERE command_uuid = $2 AND enrollment_id = $3 AND acknowledged_at IS NULL',
          [at, commandUuid, channel.enrollmentId],
        );
      }
      // Answered on every channel: nothing will deliver the body again, so it goes (it may hold a key or challenge).
      if (changed && status !== 'not-now') {
        const pending = await sql.one(
          "SELECT 1 AS p FROM command_queue WHERE command_uuid = $1 AND status IN ('queued', 'not-now') LIMIT 1",
          [commandUuid],
        );
        if (!pending) await erase(sql, at, commandUuid);
      }
      return changed;
    });
  }

  async queueDepth(): Promise<{ queued: number; notNow: number }> {
    const r = await this.sql.one(
      "SELECT count(*) FILTER (WHERE status = 'queued') AS queued, count(*) FILTER (WHERE status = 'not-now') AS not_now FROM command_queue WHERE status IN ('queued', 'not-now')",
    );
    return { queued: Number(r!.queued), notNow: Number(r!.not_now) };
  }

  async listQueue(channel: ChannelKey): Promise<QueueEntry[]> {
    const on = channelIs(channel, 1, 'q.');
    const rows = await this.sql.rows(
      `SELECT q.*, c.request_type, c.body_erased_at FROM command_queue q JOIN commands c ON c.uuid = q.command_uuid WHERE ${on.where} ORDER BY q.seq`,
      on.params,
    );
    return rows.map(queueEntryFromRow);
  }

  async sealCommandBodies(seal: (uuid: string, body: Buffer) => Buffer): Promise<number> {
    return this.db.transaction(async (sql) => {
      const rows = await sql.rows('SELECT uuid, body FROM commands WHERE body_sealed = 0 AND body_erased_at IS NULL FOR UPDATE');
      for (const r of rows)
        await sql.run('UPDATE commands SET body = $1, body_sealed = 1 WHERE uuid = $2', [
          seal(String(r.uuid), Buffer.from(r.body as Uint8Array)),
          r.uuid,
        ]);
      return rows.length;
    });
  }

  async eraseExpiredCommandBodies(now: Date): Promise<string[]> {
    const rows = await this.sql.rows(
      `UPDATE commands SET body = ''::bytea, body_erased_at = $1 WHERE body_erased_at IS NULL AND secrets_expire_at <= $1 RETURNING uuid`,
      [ms(now)],
    );
    return rows.map((r: Row) => String(r.uuid)).sort();
  }

  async eraseCommandBodies(uuids: string[], now: Date): Promise<string[]> {
    return this.db.transaction(async (sql) => {
      const erased: string[] = [];
      for (const uuid of uuids) if ((await erase(sql, ms(now), uuid)) === 1) erased.push(uuid);
      return erased;
    });
  }
}
