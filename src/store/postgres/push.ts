import { ms, userChannelFromRow } from '../rows.ts';
import type { PushStore, UserChannelInput, UserChannelRecord } from '../types.ts';
import { PgConcern } from './connection.ts';

export class PgPush extends PgConcern implements PushStore {
  async upsertUserChannel(c: UserChannelInput): Promise<void> {
    await this.sql.run(
      `INSERT INTO user_channels (enrollment_id, user_id, user_short_name, push_token, push_magic, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (enrollment_id, user_id) DO UPDATE SET user_short_name = EXCLUDED.user_short_name,
         push_token = coalesce(EXCLUDED.push_token, user_channels.push_token),
         push_magic = coalesce(EXCLUDED.push_magic, user_channels.push_magic), last_seen_at = EXCLUDED.last_seen_at`,
      [c.enrollmentId, c.userId, c.userShortName, c.pushToken, c.pushMagic, ms(c.now)],
    );
  }

  async getUserChannel(enrollmentId: string, userId: string): Promise<UserChannelRecord | undefined> {
    const r = await this.sql.one('SELECT * FROM user_channels WHERE enrollment_id = $1 AND user_id = $2', [enrollmentId, userId]);
    return r ? userChannelFromRow(r) : undefined;
  }

  async markUserChannelTokenInvalid(enrollmentId: string, userId: string, at: Date): Promise<void> {
    await this.sql.run('UPDATE user_channels SET push_token_invalid_at = $1 WHERE enrollment_id = $2 AND user_id = $3', [
      ms(at),
      enrollmentId,
      userId,
    ]);
  }
}
