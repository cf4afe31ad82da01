import { SqliteConcern } from './connection.ts';
import { ms, userChannelFromRow, type Row } from '../rows.ts';
import { type UserChannelInput, type UserChannelRecord, type PushStore } from '../types.ts';

export class SqlitePush extends SqliteConcern implements PushStore {
  async upsertUserChannel(c: UserChannelInput): Promise<void> {
    this.sql(
      `INSERT INTO user_channels (enrollment_id, user_id, user_short_name, push_token, push_magic, last_seen_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (enrollment_id, user_id) DO UPDATE SET user_short_name = excluded.user_short_name,
         push_token = coalesce(excluded.push_token, push_token), push_magic = coalesce(excluded.push_magic, push_magic), last_seen_at = excluded.last_seen_at`,
    ).run(c.enrollmentId, c.userId, c.userShortName, c.pushToken, c.pushMagic, ms(c.now));
  }

  async getUserChannel(enrollmentId: string, userId: string): Promise<UserChannelRecord | undefined> {
    const r = this.sql('SELECT * FROM user_channels WHERE enrollment_id = ? AND user_id = ?').get(enrollmentId, userId) as Row | undefined;
    return r ? userChannelFromRow(r) : undefined;
  }

  async markUserChannelTokenInvalid(enrollmentId: string, userId: string, at: Date): Promise<void> {
    this.sql('UPDATE user_channels SET push_token_invalid_at = ? WHERE enrollment_id = ? AND user_id = ?').run(
      ms(at),
      enrollmentId,
      userId,
    );
  }
}
