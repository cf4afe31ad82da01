import { SqliteConcern } from './connection.ts';
import { ms, queueEntryFromRow, type Row, commandFromRow } from '../rows.ts';
import { ConflictError, type ChannelKey, type CommandRecord, type QueueEntry, type QueueStatus, type CommandStore } from '../types.ts';

export class SqliteCommands extends SqliteConcern implements CommandStore {
  async enqueueCommand(command: CommandRecord, channels: ChannelKey[]): Promise<void> {
    try {
      this.db.transaction(() => {
        this.sql(
          `INSERT INTO commands (uuid, request_type, body, priority, created_by, created_at, body_sealed, secrets_expire_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          command.uuid,
          command.requestType,
          command.body,
          command.priority,
          command.createdBy,
          ms(command.createdAt),
          command.sealed ? 1 : 0,
          command.secretsExpireAt ? ms(command.secretsExpireAt) : null,
        );
        for (const channel of channels) {
          this.sql(
            "INSERT INTO command_queue (enrollment_id, user_id, command_uuid, priority, status, updated_at) VALUES (?, ?, ?, ?, 'queued', ?)",
          ).run(channel.enrollmentId, channel.userId, command.uuid, command.priority, ms(command.createdAt));
        }
      })();
    } catch (err) {
      // The UUID names the command in every report: a second command under one UUID would answer for the first.
      if (String((err as { code?: string }).code).startsWith('SQLITE_CONSTRAINT'))
        throw new ConflictError(`a command with UUID ${command.uuid} already exists`);
      throw err;
    }
  }

  async getCommand(uuid: string): Promise<CommandRecord | undefined> {
    const r = this.sql('SELECT * FROM commands WHERE uuid = ?').get(uuid) as Row | undefined;
    return r ? commandFromRow(r) : undefined;
  }

  async nextCommand(
    channel: ChannelKey,
    options: { reviveNotNow: boolean; now: Date },
  ): Promise<(QueueEntry & { body: Buffer; sealed: boolean }) | undefined> {
    // Most sessions find nothing waiting: one read answers them, without taking the write lock.
    const waiting = this.sql(
      `SELECT 1 FROM command_queue WHERE enrollment_id = ? AND user_id IS ? AND status ${options.reviveNotNow ? "IN ('queued', 'not-now')" : "= 'queued'"} LIMIT 1`,
    ).get(channel.enrollmentId, channel.userId);
    if (!waiting) return undefined;
    return this.db.transaction(() => {
      if (options.reviveNotNow)
        this.sql(
          "UPDATE command_queue SET status = 'queued', updated_at = ? WHERE enrollment_id = ? AND user_id IS ? AND status = 'not-now'",
        ).run(ms(options.now), channel.enrollmentId, channel.userId);
      // A command whose secrets expired is not delivered, even before the sweep erases it.
      const r = this.sql(
        `SELECT q.*, c.request_type, c.body, c.body_sealed, c.body_erased_at FROM command_queue q JOIN commands c ON c.uuid = q.command_uuid
         WHERE q.enrollment_id = ? AND q.user_id IS ? AND q.status = 'queued' AND c.body_erased_at IS NULL
           AND (c.secrets_expire_at IS NULL OR c.secrets_expire_at > ?)
         ORDER BY q.priority DESC, q.seq LIMIT 1`,
      ).get(channel.enrollmentId, channel.userId, ms(options.now)) as Row | undefined;
      return r ? { ...queueEntryFromRow(r), body: Buffer.from(r.body as Uint8Array), sealed: r.body_sealed === 1 } : undefined;
    })();
  }

  async recordCommandResult(
    channel: ChannelKey,
    commandUuid: string,
    status: Exclude<QueueStatus, 'queued' | 'expired'>,
    result: Buffer,
    now: Date,
  ): Promise<boolean> {
    return this.db.transaction((): boolean => {
      const changed =
        this.sql(
          `UPDATE command_queue SET status = ?, result = ?, updated_at = ?
           WHERE enrollment_id = ? AND user_id IS ? AND command_uuid = ? AND status IN ('queued', 'not-now')`,
        ).run(status, result, ms(now), channel.enrollmentId, channel.userId, commandUuid).changes === 1;
      // An acknowledged InstallProfile means the profile, and the roots in it, are on the device (its device channel).
      if (changed && status === 'acknowledged' && channel.userId === null) {
        this.sql(
          'UPDATE profile_deliveries SET acknowledged_at = ? WHERE command_uuid = ? AND enrollment_id = ? AND acknowledged_at IS NULL',
        ).run(ms(now), commandUuid, channel.enrollmentId);
      }
      // Answered on every channel: nothing will deliver the body again, so it goes (it may hold a key or challenge).
      if (changed && status !== 'not-now') {
        this.sql(
          `UPDATE commands SET body = zeroblob(0), body_erased_at = ? WHERE uuid = ? AND body_erased_at IS NULL
             AND NOT EXISTS (SELECT 1 FROM command_queue WHERE command_uuid = ? AND status IN ('queued', 'not-now'))`,
        ).run(ms(now), commandUuid, commandUuid);
      }
      return changed;
    })();
  }

  async queueDepth(): Promise<{ queued: number; notNow: number }> {
    const r = this.sql(
      "SELECT count(*) FILTER (WHERE status = 'queued') AS queued, count(*) FILTER (WHERE status = 'not-now') AS not_now FROM command_queue WHERE status IN ('queued', 'not-now')",
    ).get() as Row;
    return { queued: Number(r.queued), notNow: Number(r.not_now) };
  }

  async listQueue(channel: ChannelKey): Promise<QueueEntry[]> {
    return (
      this.sql(
        'SELECT q.*, c.request_type, c.body_erased_at FROM command_queue q JOIN commands c ON c.uuid = q.command_uuid WHERE q.enrollment_id = ? AND q.user_id IS ? ORDER BY q.seq',
      ).all(channel.enrollmentId, channel.userId) as Row[]
    ).map((r) => queueEntryFromRow(r));
  }

  async sealCommandBodies(seal: (uuid: string, body: Buffer) => Buffer): Promise<number> {
    return this.db.transaction((): number => {
      const rows = this.sql('SELECT uuid, body FROM commands WHERE body_sealed = 0 AND body_erased_at IS NULL').all() as Row[];
      for (const r of rows)
        this.sql('UPDATE commands SET body = ?, body_sealed = 1 WHERE uuid = ?').run(
          seal(String(r.uuid), Buffer.from(r.body as Uint8Array)),
          r.uuid,
        );
      return rows.length;
    })();
  }

  async eraseExpiredCommandBodies(now: Date): Promise<string[]> {
    return this.db.transaction((): string[] => {
      const uuids = (
        this.sql('SELECT uuid FROM commands WHERE body_erased_at IS NULL AND secrets_expire_at <= ? ORDER BY uuid').all(ms(now)) as Row[]
      ).map((r) => String(r.uuid));
      for (const uuid of uuids) this.sql('UPDATE commands SET body = zeroblob(0), body_erased_at = ? WHERE uuid = ?').run(ms(now), uuid);
      return uuids;
    })();
  }

  async eraseCommandBodies(uuids: string[], now: Date): Promise<string[]> {
    return this.db.transaction((): string[] =>
      uuids.filter(
        (uuid) =>
          this.sql('UPDATE commands SET body = zeroblob(0), body_erased_at = ? WHERE uuid = ? AND body_erased_at IS NULL').run(
            ms(now),
            uuid,
          ).changes === 1,
      ),
    )();
  }
}
