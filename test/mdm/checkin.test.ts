import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { checkIn, enrollTestDevice, mdmSignature, plistBody, type TestDevice } from '../helpers/device.ts';
import { plistlibPlain } from '../helpers/profile.ts';
import { newRequester } from '../helpers/scep.ts';
import { CHECKIN, mdmFixture, SERVER } from './fixture.ts';

const TOPIC = 'com.apple.mgmt.External.5f3c0d1e-test';

function authenticate(device: TestDevice) {
  return {
    MessageType: 'Authenticate',
    Topic: TOPIC,
    DeviceName: 'Test iPhone',
    Model: 'iPhone15,2',
    ModelName: 'iPhone',
    OSVersion: '18.1',
    SerialNumber: 'F00TEST',
  };
}

function tokenUpdate() {
  return {
    MessageType: 'TokenUpdate',
    Topic: TOPIC,
    Token: { $data: Buffer.alloc(32, 9).toString('base64') },
    PushMagic: 'push-magic-1',
    UnlockToken: { $data: 'AQID' },
    NotOnConsole: false,
  };
}

describe('MDM check-in and commands (Mdm-Signature identity)', () => {
  let f: Awaited<ReturnType<typeof mdmFixture>>;
  let device: TestDevice;
  const statuses: number[] = [];
  before(async () => {
    f = await mdmFixture();
    device = await enrollTestDevice(f);
  });
  after(async () => {
    assert.ok(!statuses.includes(401), 'no device request was ever answered 401');
    await f.close();
  });
  const speak = async (...args: Parameters<typeof f.speak>) => {
    const response = await f.speak(...args);
    statuses.push(response.statusCode);
    return response;
  };

  test('Authenticate in every signature form binds the certificate to the UDID', async () => {
    for (const form of ['apple', 'detached', 'attributes'] as const) {
      const response = await speak(device, authenticate(device), { form });
      assert.equal(response.statusCode, 200, `${form}: ${response.body}`);
    }
    const enrollment = await f.app.store.getEnrollment(device.udid);
    assert.equal(enrollment?.status, 'enrolled');
    assert.equal(enrollment?.info.DeviceName, 'Test iPhone');
    const identity = await f.app.store.getCertificate(enrollment!.identityCertificateId!);
    assert.deepEqual(identity?.der, device.certDer);
    assert.equal(await f.app.store.getBinding(identity!.id), device.udid);
    const [event] = await f.app.store.listAudit({ action: 'mdm.authenticate', limit: 3 });
    assert.equal(event?.reason, 're-authenticated');
  });

  test('TokenUpdate stores the push token and magic', async () => {
    const response = await speak(device, tokenUpdate());
    assert.equal(response.statusCode, 200, response.body);
    const enrollment = await f.app.store.getEnrollment(device.udid);
    assert.deepEqual(enrollment?.pushToken, Buffer.alloc(32, 9));
    assert.equal(enrollment?.pushMagic, 'push-magic-1');
  });

  test('commands: priority then FIFO, results stored raw, NotNow re-offered only in a later session', async () => {
    const enqueue = async (command: unknown, priority = 0) => {
      const r = await f.admin('POST', '/v1/commands', { devices: [device.udid], command, priority });
      assert.equal(r.statusCode, 201, r.body);
      return r.json().command_uuid as string;
    };
    const low = await enqueue({ RequestType: 'ProfileList' });
    const high = await enqueue({ RequestType: 'DeviceInformation' }, 10);
    const later = await enqueue({ RequestType: 'CertificateList' });

    const first = await speak(device, { Status: 'Idle' });
    assert.equal(first.statusCode, 200);
    const offered = plistlibPlain(first.rawPayload);
    assert.equal(offered.CommandUUID, high);
    assert.equal(offered.Command.RequestType, 'DeviceInformation');

    // NotNow: the next command comes, and the NotNow one is not offered again in this session.
    const afterNotNow = plistlibPlain((await speak(device, { Status: 'NotNow', CommandUUID: high })).rawPayload);
    assert.equal(afterNotNow.CommandUUID, low);
    const afterAck = plistlibPlain((await speak(device, { Status: 'Acknowledged', CommandUUID: low, ProfileList: [] })).rawPayload);
    assert.equal(afterAck.CommandUUID, later);
    const end = await speak(device, {
      Status: 'Error',
      CommandUUID: later,
      ErrorChain: [{ ErrorCode: 12021, ErrorDomain: 'MCInstallationErrorDomain' }],
    });
    assert.equal(end.statusCode, 200);
    assert.equal(end.rawPayload.length, 0, 'nothing left for this session');

    // A new session (Idle) offers the NotNow command again.
    const again = plistlibPlain((await speak(device, { Status: 'Idle' })).rawPayload);
    assert.equal(again.CommandUUID, high);
    await speak(device, { Status: 'Acknowledged', CommandUUID: high, QueryResponses: { DeviceName: 'Test iPhone' } });

    const queue = (await f.admin('GET', `/v1/devices/${device.udid}/commands`)).json().commands as {
      command_uuid: string;
      status: string;
      result: string;
    }[];
    const byUuid = Object.fromEntries(queue.map((q) => [q.command_uuid, q]));
    assert.equal(byUuid[high]!.status, 'acknowledged');
    assert.match(byUuid[high]!.result, /<key>QueryResponses<\/key>/, 'the raw report is stored');
    assert.equal(byUuid[low]!.status, 'acknowledged');
    assert.equal(byUuid[later]!.status, 'error');
    assert.match(byUuid[later]!.result, /MCInstallationErrorDomain/);
  });

  test('NanoMDM-compatible PUT /v1/enqueue takes a raw plist command for several ids', async () => {
    const other = await enrollTestDevice(f);
    assert.equal((await speak(other, authenticate(other))).statusCode, 200);
    const body = plistBody({ CommandUUID: 'nano-1', Command: { RequestType: 'SecurityInfo' } });
    const r = await f.admin('PUT', `/v1/enqueue/${device.udid},${other.udid}`, body, { 'content-type': 'application/xml' });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().command_uuid, 'nano-1');
    for (const d of [device, other]) {
      assert.equal(plistlibPlain((await speak(d, { Status: 'Idle' })).rawPayload).CommandUUID, 'nano-1');
      assert.equal((await speak(d, { Status: 'Acknowledged', CommandUUID: 'nano-1' })).rawPayload.length, 0);
    }
    const unknown = await f.admin('PUT', '/v1/enqueue/NO-SUCH-DEVICE', plistBody({ Command: { RequestType: 'SecurityInfo' } }), {
      'content-type': 'application/xml',
    });
    assert.equal(unknown.statusCode, 404);
    const devices = (await f.admin('GET', '/v1/devices')).json().devices as {
      id: string;
      identity: { fingerprintSha256: string; daysLeft: number };
    }[];
    const listed = devices.find((d) => d.id === device.udid)!;
    assert.ok(listed.identity.daysLeft > 300);
  });

  test('renewal: the new certificate binds on Authenticate, the queue survives, the old one retires once the new is seen', async () => {
    const queued = (await f.admin('POST', '/v1/commands', { devices: [device.udid], command: { RequestType: 'ProfileList' } })).json()
      .command_uuid as string;
    // A renewal profile's challenge is minted for this enrollment, so its identity may take the binding over.
    const { challenge } = await f.challenge(3_600_000, undefined, device.udid);
    const renewed = await enrollTestDevice(f, device.udid, undefined, { challenge, cn: device.udid });
    assert.equal((await speak(renewed, authenticate(renewed))).statusCode, 200);
    const enrollment = await f.app.store.getEnrollment(device.udid);
    assert.ok(enrollment?.previousIdentityCertificateId, 'the old identity is kept as previous');
    // The old certificate still works until the new one is seen on a later message.
    assert.equal((await speak(device, tokenUpdate())).statusCode, 200);
    const offered = plistlibPlain((await speak(renewed, { Status: 'Idle' })).rawPayload);
    assert.equal(offered.CommandUUID, queued, 'the renewal did not drop the queue');
    assert.equal((await speak(renewed, { Status: 'Acknowledged', CommandUUID: queued })).statusCode, 200);
    const old = (await f.app.store.getCertificateByFingerprint(require_fp(device.certDer)))!;
    assert.equal(old.status, 'superseded');
    const refused = await speak(device, { Status: 'Idle' });
    assert.equal(refused.statusCode, 403);
    device = renewed;
  });

  test('a user channel rides on the device identity and has its own queue', async () => {
    const user = { UserID: 'A1B2-USER', UserShortName: 'ann', UserLongName: 'Ann Example' };
    assert.equal(
      (await speak(device, { MessageType: 'TokenUpdate', Topic: TOPIC, Token: { $data: 'AAEC' }, PushMagic: 'user-magic', ...user }))
        .statusCode,
      200,
    );
    const queued = await f.admin('POST', '/v1/commands', {
      devices: [`${device.udid}:A1B2-USER`],
      command: { RequestType: 'ProfileList' },
    });
    assert.equal(queued.statusCode, 201, queued.body);
    assert.equal(plistlibPlain((await speak(device, { Status: 'Idle', ...user })).rawPayload).CommandUUID, queued.json().command_uuid);
    assert.equal((await speak(device, { Status: 'Idle' })).rawPayload.length, 0, "the device channel does not see the user's command");
    await speak(device, { Status: 'Acknowledged', CommandUUID: queued.json().command_uuid, ...user });
  });

  test('UserAuthenticate is declined with 410; DeclarativeManagement and GetToken are not supported (501)', async () => {
    assert.equal((await speak(device, { MessageType: 'UserAuthenticate', UserID: 'U1', DigestResponse: 'x' })).statusCode, 410);
    assert.equal((await speak(device, { MessageType: 'GetToken', TokenServiceType: 'com.apple.maid' })).statusCode, 501);
    assert.equal((await speak(device, { MessageType: 'DeclarativeManagement', Endpoint: 'tokens' })).statusCode, 501);
  });

  test('bootstrap token escrow round-trips', async () => {
    assert.equal((await speak(device, { MessageType: 'SetBootstrapToken', BootstrapToken: { $data: 'c2VjcmV0' } })).statusCode, 200);
    const got = plistlibPlain((await speak(device, { MessageType: 'GetBootstrapToken' })).rawPayload);
    assert.equal(got.BootstrapToken, 'c2VjcmV0');
  });

  test('CheckOut, then a fresh enrollment starts with a clean queue', async () => {
    await f.admin('POST', '/v1/commands', { devices: [device.udid], command: { RequestType: 'SecurityInfo' } });
    assert.equal((await speak(device, { MessageType: 'CheckOut', Topic: TOPIC })).statusCode, 200);
    assert.equal((await f.app.store.getEnrollment(device.udid))?.status, 'checked-out');
    assert.equal((await speak(device, { Status: 'Idle' })).statusCode, 403, 'a checked-out enrollment is not served');
    assert.equal((await speak(device, authenticate(device))).statusCode, 200);
    assert.deepEqual(await f.app.store.listQueue({ enrollmentId: device.udid, userId: null }), []);
    const idle = await speak(device, { Status: 'Idle' });
    assert.equal(idle.rawPayload.length, 0);
  });

  describe('refusals leave the stored state unchanged and are audited', () => {
    let victim: TestDevice;
    before(async () => {
      victim = await enrollTestDevice(f);
      assert.equal((await speak(victim, authenticate(victim))).statusCode, 200);
      await f.admin('POST', '/v1/commands', { devices: [victim.udid], command: { RequestType: 'ProfileList' } });
    });

    async function refused(name: string, request: () => Promise<{ statusCode: number }>, status: number, reason: RegExp) {
      const before = f.state();
      const response = await request();
      statuses.push(response.statusCode);
      assert.equal(response.statusCode, status, name);
      assert.deepEqual(f.state(), before, `${name}: bindings, queue, results and certificates are unchanged`);
      const [event] = await f.app.store.listAudit({ limit: 1 });
      assert.equal(event?.outcome, 'denied', name);
      assert.match(event?.reason ?? '', reason, name);
    }

    const signedBy = (d: TestDevice, body: Buffer, form: 'apple' | 'attributes' = 'apple') => ({
      'content-type': CHECKIN,
      'mdm-signature': mdmSignature(body, d, form),
    });

    test('malformed and binary plists get 400', async () => {
      const garbage = Buffer.from('<plist><dict><key>UDID</key><string>x</dict></plist>');
      await refused('malformed', () => f.send(garbage, signedBy(victim, garbage)), 400, /malformed property list/);
      const binary = Buffer.concat([Buffer.from('bplist00'), Buffer.alloc(40, 1)]);
      await refused('binary', () => f.send(binary, signedBy(victim, binary)), 400, /binary property lists/);
    });

    test('wrong content type gets 415, an oversized body 413', async () => {
      const body = checkIn(victim, { Status: 'Idle' });
      await refused(
        'content type',
        () => f.send(body, { ...signedBy(victim, body), 'content-type': 'application/json' }),
        415,
        /not an MDM message type/,
      );
      const huge = Buffer.concat([
        body.subarray(0, body.length - 20),
        Buffer.alloc(3 * 1024 * 1024, 0x20),
        body.subarray(body.length - 20),
      ]);
      await refused('oversized', () => f.send(huge, { 'content-type': SERVER }, { path: '/mdm/server' }), 413, /too large/i);
    });

    test('missing, truncated and foreign-body signatures', async () => {
      const body = checkIn(victim, { Status: 'Idle' });
      await refused('missing', () => f.send(body, { 'content-type': SERVER }, { path: '/mdm/server' }), 403, /no client identity/);
      const sig = mdmSignature(body, victim);
      await refused(
        'truncated',
        () => f.send(body, { 'content-type': SERVER, 'mdm-signature': sig.slice(0, sig.length / 2) }, { path: '/mdm/server' }),
        400,
        /Mdm-Signature/,
      );
      const other = checkIn(victim, { Status: 'Idle', Extra: 'x' });
      await refused(
        'other body',
        () => f.send(body, { 'content-type': SERVER, 'mdm-signature': mdmSignature(other, victim, 'attributes') }, { path: '/mdm/server' }),
        403,
        /messageDigest does not match/,
      );
      await refused(
        'other body, no attributes',
        () => f.send(body, { 'content-type': SERVER, 'mdm-signature': mdmSignature(other, victim, 'detached') }, { path: '/mdm/server' }),
        403,
        /does not verify/,
      );
    });

    test('a certificate from another CA', async () => {
      const stranger = newRequester();
      const body = checkIn(victim, { Status: 'Idle' });
      const foreign = { certPem: stranger.selfSignedPem, requester: stranger };
      await refused(
        'foreign CA',
        () => f.send(body, { 'content-type': SERVER, 'mdm-signature': mdmSignature(body, foreign) }, { path: '/mdm/server' }),
        403,
        /does not chain to certmdm's CA/,
      );
    });

    test('a certificate of certmdm that was never issued to an enrollment (the SCEP RA)', async () => {
      const { toPem } = await import('../../src/pki/certificate.ts');
      const { writeFileSync } = await import('node:fs');
      const { join } = await import('node:path');
      const keyPem = join(f.dir, 'ra.key');
      writeFileSync(keyPem, f.pki.scepRa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
      const ra = { certPem: join(f.dir, 'ra-cert.pem'), requester: { keyPem } };
      writeFileSync(ra.certPem, toPem(f.pki.scepRa.certificate.der));
      const body = checkIn(victim, { Status: 'Idle' });
      await refused(
        'RA certificate',
        () => f.send(body, { 'content-type': SERVER, 'mdm-signature': mdmSignature(body, ra) }, { path: '/mdm/server' }),
        403,
        /never issued by certmdm to an enrollment/,
      );
    });

    test('a certificate bound to another UDID, for a check-in and for Authenticate', async () => {
      const body = plistBody({ UDID: victim.udid, Status: 'Idle' });
      await refused(
        'bound elsewhere',
        () => f.send(body, { 'content-type': SERVER, 'mdm-signature': mdmSignature(body, device) }, { path: '/mdm/server' }),
        403,
        /bound to another enrollment/,
      );
      const auth = plistBody({ UDID: victim.udid, ...authenticate(victim) });
      await refused('Authenticate as another', () => f.send(auth, signedBy(device, auth)), 403, /bound to another enrollment/);
    });

    test('a proxy header from an untrusted address', async () => {
      const body = checkIn(victim, { Status: 'Idle' });
      const pem = encodeURIComponent(`-----BEGIN CERTIFICATE-----\n${victim.certDer.toString('base64')}\n-----END CERTIFICATE-----\n`);
      const proxied = await mdmFixture({ 'mdm-identity-sources': ['proxy', 'signature'], 'trusted-proxies': ['127.0.0.9'] });
      try {
        const response = await proxied.send(
          body,
          { 'content-type': SERVER, 'x-client-cert': pem },
          { path: '/mdm/server', remoteAddress: '127.0.0.1' },
        );
        assert.equal(response.statusCode, 403);
        const [event] = await proxied.app.store.listAudit({ limit: 1 });
        assert.match(event?.reason ?? '', /not a trusted proxy/);
      } finally {
        await proxied.close();
      }
    });

    test('an expired and a revoked certificate', async () => {
      const body = checkIn(victim, { Status: 'Idle' });
      const identity = (await f.app.store.getCertificateByFingerprint(require_fp(victim.certDer)))!;
      await f.app.store.setCertificateStatus(identity.id, 'active', 'revoked');
      await refused(
        'revoked',
        () => f.send(body, { 'content-type': SERVER, 'mdm-signature': mdmSignature(body, victim) }, { path: '/mdm/server' }),
        403,
        /revoked/,
      );
      await f.app.store.setCertificateStatus(identity.id, 'revoked', 'active');
      f.advance(400 * 86_400_000);
      await refused(
        'expired',
        () => f.send(body, { 'content-type': SERVER, 'mdm-signature': mdmSignature(body, victim) }, { path: '/mdm/server' }),
        403,
        /expired/,
      );
    });
  });
});

function require_fp(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}
