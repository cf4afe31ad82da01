import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { checkIn, enrollTestDevice, mdmSignature, plistBody, type TestDevice } from '../helpers/device.ts';
import { plistlibPlain } from '../helpers/profile.ts';
import { CHECKIN, mdmFixture, SERVER } from './fixture.ts';

const TOPIC = 'com.apple.mgmt.External.5f3c0d1e-test';

/**
 * Issue 12, item 4: channels are keyed by (enrollment, user), so a device enrolled under the UDID `<victim>:<UserID>`
 * (or a user `<x>` of a device `<d>` when `<d>:<x>` is another device) reaches no queue but its own. Everything goes
 * through the HTTPS listener on loopback, devices signing with their SCEP identities.
 */
describe('user-channel queues are keyed structurally (HTTPS listener)', () => {
  let f: Awaited<ReturnType<typeof mdmFixture>>;
  let port: number;
  const statuses: number[] = [];

  before(async () => {
    f = await mdmFixture();
    await f.server.listen({ host: '127.0.0.1', port: 0 });
    port = (f.server.server.address() as AddressInfo).port;
  });
  after(async () => {
    assert.ok(!statuses.includes(401), 'no device request was ever answered 401');
    await f.close();
  });

  const https = (method: string, path: string, body: Buffer | string | undefined, headers: Record<string, string>) =>
    new Promise<{ statusCode: number; body: Buffer }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(f.root), method, path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ statusCode: res.statusCode!, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end(body);
    });

  const speak = async (device: TestDevice, message: Record<string, unknown>) => {
    const body = checkIn(device, message);
    const response = await https('PUT', message.MessageType ? '/mdm/checkin' : '/mdm/server', body, {
      'content-type': message.MessageType ? CHECKIN : SERVER,
      'mdm-signature': mdmSignature(body, device),
    });
    statuses.push(response.statusCode);
    return response;
  };
  const admin = async (method: string, path: string, payload?: unknown, contentType = 'application/json') => {
    const body = payload === undefined ? undefined : Buffer.isBuffer(payload) ? payload : JSON.stringify(payload);
    const response = await https(method, path, body, {
      authorization: `Bearer ${f.token}`,
      ...(body === undefined ? {} : { 'content-type': contentType }),
    });
    return {
      statusCode: response.statusCode,
      text: response.body.toString('utf8'),
      json: () => JSON.parse(response.body.toString('utf8')),
    };
  };
  const enroll = async (udid: string) => {
    const device = await enrollTestDevice(f, udid);
    assert.equal((await speak(device, { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: udid })).statusCode, 200);
    return device;
  };
  const userTokenUpdate = (userId: string) => ({
    MessageType: 'TokenUpdate',
    Topic: TOPIC,
    Token: { $data: Buffer.from(`token-${userId}`).toString('base64') },
    PushMagic: `magic-${userId}`,
    UserID: userId,
    UserShortName: userId.toLowerCase(),
  });
  const nanoEnqueue = (ids: string, requestType: string) =>
    admin(
      'PUT',
      `/v1/enqueue/${encodeURIComponent(ids)}?nopush=1`,
      plistBody({ Command: { RequestType: requestType } }),
      'application/xml',
    );
  const enqueue = async (ids: string, requestType: string) => {
    const r = await nanoEnqueue(ids, requestType);
    assert.equal(r.statusCode, 200, r.text);
    return r.json().command_uuid as string;
  };
  const enqueueTo = async (channel: { enrollment_id: string; user_id?: string }) => {
    const r = await admin('POST', '/v1/commands', { devices: [channel], command: { RequestType: 'ProfileList' }, push: false });
    assert.equal(r.statusCode, 201, r.text);
    return r.json().command_uuid as string;
  };
  /** The stored rows that belong to `enrollmentId`: its enrollment, bindings, user channels and queues. */
  const rowsOf = (enrollmentId: string) => {
    const db = new Database(join(f.app.config.dataDir, 'certmdm.db'), { readonly: true });
    try {
      const dump = (sql: string) =>
        JSON.stringify(db.prepare(sql).all(enrollmentId), (_k, v: unknown) =>
          v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v,
        );
      return {
        enrollment: dump('SELECT * FROM enrollments WHERE id = ?'),
        bindings: dump('SELECT * FROM certificate_bindings WHERE enrollment_id = ? ORDER BY certificate_id'),
        userChannels: dump('SELECT * FROM user_channels WHERE enrollment_id = ? ORDER BY user_id'),
        queue: dump('SELECT * FROM command_queue WHERE enrollment_id = ? ORDER BY seq'),
      };
    } finally {
      db.close();
    }
  };
  const offered = (response: { statusCode: number; body: Buffer }) => {
    assert.equal(response.statusCode, 200, response.body.toString());
    return response.body.length ? (plistlibPlain(response.body).CommandUUID as string) : null;
  };

  test("a device enrolled as '<victim>:<UserID>' neither receives nor settles the victim's user-channel command", async () => {
    const victim = await enroll('VICTIM-1');
    assert.equal((await speak(victim, userTokenUpdate('USER-1'))).statusCode, 200);
    const forUser = await enqueue('VICTIM-1:USER-1', 'ProfileList');
    const attacker = await enroll('VICTIM-1:USER-1');

    const victimBefore = rowsOf('VICTIM-1');
    assert.match(victimBefore.queue, new RegExp(forUser), 'the victim has the command queued');
    const commandsBefore = f.state().commands;
    assert.equal(offered(await speak(attacker, { Status: 'Idle' })), null, "the attacker's Idle gets nothing of the victim's user");
    for (const Status of ['Acknowledged', 'Error', 'NotNow'])
      assert.equal(offered(await speak(attacker, { Status, CommandUUID: forUser })), null, `${Status} from the attacker`);
    // Its own user channel named like the victim's user is its own queue too.
    assert.equal(offered(await speak(attacker, { Status: 'Idle', UserID: 'USER-1' })), null);
    assert.equal(offered(await speak(attacker, { Status: 'Acknowledged', CommandUUID: forUser, UserID: 'USER-1' })), null);
    assert.deepEqual(rowsOf('VICTIM-1'), victimBefore, "the victim's enrollment, user channel and queues are unchanged");
    assert.equal(f.state().commands, commandsBefore);

    assert.equal(offered(await speak(victim, { Status: 'Idle', UserID: 'USER-1' })), forUser, "the victim's user still gets it");
    assert.equal(offered(await speak(victim, { Status: 'Acknowledged', CommandUUID: forUser, UserID: 'USER-1' })), null);
    const queue = await admin('GET', `/v1/devices/VICTIM-1/commands?user_id=USER-1`);
    assert.deepEqual(
      (queue.json().commands as { command_uuid: string; status: string }[]).map((q) => [q.command_uuid, q.status]),
      [[forUser, 'acknowledged']],
    );
  });

  test("a user '<x>' of device '<d>' reaches nothing of a device enrolled as '<d>:<x>'", async () => {
    const device = await enroll('DEV-2:EVIL');
    const forDevice = await enqueue('DEV-2:EVIL', 'ProfileList');
    const attacker = await enroll('DEV-2');
    const before = rowsOf('DEV-2:EVIL');
    assert.equal((await speak(attacker, userTokenUpdate('EVIL'))).statusCode, 200);
    assert.equal(offered(await speak(attacker, { Status: 'Idle', UserID: 'EVIL' })), null);
    assert.equal(offered(await speak(attacker, { Status: 'Acknowledged', CommandUUID: forDevice, UserID: 'EVIL' })), null);
    assert.deepEqual(rowsOf('DEV-2:EVIL'), before);
    assert.equal(offered(await speak(device, { Status: 'Idle' })), forDevice);
  });

  test('the admin API refuses a NanoMDM id that could name two channels (409, audited, nothing stored) and takes the structural form', async () => {
    // VICTIM-1 has user USER-1 and a device is enrolled as VICTIM-1:USER-1 (first test).
    const before = f.state();
    const refusals: [string, string, unknown?, string?][] = [
      ['PUT', '/v1/enqueue/VICTIM-1%3AUSER-1', plistBody({ Command: { RequestType: 'ProfileList' } }), 'application/xml'],
      ['POST', '/v1/commands', { devices: ['VICTIM-1:USER-1'], command: { RequestType: 'ProfileList' } }],
      ['GET', '/v1/push/VICTIM-1%3AUSER-1'],
      ['GET', '/v1/devices/VICTIM-1%3AUSER-1/commands'],
    ];
    for (const [method, path, payload, type] of refusals) {
      const r = await admin(method, path, payload, type);
      assert.equal(r.statusCode, 409, `${method} ${path}: ${r.text}`);
      assert.equal(r.json().error, 'ambiguous-channel');
      assert.match(r.json().message, /device channel "VICTIM-1:USER-1" or user channel "USER-1" of "VICTIM-1"/);
      const [event] = await f.app.store.listAudit({ limit: 1 });
      assert.equal(event?.outcome, 'denied', path);
      assert.match(event?.reason ?? '', /could name/);
      assert.deepEqual(f.state(), before, `${method} ${path}: nothing stored`);
    }
    // An enrolled device before the ':' without that user yet is a reading too: not given to the other device.
    await enroll('DEV-3');
    await enroll('DEV-3:NEW-USER');
    const pending = await admin('POST', '/v1/commands', {
      devices: ['DEV-3:NEW-USER'],
      command: { RequestType: 'ProfileList' },
      push: false,
    });
    assert.equal(pending.statusCode, 409, pending.text);
    // A user channel that does not exist is not queued for.
    const missing = await admin('POST', '/v1/commands', {
      devices: ['DEV-3:NOBODY'],
      command: { RequestType: 'ProfileList' },
      push: false,
    });
    assert.equal(missing.statusCode, 404, missing.text);
    assert.match(missing.json().message, /no user "NOBODY" yet/);

    const structural = async (channel: unknown) => {
      const r = await admin('POST', '/v1/commands', { devices: [channel], command: { RequestType: 'CertificateList' }, push: false });
      assert.equal(r.statusCode, 201, r.text);
      return r.json().command_uuid as string;
    };
    const toUser = await structural({ enrollment_id: 'VICTIM-1', user_id: 'USER-1' });
    const toDevice = await structural({ enrollment_id: 'VICTIM-1:USER-1' });
    const list = async (path: string) =>
      ((await admin('GET', path)).json().commands as { command_uuid: string; status: string }[])
        .filter((q) => q.status === 'queued')
        .map((q) => q.command_uuid);
    assert.deepEqual(await list('/v1/devices/VICTIM-1/commands?user_id=USER-1'), [toUser]);
    assert.deepEqual(await list('/v1/devices/VICTIM-1%3AUSER-1/commands?channel=device'), [toDevice]);
    const unknownUser = await admin('POST', '/v1/commands', {
      devices: [{ enrollment_id: 'VICTIM-1', user_id: 'NOBODY' }],
      command: { RequestType: 'ProfileList' },
    });
    assert.equal(unknownUser.statusCode, 404, unknownUser.text);
  });

  test('CheckOut and re-enrollment of a device empty its own queues only', async () => {
    const a = await enroll('CO-A');
    assert.equal((await speak(a, userTokenUpdate('b'))).statusCode, 200);
    const forUserB = await enqueue('CO-A:b', 'ProfileList');
    const forA = await enqueue('CO-A', 'SecurityInfo');
    const ab = await enroll('CO-A:b');
    const forAb = await enqueueTo({ enrollment_id: 'CO-A:b' });
    assert.match(rowsOf('CO-A:b').queue, new RegExp(forAb));

    const aBefore = rowsOf('CO-A');
    for (const uuid of [forUserB, forA]) assert.match(aBefore.queue, new RegExp(uuid));
    assert.equal((await speak(ab, { MessageType: 'CheckOut', Topic: TOPIC })).statusCode, 200);
    assert.equal((await speak(ab, { MessageType: 'Authenticate', Topic: TOPIC })).statusCode, 200);
    assert.deepEqual(rowsOf('CO-A'), aBefore, "re-enrolling 'CO-A:b' leaves the queue of CO-A's user b alone");
    assert.equal(offered(await speak(ab, { Status: 'Idle' })), null, "'CO-A:b' starts clean");

    assert.equal((await nanoEnqueue('CO-A:b', 'ProfileList')).statusCode, 409, "'CO-A:b' could name CO-A's user b");
    const forAb2 = await enqueueTo({ enrollment_id: 'CO-A:b' });
    const abBefore = rowsOf('CO-A:b');
    assert.match(abBefore.queue, new RegExp(forAb2));
    assert.equal((await speak(a, { MessageType: 'CheckOut', Topic: TOPIC })).statusCode, 200);
    assert.equal((await speak(a, { MessageType: 'Authenticate', Topic: TOPIC })).statusCode, 200);
    assert.deepEqual(rowsOf('CO-A:b'), abBefore, "re-enrolling 'CO-A' leaves the device 'CO-A:b' alone");
    assert.equal(offered(await speak(a, { Status: 'Idle' })), null, 'CO-A starts clean');
    assert.equal(offered(await speak(a, { Status: 'Idle', UserID: 'b' })), null, "and so do CO-A's users");
    assert.equal(offered(await speak(ab, { Status: 'Idle' })), forAb2);
    assert.doesNotMatch(abBefore.queue, new RegExp(forAb), 'its queue from before its own CheckOut is gone');
  });

  test('identifiers with control characters are refused at reading (400, audited, nothing stored)', async () => {
    const device = await enroll('CTRL-1');
    const before = f.state();
    const response = await speak(device, { Status: 'Idle', UserID: 'USER\nforged audit line' });
    assert.equal(response.statusCode, 400);
    const [event] = await f.app.store.listAudit({ limit: 1 });
    assert.equal(event?.outcome, 'denied');
    assert.match(event?.reason ?? '', /UserID must not contain control characters/);
    assert.deepEqual(f.state(), before);
  });
});
