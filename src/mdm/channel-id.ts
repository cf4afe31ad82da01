import type { ChannelKey, Store } from '../store/types.ts';

/** An admin's channel id that names no channel (404) or could name more than one (409). */
export class ChannelIdError extends Error {
  constructor(
    message: string,
    readonly status: 404 | 409,
  ) {
    super(message);
    this.name = 'ChannelIdError';
  }
}

/**
 * Reads a channel id as NanoMDM writes it: `<UDID>` (or EnrollmentID) for a device channel, `<UDID>:<UserID>` (or
 * `<EnrollmentID>:<EnrollmentUserID>`) for a user channel. A UDID may itself contain ':', so the string is matched
 * against what is stored, never split blindly: it is the device channel of an enrollment with exactly that id, or,
 * for a ':' in it, the user channel of the enrollment before it for the user after it — which must exist. When more
 * than one reading is possible, including an enrolled device before a ':' that has no such user yet (an enrollment
 * named `<UDID>:<UserID>` must not receive commands meant for that user), it is refused rather than guessed: the
 * admin names the channel structurally instead (`channelFromParts`).
 */
export async function channelFromId(store: Pick<Store, 'getEnrollment' | 'getUserChannel'>, id: string): Promise<ChannelKey> {
  const channels: ChannelKey[] = [];
  const lacking: string[] = [];
  if (await store.getEnrollment(id)) channels.push({ enrollmentId: id, userId: null });
  for (let at = id.indexOf(':'); at !== -1; at = id.indexOf(':', at + 1)) {
    const enrollmentId = id.slice(0, at);
    const userId = id.slice(at + 1);
    if (!enrollmentId || !userId || !(await store.getEnrollment(enrollmentId))) continue;
    if (await store.getUserChannel(enrollmentId, userId)) channels.push({ enrollmentId, userId });
    else lacking.push(`device ${JSON.stringify(enrollmentId)} (no user ${JSON.stringify(userId)} yet)`);
  }
  if (channels.length === 1 && lacking.length === 0) return channels[0]!;
  if (channels.length + lacking.length > 1) {
    const readings = [...channels.map(describe), ...lacking];
    throw new ChannelIdError(
      `${JSON.stringify(id)} could name ${readings.join(' or ')}; name the channel as {"enrollment_id", "user_id"}`,
      409,
    );
  }
  throw new ChannelIdError(
    lacking.length ? `${JSON.stringify(id)} names ${lacking[0]}` : `no device or user channel ${JSON.stringify(id)}`,
    404,
  );
}

/** A channel named structurally (the admin API's `{"enrollment_id", "user_id"}`): it must exist. */
export async function channelFromParts(
  store: Pick<Store, 'getEnrollment' | 'getUserChannel'>,
  enrollmentId: string,
  userId: string | null,
): Promise<ChannelKey> {
  const channel = { enrollmentId, userId };
  const exists = (await store.getEnrollment(enrollmentId)) && (userId === null || (await store.getUserChannel(enrollmentId, userId)));
  if (!exists) throw new ChannelIdError(`no ${describe(channel)}`, 404);
  return channel;
}

export function describe(channel: ChannelKey): string {
  return channel.userId === null
    ? `device channel ${JSON.stringify(channel.enrollmentId)}`
    : `user channel ${JSON.stringify(channel.userId)} of ${JSON.stringify(channel.enrollmentId)}`;
}
