import assert from 'node:assert/strict';
import { ConflictError, deviceChannel } from '../../../src/store/types.ts';
import { day, decide, certificate, type WithStore } from './support.ts';

/** CommandStore: the queue, its results and the erasure of command bodies. */
export function commandConformance(withStore: WithStore): void {
  withStore('command queue: priority then FIFO, NotNow skipped until revived, results once, clean after CheckOut', async (store) => {
    const c = certificate();
    await store.insertCertificates([{ certificate: c }]);
    const at = new Date(Date.UTC(2026, 0, 1));
    await store.authenticateEnrollment({ id: 'D', kind: 'device', certificateId: c.id, topic: 't', info: {}, now: at, decide });
    const command = (uuid: string, priority: number) => ({
      uuid,
      requestType: 'ProfileList',
      body: Buffer.from(uuid),
      priority,
      createdBy: 'test',
      createdAt: at,
    });
    const D = deviceChannel('D');
    const user = { enrollmentId: 'D', userId: 'user' };
    await store.upsertUserChannel({ ...user, userShortName: null, pushToken: null, pushMagic: null, now: at });
    await store.enqueueCommand(command('low', 0), [D]);
    await store.enqueueCommand(command('high', 5), [D, user]);
    await store.enqueueCommand(command('low2', 0), [D]);
    assert.equal((await store.nextCommand(D, { reviveNotNow: true, now: at }))?.commandUuid, 'high');
    assert.equal(await store.recordCommandResult(D, 'high', 'not-now', Buffer.from('r'), at), true);
    assert.equal((await store.nextCommand(D, { reviveNotNow: false, now: at }))?.commandUuid, 'low');
    assert.equal(await store.recordCommandResult(D, 'low', 'acknowledged', Buffer.from('ok'), at), true);
    assert.equal(await store.recordCommandResult(D, 'low', 'acknowledged', Buffer.from('again'), at), false, 'a result is stored once');
    assert.equal((await store.nextCommand(D, { reviveNotNow: false, now: at }))?.commandUuid, 'low2');
    assert.equal(await store.recordCommandResult(D, 'low2', 'error', Buffer.from('e'), at), true);
    assert.equal(await store.nextCommand(D, { reviveNotNow: false, now: at }), undefined);
    assert.equal((await store.nextCommand(D, { reviveNotNow: true, now: at }))?.commandUuid, 'high');
    assert.deepEqual(
      (await store.listQueue(D)).map((q) => [q.commandUuid, q.status]),
      [
        ['low', 'acknowledged'],
        ['high', 'queued'],
        ['low2', 'error'],
      ],
    );
    await store.checkOutEnrollment('D', at);
    await store.authenticateEnrollment({ id: 'D', kind: 'device', certificateId: c.id, topic: 't', info: {}, now: at, decide });
    assert.deepEqual(await store.listQueue(D), [], 'a fresh enrollment after CheckOut starts clean');
    assert.deepEqual(await store.listQueue(user), [], "and so do its users' channels");
  });

  withStore(
    'channels are keyed by (enrollment, user): a device named "<id>:<user>" shares nothing with that user channel',
    async (store) => {
      const at = new Date(Date.UTC(2026, 0, 1));
      const [victimCert, attackerCert] = [certificate(), certificate()];
      await store.insertCertificates([{ certificate: victimCert }, { certificate: attackerCert }]);
      await store.authenticateEnrollment({ id: 'V', kind: 'device', certificateId: victimCert.id, topic: 't', info: {}, now: at, decide });
      await store.authenticateEnrollment({
        id: 'V:U',
        kind: 'device',
        certificateId: attackerCert.id,
        topic: 't',
        info: {},
        now: at,
        decide,
      });
      const user = { enrollmentId: 'V', userId: 'U' };
      const attacker = deviceChannel('V:U');
      await store.upsertUserChannel({ ...user, userShortName: 'u', pushToken: Buffer.from('user-token'), pushMagic: 'm', now: at });
      const command = (uuid: string) => ({
        uuid,
        requestType: 'ProfileList',
        body: Buffer.from(uuid),
        priority: 0,
        createdBy: 'test',
        createdAt: at,
      });
      await store.enqueueCommand(command('for-user'), [user]);
      await store.enqueueCommand(command('for-attacker'), [attacker]);

      assert.equal((await store.nextCommand(attacker, { reviveNotNow: true, now: at }))?.commandUuid, 'for-attacker');
      assert.equal(await store.recordCommandResult(attacker, 'for-user', 'acknowledged', Buffer.from('x'), at), false);
      assert.deepEqual(
        (await store.listQueue(user)).map((q) => [q.commandUuid, q.status, q.channel]),
        [['for-user', 'queued', user]],
      );
      assert.equal(await store.getUserChannel('V:U', 'U'), undefined);
      assert.equal(await store.getUserChannel('V', 'U:x'), undefined);
      await store.markUserChannelTokenInvalid('V:U', 'U', at);
      assert.equal((await store.getUserChannel('V', 'U'))?.pushTokenInvalidAt, null, 'another enrollment cannot mark this user channel');
      assert.equal((await store.nextCommand(user, { reviveNotNow: true, now: at }))?.commandUuid, 'for-user');
      assert.equal(await store.recordCommandResult(user, 'for-user', 'acknowledged', Buffer.from('ok'), at), true);
      assert.deepEqual(
        (await store.listQueue(attacker)).map((q) => [q.commandUuid, q.status, q.channel]),
        [['for-attacker', 'queued', attacker]],
      );
      assert.deepEqual(await store.listQueue(deviceChannel('V')), [], "the victim's device channel has neither");
    },
  );

  withStore("a fresh enrollment after CheckOut empties its own device and user channels, never another enrollment's", async (store) => {
    const at = new Date(Date.UTC(2026, 0, 1));
    const ids = ['a', 'a:b', 'a_', 'a%'];
    const certs = new Map(ids.map((id) => [id, certificate()]));
    await store.insertCertificates([...certs.values()].map((c) => ({ certificate: c })));
    for (const id of ids)
      await store.authenticateEnrollment({ id, kind: 'device', certificateId: certs.get(id)!.id, topic: 't', info: {}, now: at, decide });
    const channels = [
      deviceChannel('a'),
      { enrollmentId: 'a', userId: 'b' },
      { enrollmentId: 'a', userId: 'b:c' },
      deviceChannel('a:b'),
      { enrollmentId: 'a:b', userId: 'c' },
      deviceChannel('a_'),
      deviceChannel('a%'),
    ];
    for (const c of channels.filter((c) => c.userId !== null))
      await store.upsertUserChannel({
        enrollmentId: c.enrollmentId,
        userId: c.userId!,
        userShortName: null,
        pushToken: null,
        pushMagic: null,
        now: at,
      });
    for (const [i, c] of channels.entries())
      await store.enqueueCommand(
        { uuid: `cmd-${i}`, requestType: 'ProfileList', body: Buffer.from('x'), priority: 0, createdBy: 'test', createdAt: at },
        [c],
      );
    const queues = async () => Promise.all(channels.map(async (c) => (await store.listQueue(c)).map((q) => q.commandUuid)));
    const userChannels = async () =>
      Promise.all(
        channels.filter((c) => c.userId !== null).map(async (c) => Boolean(await store.getUserChannel(c.enrollmentId, c.userId!))),
      );

    await store.checkOutEnrollment('a:b', at);
    await store.authenticateEnrollment({
      id: 'a:b',
      kind: 'device',
      certificateId: certs.get('a:b')!.id,
      topic: 't',
      info: {},
      now: at,
      decide,
    });
    assert.deepEqual(
      await queues(),
      [['cmd-0'], ['cmd-1'], ['cmd-2'], [], [], ['cmd-5'], ['cmd-6']],
      "re-enrolling 'a:b' empties only its queues",
    );
    assert.deepEqual(await userChannels(), [true, true, false]);

    await store.checkOutEnrollment('a', at);
    await store.authenticateEnrollment({
      id: 'a',
      kind: 'device',
      certificateId: certs.get('a')!.id,
      topic: 't',
      info: {},
      now: at,
      decide,
    });
    assert.deepEqual(await queues(), [[], [], [], [], [], ['cmd-5'], ['cmd-6']], "re-enrolling 'a' empties only its queues");
    assert.deepEqual(await userChannels(), [false, false, false]);
  });
  withStore('command bodies: a UUID once, erased when answered on every channel or when their secrets expire', async (store) => {
    const c = certificate();
    await store.insertCertificates([{ certificate: c }]);
    const at = new Date(Date.UTC(2026, 0, 1));
    await store.authenticateEnrollment({ id: 'E', kind: 'device', certificateId: c.id, topic: 't', info: {}, now: at, decide });
    const command = (uuid: string, secretsExpireAt: Date | null = null) => ({
      uuid,
      requestType: 'InstallProfile',
      body: Buffer.from(`sealed ${uuid}`),
      priority: 0,
      createdBy: 'test',
      createdAt: at,
      sealed: true,
      secretsExpireAt,
    });
    await store.enqueueCommand(command('two-channels'), [deviceChannel('E'), { enrollmentId: 'E', userId: 'user' }]);
    await assert.rejects(store.enqueueCommand(command('two-channels'), [deviceChannel('E')]), ConflictError, 'a UUID names one command');
    await assert.rejects(store.enqueueCommand(command('same-channel-twice'), [deviceChannel('E'), deviceChannel('E')]), ConflictError);
    assert.equal(await store.getCommand('same-channel-twice'), undefined, 'a refused enqueue stores nothing');
    assert.equal((await store.listQueue(deviceChannel('E'))).length, 1);

    const next = await store.nextCommand(deviceChannel('E'), { reviveNotNow: false, now: at });
    assert.deepEqual([next?.commandUuid, next?.sealed, next?.body.toString()], ['two-channels', true, 'sealed two-channels']);
    await store.recordCommandResult(deviceChannel('E'), 'two-channels', 'not-now', Buffer.from('r'), at);
    await store.recordCommandResult({ enrollmentId: 'E', userId: 'user' }, 'two-channels', 'acknowledged', Buffer.from('r'), at);
    assert.equal((await store.getCommand('two-channels'))?.body.toString(), 'sealed two-channels', 'still pending on one channel');
    await store.nextCommand(deviceChannel('E'), { reviveNotNow: true, now: at });
    await store.recordCommandResult(deviceChannel('E'), 'two-channels', 'error', Buffer.from('r'), at);
    const answered = await store.getCommand('two-channels');
    assert.deepEqual([answered?.body.length, answered?.bodyErasedAt], [0, at]);

    const expiry = new Date(at.getTime() + day);
    await store.enqueueCommand(command('expiring', expiry), [deviceChannel('E')]);
    assert.equal((await store.nextCommand(deviceChannel('E'), { reviveNotNow: false, now: at }))?.commandUuid, 'expiring');
    assert.equal(
      await store.nextCommand(deviceChannel('E'), { reviveNotNow: false, now: expiry }),
      undefined,
      'not delivered once expired',
    );
    assert.deepEqual(await store.eraseExpiredCommandBodies(at), []);
    assert.deepEqual(await store.eraseExpiredCommandBodies(expiry), ['expiring']);
    assert.deepEqual(await store.eraseExpiredCommandBodies(expiry), [], 'once');
    assert.equal((await store.getCommand('expiring'))?.body.length, 0);
    assert.equal((await store.listQueue(deviceChannel('E'))).find((q) => q.commandUuid === 'expiring')?.status, 'expired');

    await store.enqueueCommand(command('withdrawn'), [deviceChannel('E')]);
    assert.deepEqual(
      await store.eraseCommandBodies(['withdrawn', 'expiring', 'no-such'], expiry),
      ['withdrawn'],
      'only bodies not yet erased',
    );
    assert.equal(
      await store.nextCommand(deviceChannel('E'), { reviveNotNow: false, now: at }),
      undefined,
      'a withdrawn command is not delivered',
    );
    assert.equal((await store.listQueue(deviceChannel('E'))).find((q) => q.commandUuid === 'withdrawn')?.status, 'expired');
  });
}
