import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { createPushService } from '../../src/app/services.ts';
import { LifecycleRunner } from '../../src/lifecycle/runner.ts';
import { deviceChannel } from '../../src/store/types.ts';
import { enrollTestDevice } from '../helpers/device.ts';
import { openSigned, plistlibPlain } from '../helpers/profile.ts';
import { newRequester } from '../helpers/scep.ts';
import { mdmFixture } from '../mdm/fixture.ts';

const DAY = 86_400_000;
const TOPIC = 'com.apple.mgmt.External.5f3c0d1e-test';

test('an identity is renewed before it expires: InstallProfile of a fresh profile, SCEP, Authenticate, binding moves, queue kept', async (t) => {
  const f = await mdmFixture({ 'identity-days': '30' });
  t.after(() => f.close());
  const runner = new LifecycleRunner({ app: f.app, pki: f.pki, profiles: f.profiles, push: createPushService(f.app) });

  // Enrollment as a device does it: the profile's SCEP payload (challenge, CN = enrollment reference), then Authenticate.
  const original = await f.profiles.enrollment({ identity: 'scep', createdBy: 'test', sign: false });
  const originalPlist = plistlibPlain(original.body);
  const scepPayload = originalPlist.PayloadContent[2].PayloadContent;
  const udid = 'RENEW-ME-1';
  const device = await enrollTestDevice(f, udid, newRequester(), { challenge: scepPayload.Challenge, cn: original.record.enrollmentRef! });
  assert.equal(
    (await f.speak(device, { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: 'x', Model: 'm', ModelName: 'n' })).statusCode,
    200,
  );
  const unrelated = (await f.admin('POST', '/v1/commands', { devices: [udid], command: { RequestType: 'SecurityInfo' } })).json()
    .command_uuid as string;

  assert.deepEqual((await runner.run()).done, [], 'nothing is due on day 0');
  f.advance(22 * DAY); // 8 of 30 days left: inside the 40% window
  const report = await runner.run();
  assert.deepEqual(report.done, [`renew-identity ${udid}`]);
  assert.deepEqual((await runner.run()).done, [], 'a renewal in flight is not started twice');

  // The device wakes, gets the renewal profile first (priority), installs it: same identifier, new challenge.
  const offered = plistlibPlain((await f.speak(device, { Status: 'Idle' })).rawPayload);
  assert.equal(offered.Command.RequestType, 'InstallProfile');
  const renewal = openSigned(Buffer.from(offered.Command.Payload, 'base64'), f.root, f.now()).profile;
  assert.equal(renewal.PayloadIdentifier, originalPlist.PayloadIdentifier);
  assert.notEqual(renewal.PayloadUUID, originalPlist.PayloadUUID);
  const mdmPayload = (p: any) => p.PayloadContent.find((x: any) => x.PayloadType === 'com.apple.mdm');
  assert.equal(mdmPayload(renewal).ServerURL, mdmPayload(originalPlist).ServerURL);
  assert.equal(mdmPayload(renewal).Topic, mdmPayload(originalPlist).Topic);
  const renewalScep = renewal.PayloadContent.find((x: any) => x.PayloadType === 'com.apple.security.scep').PayloadContent;
  assert.notEqual(renewalScep.Challenge, scepPayload.Challenge);

  const renewed = await enrollTestDevice(f, udid, newRequester(), { challenge: renewalScep.Challenge, cn: original.record.enrollmentRef! });
  assert.equal((await f.speak(device, { Status: 'Acknowledged', CommandUUID: offered.CommandUUID })).statusCode, 200);
  assert.equal(
    (await f.speak(renewed, { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: 'x', Model: 'm', ModelName: 'n' })).statusCode,
    200,
  );
  assert.equal((await f.app.store.getEnrollment(udid))?.renewalStartedAt, null, 'the renewal is complete');
  const next = plistlibPlain((await f.speak(renewed, { Status: 'Idle' })).rawPayload);
  assert.equal(next.CommandUUID, unrelated, 'the queue survived the renewal');
  assert.equal((await f.speak(device, { Status: 'Idle' })).statusCode, 403, 'the old identity is retired once the new one is seen');
  assert.deepEqual((await runner.run()).done, [], 'nothing is due after the renewal');
  const audit = await f.app.store.listAudit({ action: 'lifecycle.renewal-started' });
  assert.equal(audit.length, 1);
});

test('the TLS certificate is re-issued in its window and handed to the listener', async (t) => {
  const f = await mdmFixture({ 'tls-days': '20', 'tls-renew-before-days': '0' });
  t.after(() => f.close());
  const swapped: string[] = [];
  const runner = new LifecycleRunner({
    app: f.app,
    pki: f.pki,
    profiles: f.profiles,
    push: createPushService(f.app),
    onTlsChange: (pki) => swapped.push(pki.tls.certificate.id),
  });
  const before = f.pki.tls.certificate;
  f.advance(16 * DAY);
  const report = await runner.run();
  assert.deepEqual(report.done, ['reissued tls']);
  assert.notEqual(f.pki.tls.certificate.id, before.id);
  assert.deepEqual(swapped, [f.pki.tls.certificate.id]);
  assert.equal((await f.app.store.getCertificate(before.id))?.status, 'superseded');
  const [event] = await f.app.store.listAudit({ action: 'pki.tls-issued', limit: 1 });
  assert.match(event?.reason ?? '', /^lifecycle: the server TLS certificate has 4 days left/);
});

test('the SCEP RA is re-issued in its window at production lifetimes; GetCACert hands out the new one and SCEP works', async (t) => {
  const f = await mdmFixture();
  t.after(() => f.close());
  const runner = new LifecycleRunner({ app: f.app, pki: f.pki, profiles: f.profiles, push: createPushService(f.app) });
  const before = f.pki.scepRa.certificate;
  f.advance(500 * DAY); // 230 of 730 days left: not yet
  assert.ok(!(await runner.run()).done.includes('reissued scep-ra'));
  f.advance(60 * DAY); // 170 days left: inside the last quarter
  assert.ok((await runner.run()).done.includes('reissued scep-ra'));
  assert.notEqual(f.pki.scepRa.certificate.id, before.id);
  assert.equal((await f.app.store.getCertificate(before.id))?.status, 'superseded');
  const caCert = await f.server.inject({ method: 'GET', url: '/scep?operation=GetCACert' });
  assert.ok(caCert.rawPayload.includes(f.pki.scepRa.certificate.der), 'GetCACert serves the new RA');
  assert.ok(!caCert.rawPayload.includes(before.der), 'and no longer the old one');
  await enrollTestDevice(f, 'AFTER-RA-RENEWAL');
  const [event] = await f.app.store.listAudit({ action: 'pki.scep-ra-issued', limit: 1 });
  assert.match(event?.reason ?? '', /^lifecycle: the SCEP RA certificate has 170 days left/);
});

test('intermediate rollover: a new intermediate issues, the leaves follow, identities from the old one still work', async (t) => {
  const f = await mdmFixture({ 'intermediate-days': '10', 'identity-days': '5' });
  t.after(() => f.close());
  const runner = new LifecycleRunner({ app: f.app, pki: f.pki, profiles: f.profiles, push: createPushService(f.app) });
  const old = await enrollTestDevice(f);
  assert.equal(
    (await f.speak(old, { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: 'x', Model: 'm', ModelName: 'n' })).statusCode,
    200,
  );
  const before = f.pki.authority.intermediate;
  f.advance(3.5 * DAY); // 6.5 of 10 days left: less than 1.4 identity lifetimes (7)
  const report = await runner.run();
  assert.ok(report.done.includes('rolled over the intermediate'), JSON.stringify(report));
  assert.notEqual(f.pki.authority.intermediate.id, before.id);
  assert.equal(f.pki.tls.certificate.issuerId, f.pki.authority.intermediate.id, 'TLS follows the new intermediate');
  assert.equal(f.pki.scepRa.certificate.issuerId, f.pki.authority.intermediate.id, 'so does the SCEP RA');
  assert.equal((await f.app.store.getCertificate(before.id))?.status, 'active', 'the old intermediate stays for its identities');
  // The identity's renewal, due in the same run, was made after the rollover: its CAFingerprint names the intermediate
  // GetCACert now hands out, so the device's SCEP client accepts the CA it fetches.
  assert.ok(report.done.includes(`renew-identity ${old.udid}`), JSON.stringify(report));
  const offered = await f.speak(old, { Status: 'Idle' });
  assert.equal(offered.statusCode, 200);
  const renewal = openSigned(Buffer.from(plistlibPlain(offered.rawPayload).Command.Payload, 'base64'), f.root, f.now()).profile;
  const scep = renewal.PayloadContent.find((p: any) => p.PayloadType === 'com.apple.security.scep').PayloadContent;
  const sha1 = (der: Buffer) => createHash('sha1').update(der).digest('hex');
  assert.equal(Buffer.from(scep.CAFingerprint.$data, 'base64').toString('hex'), sha1(f.pki.authority.intermediate.der));
  const caCert = await f.server.inject({ method: 'GET', url: '/scep?operation=GetCACert' });
  assert.ok(caCert.rawPayload.includes(f.pki.authority.intermediate.der), 'GetCACert serves that intermediate');
  // The old identity still authenticates; a new enrollment gets a certificate from the new intermediate.
  const fresh = await enrollTestDevice(f);
  const issued = await f.app.store.getCertificateByFingerprint(
    (await import('node:crypto')).createHash('sha256').update(fresh.certDer).digest('hex'),
  );
  assert.equal(issued?.issuerId, f.pki.authority.intermediate.id);
  assert.equal(
    (await f.speak(fresh, { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: 'y', Model: 'm', ModelName: 'n' })).statusCode,
    200,
  );
  assert.ok(!(await runner.run()).done.includes('rolled over the intermediate'), 'one rollover, not one per run');
});

test('a renewal profile still undelivered when the intermediate rolls over is withdrawn and sent again from the new chain', async (t) => {
  const f = await mdmFixture({ 'intermediate-days': '10', 'identity-days': '4.5' });
  t.after(() => f.close());
  const runner = new LifecycleRunner({ app: f.app, pki: f.pki, profiles: f.profiles, push: createPushService(f.app) });
  const device = await enrollTestDevice(f);
  assert.equal(
    (await f.speak(device, { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: 'x', Model: 'm', ModelName: 'n' })).statusCode,
    200,
  );
  f.advance(3 * DAY); // 1.5 of 4.5 days left: the renewal goes out; the intermediate (7 of 10 left, above 6.3) is not due yet
  assert.deepEqual((await runner.run()).done, [`renew-identity ${device.udid}`]);
  const first = (await f.app.store.getEnrollment(device.udid))!.renewalCommandUuid!;
  f.advance(1 * DAY); // the device stayed away; the intermediate (6 left) is due now
  const report = await runner.run();
  assert.ok(report.done.includes('rolled over the intermediate'), JSON.stringify(report));
  assert.ok(report.done.includes('withdrew 1 renewal profile made before the chain changed'), JSON.stringify(report));
  assert.ok(report.done.includes(`renew-identity ${device.udid}`), JSON.stringify(report));
  const second = (await f.app.store.getEnrollment(device.udid))!.renewalCommandUuid!;
  assert.notEqual(second, first);
  // The device comes back: it is offered the new profile only, whose CAFingerprint is the intermediate GetCACert serves.
  const offered = plistlibPlain((await f.speak(device, { Status: 'Idle' })).rawPayload);
  assert.equal(offered.CommandUUID, second);
  const renewal = openSigned(Buffer.from(offered.Command.Payload, 'base64'), f.root, f.now()).profile;
  const scep = renewal.PayloadContent.find((p: any) => p.PayloadType === 'com.apple.security.scep').PayloadContent;
  const fingerprint = createHash('sha1').update(f.pki.authority.intermediate.der).digest('hex');
  assert.equal(Buffer.from(scep.CAFingerprint.$data, 'base64').toString('hex'), fingerprint);
  const queue = await f.app.store.listQueue(deviceChannel(device.udid));
  assert.equal(queue.find((q) => q.commandUuid === first)?.status, 'expired', 'the stale profile is delivered to no one');
  assert.equal((await f.app.store.getCommand(first))?.body.length, 0);
});

test('root rollover: a successor root is delivered to every device, and the chain switches once all have it', async (t) => {
  const f = await mdmFixture({ 'root-days': '200', 'intermediate-days': '200', 'identity-days': '60' });
  t.after(() => f.close());
  const runner = new LifecycleRunner({ app: f.app, pki: f.pki, profiles: f.profiles, push: createPushService(f.app) });
  const oldRoot = f.pki.authority.root;
  f.advance(50 * DAY);
  // A device enrolled on day 50 through a profile: it has the old root only.
  const original = await f.profiles.enrollment({ identity: 'scep', createdBy: 'test', sign: false });
  const challenge = plistlibPlain(original.body).PayloadContent[2].PayloadContent.Challenge;
  const device = await enrollTestDevice(f, 'ROOT-ROLL-1', newRequester(), { challenge, cn: original.record.enrollmentRef! });
  assert.equal(
    (await f.speak(device, { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: 'x', Model: 'm', ModelName: 'n' })).statusCode,
    200,
  );
  assert.deepEqual(
    await f.app.store.installedAnchors('ROOT-ROLL-1', (await f.app.store.getEnrollment('ROOT-ROLL-1'))!.identityCertificateId),
    [oldRoot.id],
  );

  f.advance(27 * DAY); // day 77: 123 of 200 days left, inside the successor's window (124 days)
  assert.ok((await runner.run()).done.includes('created a successor root'));
  assert.equal(f.pki.authority.root.id, oldRoot.id, 'the successor issues nothing yet');
  const delivery = await runner.run();
  assert.deepEqual(delivery.done, ['deliver-root ROOT-ROLL-1']);
  assert.deepEqual((await runner.run()).done, [], 'no second delivery while the first waits, and no switch yet');

  // The device installs the trust profile: both roots, the successor among them.
  const offered = plistlibPlain((await f.speak(device, { Status: 'Idle' })).rawPayload);
  const trust = openSigned(Buffer.from(offered.Command.Payload, 'base64'), f.root, f.now()).profile;
  assert.deepEqual(
    trust.PayloadContent.map((p: any) => p.PayloadType),
    ['com.apple.security.root', 'com.apple.security.root'],
  );
  assert.equal((await f.speak(device, { Status: 'Acknowledged', CommandUUID: offered.CommandUUID })).statusCode, 200);

  const switched = await runner.run();
  assert.ok(
    switched.done.some((d) => d.startsWith('switched to root') && !d.includes('lost')),
    JSON.stringify(switched),
  );
  assert.notEqual(f.pki.authority.root.id, oldRoot.id, 'the issuing chain ends in the successor now');
  const tlsIntermediate = await f.app.store.getCertificate(f.pki.tls.certificate.issuerId!);
  assert.equal(tlsIntermediate?.issuerId, f.pki.authority.root.id, 'and so does the TLS chain');
  assert.equal((await f.speak(device, { Status: 'Idle' })).statusCode, 200, 'the identity from the old chain keeps working');
  assert.ok(!(await runner.run()).done.some((d) => d.startsWith('switched')), 'one switch');
});

test('root rollover with ServerURL pinning: the successor reaches devices inside a new enrollment profile, pinned', async (t) => {
  const f = await mdmFixture({ 'root-days': '200', 'intermediate-days': '200', 'identity-days': '60', 'pin-server-url': 'true' });
  t.after(() => f.close());
  const runner = new LifecycleRunner({ app: f.app, pki: f.pki, profiles: f.profiles, push: createPushService(f.app) });
  const oldRoot = f.pki.authority.root;
  f.advance(50 * DAY);
  const original = await f.profiles.enrollment({ identity: 'scep', createdBy: 'test', sign: false });
  const challenge = plistlibPlain(original.body).PayloadContent[2].PayloadContent.Challenge;
  const udid = 'PINNED-1';
  const device = await enrollTestDevice(f, udid, newRequester(), { challenge, cn: original.record.enrollmentRef! });
  const authenticate = { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: 'x', Model: 'm', ModelName: 'n' };
  assert.equal((await f.speak(device, authenticate)).statusCode, 200);

  f.advance(27 * DAY); // day 77: 123 of 200 days left, inside the successor's window (124 days)
  assert.ok((await runner.run()).done.includes('created a successor root'));
  const successor = (await f.app.store.listCertificates({ role: 'root', status: 'active' })).find((r) => r.id !== oldRoot.id)!;
  assert.deepEqual((await runner.run()).done, [`deliver-root ${udid}`]);

  // Not a trust profile: an enrollment profile with both roots, both pinned for ServerURL.
  const offered = plistlibPlain((await f.speak(device, { Status: 'Idle' })).rawPayload);
  const profile = openSigned(Buffer.from(offered.Command.Payload, 'base64'), f.root, f.now()).profile;
  const roots = profile.PayloadContent.filter((p: any) => p.PayloadType === 'com.apple.security.root');
  assert.equal(roots.length, 2);
  const mdm = profile.PayloadContent.find((p: any) => p.PayloadType === 'com.apple.mdm');
  assert.deepEqual([...mdm.ServerURLPinningCertificateUUIDs].sort(), roots.map((r: any) => r.PayloadUUID).sort());
  const scep = profile.PayloadContent.find((p: any) => p.PayloadType === 'com.apple.security.scep').PayloadContent;

  // Until the device has installed it, the switch waits; then the new identity carries the successor, pinned.
  assert.ok(!(await runner.run()).done.some((d) => d.startsWith('switched')));
  const renewed = await enrollTestDevice(f, udid, newRequester(), { challenge: scep.Challenge, cn: original.record.enrollmentRef! });
  assert.equal((await f.speak(device, { Status: 'Acknowledged', CommandUUID: offered.CommandUUID })).statusCode, 200);
  assert.equal((await f.speak(renewed, authenticate)).statusCode, 200);
  const [fact] = await f.app.store.listEnrolledDevices();
  assert.deepEqual(fact!.profileAnchors, [oldRoot.id, successor.id].sort());
  const switched = await runner.run();
  assert.ok(
    switched.done.some((d) => d.startsWith('switched to root') && !d.includes('lost')),
    JSON.stringify(switched),
  );
  assert.equal((await f.speak(renewed, { Status: 'Idle' })).statusCode, 200);
});

test('a device whose renewal does not complete is announced at risk once, on the webhook, before it is lost', async (t) => {
  const { createServer } = await import('node:http');
  const { createHmac } = await import('node:crypto');
  const events: { body: string; signature: string }[] = [];
  const hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      events.push({ body, signature: String(req.headers['x-hmac-signature']) });
      res.end();
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  t.after(() => hook.close());
  const url = `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`;
  const f = await mdmFixture({ 'identity-days': '30', 'webhook-url': url, 'webhook-secret': 'k' });
  t.after(() => f.close());
  const { webhookSender } = await import('../../src/app/services.ts');
  const webhook = webhookSender(f.app)!;
  const runner = new LifecycleRunner({ app: f.app, pki: f.pki, profiles: f.profiles, push: createPushService(f.app), webhook });
  const silent = await enrollTestDevice(f, 'SILENT-1');
  assert.equal(
    (await f.speak(silent, { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: 'x', Model: 'm', ModelName: 'n' })).statusCode,
    200,
  );
  f.advance(22 * DAY);
  assert.deepEqual((await runner.run()).done, ['renew-identity SILENT-1']); // the device never comes to fetch it
  f.advance(7 * DAY); // renewal in flight for 7 of 30 days (over 20%): overdue, 1 day before the loss
  const report = await runner.run();
  assert.ok(
    report.attention.some((a) => a.startsWith('device-at-risk SILENT-1')),
    JSON.stringify(report),
  );
  await runner.run();
  await webhook.flush();
  const atRisk = events.map((e) => ({ ...e, json: JSON.parse(e.body) })).filter((e) => e.json.topic === 'lifecycle.AtRisk');
  assert.equal(atRisk.length, 1, 'announced once, not every run');
  assert.equal(atRisk[0]!.json.at_risk_event.udid, 'SILENT-1');
  assert.ok(new Date(atRisk[0]!.json.at_risk_event.lost_at) > f.now(), 'before it is lost');
  assert.equal(atRisk[0]!.signature, createHmac('sha256', 'k').update(atRisk[0]!.body).digest('base64'));
});
