import assert from 'node:assert/strict';
import { certificate, decide, type WithStore } from './support.ts';

/** PushStore: user channels and their push tokens. */
export function pushConformance(withStore: WithStore): void {
  withStore('a user channel is created, refreshed without losing its token, and its token marked invalid', async (store) => {
    const at = new Date(Date.UTC(2026, 0, 1));
    const later = new Date(Date.UTC(2026, 0, 2));
    const channel = { enrollmentId: 'DEV-1', userId: 'USER-1' };
    const identity = certificate();
    await store.insertCertificates([{ certificate: identity }]);
    await store.authenticateEnrollment({ id: 'DEV-1', kind: 'device', certificateId: identity.id, topic: 't', info: {}, now: at, decide });
    assert.equal(await store.getUserChannel(channel.enrollmentId, channel.userId), undefined);
    await store.upsertUserChannel({ ...channel, userShortName: 'ann', pushToken: Buffer.from('token'), pushMagic: 'magic', now: at });
    // A later message without a token keeps the one the user channel has.
    await store.upsertUserChannel({ ...channel, userShortName: 'ann.b', pushToken: null, pushMagic: null, now: later });
    assert.deepEqual(await store.getUserChannel(channel.enrollmentId, channel.userId), {
      ...channel,
      userShortName: 'ann.b',
      pushToken: Buffer.from('token'),
      pushMagic: 'magic',
      pushTokenInvalidAt: null,
      lastSeenAt: later,
    });
    await store.markUserChannelTokenInvalid(channel.enrollmentId, channel.userId, later);
    assert.deepEqual((await store.getUserChannel(channel.enrollmentId, channel.userId))?.pushTokenInvalidAt, later);
    assert.equal(await store.getUserChannel('DEV-2', channel.userId), undefined, 'a user channel belongs to one enrollment');
  });
}
