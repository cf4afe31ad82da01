import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { CachedIdentityFacts } from '../../src/mdm/identity-cache.ts';
import type { CertificateRecord } from '../../src/store/types.ts';
import { enrollTestDevice } from '../helpers/device.ts';
import { mdmFixture } from './fixture.ts';

const TOPIC = 'com.apple.mgmt.External.5f3c0d1e-test';

/** SQLite's own count of commits made by other connections: it moves with any write the server commits. */
function commitsSeen(dbPath: string): () => number {
  const db = new Database(dbPath, { readonly: true });
  return () => Number(db.pragma('data_version', { simple: true }));
}

test('a steady-state check-in writes nothing: Idle with nothing queued, a repeated TokenUpdate; last-seen goes in batches', async (t) => {
  const f = await mdmFixture({ 'last-seen-flush-seconds': '3600' });
  t.after(() => f.close());
  const device = await enrollTestDevice(f, 'HOT-PATH-1');
  const token = { MessageType: 'TokenUpdate', Topic: TOPIC, Token: { $data: Buffer.alloc(32, 1).toString('base64') }, PushMagic: 'm1' };
  assert.equal((await f.speak(device, { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: 'x' })).statusCode, 200);
  assert.equal((await f.speak(device, token)).statusCode, 200);
  const enrolledAt = (await f.app.store.getEnrollment(device.udid))!.lastSeenAt;

  const version = commitsSeen(join(f.app.config.dataDir, 'certmdm.db'));
  const before = f.state();
  const commits = version();
  f.advance(60_000);
  for (const message of [{ Status: 'Idle' }, token, { Status: 'Idle' }, token])
    assert.equal((await f.speak(device, message)).statusCode, 200);
  assert.equal(version(), commits, 'no commit at all');
  assert.deepEqual(f.state(), before, 'nothing stored changed');

  // The batch is written at the next flush (a timer, or the server closing): the newest time of the four messages.
  await f.services.mdm.lastSeen.flush();
  assert.ok(version() > commits);
  assert.deepEqual((await f.app.store.getEnrollment(device.udid))!.lastSeenAt, new Date(enrolledAt.getTime() + 60_000));

  // After APNs refused the token, the same TokenUpdate again is written: it makes the device pushable again.
  await f.app.store.updateEnrollment(device.udid, { pushTokenInvalidAt: f.now() });
  assert.equal((await f.speak(device, token)).statusCode, 200);
  assert.equal((await f.app.store.getEnrollment(device.udid))!.pushTokenInvalidAt, null);

  // A TokenUpdate that changes something is written with its message, as before.
  const changed = { ...token, Token: { $data: Buffer.alloc(32, 2).toString('base64') } };
  assert.equal((await f.speak(device, changed)).statusCode, 200);
  assert.deepEqual((await f.app.store.getEnrollment(device.udid))!.pushToken, Buffer.alloc(32, 2));
  // So is an UnlockToken the store does not hold yet, and a queued command is still delivered on Idle.
  assert.equal((await f.speak(device, { ...changed, UnlockToken: { $data: Buffer.from('unlock').toString('base64') } })).statusCode, 200);
  assert.ok((await f.app.store.getEnrollment(device.udid))!.unlockToken?.length);
  const queued = await f.admin('POST', '/v1/commands', { devices: [device.udid], command: { RequestType: 'ProfileList' }, push: false });
  assert.equal(queued.statusCode, 201, queued.body);
  const idle = await f.speak(device, { Status: 'Idle' });
  assert.match(idle.body, new RegExp(queued.json().command_uuid as string));

  // What is held when the server closes is written before it lets go of the store.
  f.advance(60_000);
  assert.equal((await f.speak(device, { Status: 'Idle' })).statusCode, 200);
  await f.server.close();
  const stored = new Database(join(f.app.config.dataDir, 'certmdm.db'), { readonly: true });
  const row = stored.prepare('SELECT last_seen_at FROM enrollments WHERE id = ?').get(device.udid) as { last_seen_at: number };
  stored.close();
  assert.equal(row.last_seen_at, f.now().getTime());
});

test('identity facts: remembered until the epoch moves; a slow read never puts back what a newer epoch retired', async () => {
  const record = (status: CertificateRecord['status']) => ({ id: 'crt_1', status }) as CertificateRecord;
  let epoch = 1;
  let stored = record('active');
  let reads = 0;
  let release: (() => void) | undefined;
  const facts = new CachedIdentityFacts({
    identityEpoch: async () => epoch,
    getCertificate: async () => {
      reads++;
      const seen = stored;
      if (release === undefined) return seen;
      await new Promise<void>((resolve) => (release = resolve));
      return seen;
    },
    getCertificateByFingerprint: async () => undefined,
    getBinding: async () => undefined,
    getEnrollment: async () => undefined,
  });
  await facts.sync();
  assert.equal((await facts.getCertificate('crt_1'))?.status, 'active');
  assert.equal((await facts.getCertificate('crt_1'))?.status, 'active');
  assert.equal(reads, 1, 'the second request is answered from memory');

  // Revoked, epoch 2: the next request's sync forgets and reads it again.
  stored = record('revoked');
  epoch = 2;
  await facts.sync();
  assert.equal((await facts.getCertificate('crt_1'))?.status, 'revoked');
  assert.equal(reads, 2);

  // A read that began before the cache was emptied (it saw 'active') finishes after: it is not remembered.
  stored = record('active');
  epoch = 3;
  await facts.sync();
  release = () => {};
  const slow = facts.getCertificate('crt_1');
  await new Promise((resolve) => setImmediate(resolve));
  stored = record('revoked');
  epoch = 4;
  await facts.sync();
  const finish = release;
  release = undefined;
  finish();
  assert.equal((await slow)?.status, 'active', 'the slow read answers its own request');
  assert.equal((await facts.getCertificate('crt_1'))?.status, 'revoked', 'but the next request reads the store again');

  // An epoch read that comes back late (an older value) never moves the cache back.
  const readsBefore = reads;
  epoch = 3;
  await facts.sync();
  assert.equal((await facts.getCertificate('crt_1'))?.status, 'revoked');
  assert.equal(reads, readsBefore, 'still remembered under epoch 4');
});
