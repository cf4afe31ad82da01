import { deviceChannel } from '../../src/store/types.ts';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { enrollTestDevice, plistBody, type TestDevice } from '../helpers/device.ts';
import { plistlibPlain } from '../helpers/profile.ts';
import { mdmFixture } from './fixture.ts';

const TOPIC = 'com.apple.mgmt.External.5f3c0d1e-test';
const XML = { 'content-type': 'application/xml' };

describe('admin enqueue refusals: typed, audited, nothing stored, no internals', () => {
  let f: Awaited<ReturnType<typeof mdmFixture>>;
  let device: TestDevice;
  before(async () => {
    f = await mdmFixture();
    device = await enrollTestDevice(f, 'ENQ-1');
    const r = await f.speak(device, { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: 'x', Model: 'm', ModelName: 'n' });
    assert.equal(r.statusCode, 200);
  });
  after(() => f.close());

  const refusals = async () => (await f.app.store.listAudit({ action: 'command.enqueued' })).filter((e) => e.outcome === 'denied');

  test('a duplicate CommandUUID (NanoMDM PUT and JSON plist form) is 409, audited, and the first command stays as it was', async () => {
    const first = plistBody({ CommandUUID: 'DUP-UUID-1', Command: { RequestType: 'ProfileList' } });
    const queued = await f.admin('PUT', `/v1/enqueue/${device.udid}?nopush=1`, first, XML);
    assert.equal(queued.statusCode, 200, queued.body);
    const stored = f.state();
    const denied = (await refusals()).length;

    const second = plistBody({ CommandUUID: 'DUP-UUID-1', Command: { RequestType: 'EraseDevice', PIN: '123456' } });
    const nano = await f.admin('PUT', `/v1/enqueue/${device.udid}?nopush=1`, second, XML);
    assert.equal(nano.statusCode, 409);
    assert.deepEqual(nano.json(), { error: 'conflict', message: 'CommandUUID DUP-UUID-1 is already in use' });
    const json = await f.admin('POST', '/v1/commands', { devices: [device.udid], plist: second.toString('base64'), push: false });
    assert.equal(json.statusCode, 409);
    assert.deepEqual(json.json(), { error: 'conflict', message: 'CommandUUID DUP-UUID-1 is already in use' });
    assert.deepEqual(f.state(), stored, 'stored state unchanged');

    const audited = (await refusals()).slice(0, 2);
    assert.equal(audited.length, 2);
    assert.equal((await refusals()).length, denied + 2);
    for (const event of audited) {
      assert.equal(event.target, 'DUP-UUID-1');
      assert.equal(event.reason, 'CommandUUID DUP-UUID-1 is already in use');
      assert.equal(event.detail?.requestType, 'EraseDevice', 'audited with what was presented');
      assert.deepEqual(event.detail?.devices, [device.udid]);
    }
    // The device is offered the first command, not the one refused.
    const offered = plistlibPlain((await f.speak(device, { Status: 'Idle' })).rawPayload);
    assert.equal(offered.CommandUUID, 'DUP-UUID-1');
    assert.equal(offered.Command.RequestType, 'ProfileList');
    assert.equal((await f.speak(device, { Status: 'Acknowledged', CommandUUID: 'DUP-UUID-1' })).statusCode, 200);

    // Still refused once the first was answered and its body erased: the UUID names that command in its report.
    const again = await f.admin('PUT', `/v1/enqueue/${device.udid}?nopush=1`, second, XML);
    assert.equal(again.statusCode, 409);
  });

  test('one id named twice queues the command once', async () => {
    const r = await f.admin('POST', '/v1/commands', {
      devices: [device.udid, device.udid],
      command: { RequestType: 'SecurityInfo' },
      push: false,
    });
    assert.equal(r.statusCode, 201, r.body);
    assert.deepEqual(r.json().devices, [device.udid]);
    const uuid = r.json().command_uuid as string;
    assert.equal((await f.app.store.listQueue(deviceChannel(device.udid))).filter((q) => q.commandUuid === uuid).length, 1);
    const nano = await f.admin(
      'PUT',
      `/v1/enqueue/${device.udid},${device.udid}?nopush=1`,
      plistBody({ CommandUUID: 'TWICE-1', Command: { RequestType: 'SecurityInfo' } }),
      XML,
    );
    assert.equal(nano.statusCode, 200, nano.body);
    assert.equal((await f.app.store.listQueue(deviceChannel(device.udid))).filter((q) => q.commandUuid === 'TWICE-1').length, 1);
  });

  test('bad shapes and over-long values are 400, audited, store unchanged', async () => {
    const stored = f.state();
    const denied = (await refusals()).length;
    const cases: [string, 'POST' | 'PUT', string, unknown, Record<string, string>?][] = [
      ['non-string id', 'POST', '/v1/commands', { devices: [device.udid, 5], command: { RequestType: 'SecurityInfo' } }],
      ['over-long id', 'POST', '/v1/commands', { devices: ['X'.repeat(100_000)], command: { RequestType: 'SecurityInfo' } }],
      ['id with a control character', 'POST', '/v1/commands', { devices: [`${device.udid}\n`], command: { RequestType: 'SecurityInfo' } }],
      [
        'too many ids',
        'POST',
        '/v1/commands',
        { devices: Array.from({ length: 1001 }, (_, i) => `D${i}`), command: { RequestType: 'SecurityInfo' } },
      ],
      ['a JSON array body', 'POST', '/v1/commands', [device.udid]],
      [
        'an infinite real',
        'PUT',
        `/v1/enqueue/${device.udid}?nopush=1`,
        '<plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>Settings</string><key>X</key><real>1e999</real></dict></dict></plist>',
        XML,
      ],
    ];
    for (const [name, method, url, payload, headers] of cases) {
      const r = await f.admin(method, url, payload, headers);
      assert.equal(r.statusCode, 400, `${name}: ${r.body}`);
      assert.ok(['bad-request', 'bad-command'].includes(r.json().error), name);
      assert.ok(r.body.length < 300, `${name}: the presented value is not echoed back`);
    }
    assert.deepEqual(f.state(), stored);
    assert.equal((await refusals()).length, denied + cases.length);
  });

  test('GET /v1/audit: a negative or absurd limit is clamped, not read as "everything"', async () => {
    for (let i = 0; i < 3; i++) await f.admin('POST', '/v1/commands', { devices: [5] });
    for (const [limit, expected] of [
      ['-1', 1],
      ['2', 2],
      ['2.9', 2],
    ] as const) {
      const r = await f.admin('GET', `/v1/audit?limit=${limit}`);
      assert.equal(r.statusCode, 200);
      assert.equal(r.json().events.length, expected, `limit=${limit}`);
    }
  });

  test('malformed push certificate files are 400 and audited, never 500, and change nothing', async () => {
    const stored = f.state();
    const before = (await f.app.store.listAudit({ action: 'push.import', limit: 1000 })).length;
    const root = f.pki.authority.root.der;
    const files = [
      ...[8, 40, 200].map((n) => root.subarray(0, n)), // a certificate cut short
      Buffer.concat([Buffer.from('30820040', 'hex'), Buffer.alloc(64, 0xa0)]), // a sequence of truncated elements
      Buffer.concat([Buffer.from('3082004002010330', 'hex'), Buffer.alloc(60, 0x82)]), // PKCS#12-shaped, inner lengths too large
      Buffer.concat([Buffer.from('30820040020103308200', 'hex'), Buffer.alloc(60, 0x04)]),
    ];
    for (const [i, file] of files.entries()) {
      const r = await f.admin('POST', '/v1/push/certificate', { certificate: file.toString('base64'), password: 'x' });
      assert.equal(r.statusCode, 400, `file ${i}: ${r.body}`);
      assert.equal(r.json().error, 'bad-push-certificate');
    }
    assert.equal((await f.app.store.listAudit({ action: 'push.import', limit: 1000 })).length, before + files.length);
    assert.deepEqual(await f.app.store.listAudit({ action: 'admin.error' }), []);
    assert.deepEqual(f.state(), stored);
  });
});
