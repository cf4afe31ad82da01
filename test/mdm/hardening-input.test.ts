import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as cms from '../../src/pki/cms.ts';
import * as der from '../../src/pki/der.ts';
import { OID } from '../../src/pki/oids.ts';
import { checkIn, enrollTestDevice, mdmSignature, type TestDevice } from '../helpers/device.ts';
import { plistlibPlain } from '../helpers/profile.ts';
import { indefinite, MALFORMED_VALIDITY, withValidity } from '../helpers/malformed.ts';
import { CHECKIN, mdmFixture, SERVER } from './fixture.ts';

const TOPIC = 'com.apple.mgmt.External.5f3c0d1e-test';

describe('MDM: malformed input is a typed, audited refusal; valid UTF-8 with U+FFFD is accepted', () => {
  let f: Awaited<ReturnType<typeof mdmFixture>>;
  let device: TestDevice;
  before(async () => {
    f = await mdmFixture();
    device = await enrollTestDevice(f);
    assert.equal((await f.speak(device, { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: 'before' })).statusCode, 200);
  });
  after(() => f.close());

  async function refused(send: () => Promise<{ statusCode: number; body: string }>, status: number, reason: RegExp) {
    const before = f.state();
    const auditBefore = (await f.app.store.listAudit({ limit: 1000 })).length;
    const response = await send();
    assert.equal(response.statusCode, status, response.body);
    assert.deepEqual(f.state(), before, 'stored state unchanged');
    const events = await f.app.store.listAudit({ limit: 1000 });
    assert.equal(events.length, auditBefore + 1, 'exactly one audit row');
    assert.equal(events[0]?.outcome, 'denied');
    assert.match(events[0]?.reason ?? '', reason);
    assert.doesNotMatch(response.body, /TypeError|Cannot read|undefined|at .*\.ts/, 'no internals in the body');
    return events[0]!;
  }

  test('Mdm-Signature whose signer certificate has a malformed Validity, with a signingTime: 400, audited', async () => {
    const body = checkIn(device, { Status: 'Idle' });
    const certificate = withValidity(device.certDer, device.requester.key, MALFORMED_VALIDITY);
    const signature = cms.buildSignedData({
      content: body, // attached, exactly this body (accepted like the detached form)
      signerCertificate: device.certDer, // names the signer by issuer and serial, the same in the broken copy
      signerKey: device.requester.key,
      digest: 'sha256',
      certificates: [certificate],
      attributes: [cms.encodeAttribute(OID.signingTime, der.time(f.now()))],
    });
    const event = await refused(
      () => f.send(body, { 'content-type': SERVER, 'mdm-signature': signature.toString('base64') }, { path: '/mdm/server' }),
      400,
      /Mdm-Signature: .*UTCTime or GeneralizedTime/,
    );
    assert.equal(event.action, 'mdm.identity');
  });

  test('a 15 KB Mdm-Signature of nested indefinite elements: 400 after a bounded number of element reads', async () => {
    const body = checkIn(device, { Status: 'Idle' });
    const levels = 5500;
    const bomb = Buffer.concat([Buffer.alloc(levels * 2).fill(Buffer.from([0x24, 0x80])), Buffer.alloc(levels * 2, 0)]);
    const header = indefinite(der.TAG.SEQUENCE, der.oid(OID.signedData), indefinite(0xa0, bomb)).toString('base64');
    assert.ok(header.length > 14_000);
    const start = der.readerWork.elements;
    await refused(() => f.send(body, { 'content-type': SERVER, 'mdm-signature': header }, { path: '/mdm/server' }), 400, /Mdm-Signature/);
    assert.ok(der.readerWork.elements - start <= der.MAX_DEPTH + 8);
  });

  test('a check-in and a command report containing U+FFFD are accepted (valid UTF-8)', async () => {
    const named = await f.speak(device, { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: '\uFFFD' });
    assert.equal(named.statusCode, 200, named.body);
    assert.equal((await f.app.store.getEnrollment(device.udid))?.info.DeviceName, '\uFFFD');

    const queued = await f.admin('POST', '/v1/commands', { devices: [device.udid], command: { RequestType: 'DeviceInformation' } });
    assert.equal(queued.statusCode, 201, queued.body);
    const uuid = queued.json().command_uuid as string;
    assert.equal(plistlibPlain((await f.speak(device, { Status: 'Idle' })).rawPayload).CommandUUID, uuid);
    const report = await f.speak(device, {
      Status: 'Acknowledged',
      CommandUUID: uuid,
      QueryResponses: { DeviceName: 'caf\uFFFD \u00e9 \u{1F600}' },
    });
    assert.equal(report.statusCode, 200, report.body);
    const commands = (await f.admin('GET', `/v1/devices/${device.udid}/commands`)).json().commands as {
      command_uuid: string;
      status: string;
    }[];
    assert.equal(commands.find((c) => c.command_uuid === uuid)?.status, 'acknowledged');
    assert.equal((await f.speak(device, { Status: 'Idle' })).rawPayload.length, 0, 'the command is not sent again');
  });

  test('bytes that are not UTF-8 are refused with 400 (bad sequence, overlong, surrogate, truncated)', async () => {
    for (const [name, bytes] of [
      ['bad continuation', [0xc3, 0x28]],
      ['overlong slash', [0xc0, 0xaf]],
      ['UTF-16 surrogate', [0xed, 0xa0, 0x80]],
      ['truncated sequence', [0xe2, 0x82]],
      ['above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ] as const) {
      const text = checkIn(device, { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: 'MARK' });
      const at = text.indexOf('MARK');
      const body = Buffer.concat([text.subarray(0, at), Buffer.from(bytes), text.subarray(at + 4)]);
      await refused(
        () => f.send(body, { 'content-type': CHECKIN, 'mdm-signature': mdmSignature(body, device) }),
        400,
        /not valid UTF-8/,
      ).catch((err: Error) => assert.fail(`${name}: ${err.message}`));
    }
  });
});
