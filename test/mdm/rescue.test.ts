import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { createPushService } from '../../src/app/services.ts';
import { resolveConfig, renderOptionsHelp } from '../../src/config.ts';
import { DEFAULT_POLICY, type LifecycleState } from '../../src/lifecycle/model.ts';
import { plan } from '../../src/lifecycle/planner.ts';
import { LifecycleRunner } from '../../src/lifecycle/runner.ts';
import { completedRescues, RESCUE_AUDIT_ACTION } from '../../src/mdm/rescue.ts';
import { readCertificate } from '../../src/pki/certificate.ts';
import { deviceChannel } from '../../src/store/types.ts';
import { auditSince, lastAuditId } from '../helpers/audit.ts';
import { enrollTestDevice, type TestDevice } from '../helpers/device.ts';
import { mtlsServer, scepIdentity } from '../helpers/mtls.ts';
import { openSigned, plistlibPlain } from '../helpers/profile.ts';
import { newRequester } from '../helpers/scep.ts';
import { mdmFixture } from './fixture.ts';

const DAY = 86_400_000;
const TOPIC = 'com.apple.mgmt.External.5f3c0d1e-test';
const MTLS_TOPIC = 'com.apple.mgmt.External.rescue-test';

type Fixture = Awaited<ReturnType<typeof mdmFixture>>;

/** A webhook receiver collecting the events certmdm posts. */
async function webhookReceiver(t: { after: (fn: () => void) => void }) {
  const events: Record<string, any>[] = [];
  const hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const event = JSON.parse(body) as Record<string, any>;
      // A delivery retried after a timeout may arrive twice: one event per event_id, as a receiver should keep.
      if (!events.some((e) => e.event_id === event.event_id)) events.push(event);
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  t.after(() => hook.close());
  return { url: `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`, events };
}

const authenticate = { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: 'x', Model: 'm', ModelName: 'n' };

/** A device enrolled (SCEP identity, Authenticate, TokenUpdate) as a real one does it. */
const enrolled = (f: Fixture, udid: string): Promise<TestDevice> => f.enrolled(udid, TOPIC);

const fingerprint = (device: TestDevice) => createHash('sha256').update(device.certDer).digest('hex');

/** A refusal: 403 (never 401), audited with its named reason and the presented certificate, nothing stored changed. */
async function refused(f: Fixture, response: { statusCode: number; body: string }, reason: string, before: Record<string, string>) {
  assert.equal(response.statusCode, 403, response.body);
  assert.ok(!response.body.includes('unrecognized'), 'never com.apple.unrecognized.device');
  const [event] = await f.app.store.listAudit({ limit: 1 });
  assert.equal(event!.outcome, 'denied');
  assert.equal(event!.detail?.refusal, reason, response.body);
  assert.match(String(event!.detail?.certificate), /^[0-9a-f]{64}$/, 'audited with the presented certificate');
  assert.deepEqual(f.state(), before, `stored state unchanged after a refusal (${reason})`);
}

/** The renewal profile in a delivered InstallProfile: its SCEP payload's challenge. */
function renewalChallenge(f: Fixture, delivered: Buffer): { uuid: string; challenge: string } {
  const command = plistlibPlain(delivered);
  assert.equal(command.Command.RequestType, 'InstallProfile');
  const profile = openSigned(Buffer.from(command.Command.Payload, 'base64'), f.root, f.now()).profile;
  const scep = profile.PayloadContent.find((p: any) => p.PayloadType === 'com.apple.security.scep').PayloadContent;
  return { uuid: command.CommandUUID as string, challenge: scep.Challenge as string };
}

test('an identity expired within the grace gets its renewal profile and nothing else; the new identity resumes service', async (t) => {
  const hook = await webhookReceiver(t);
  const f = await mdmFixture({ 'identity-days': '10', 'webhook-url': hook.url });
  t.after(() => f.close());
  const udid = 'RESCUE-ME-1';
  const device = await enrolled(f, udid);
  // An administrator's command waits, at a higher priority than a renewal's: it must not reach the rescued identity.
  const queued = await f.admin('POST', '/v1/commands', { devices: [udid], command: { RequestType: 'ProfileList' }, priority: 90 });
  assert.equal(queued.statusCode, 201, queued.body);
  const waiting = queued.json().command_uuid as string;
  const seenAt = (await f.app.store.getEnrollment(udid))!.lastSeenAt;

  f.advance(12 * DAY); // away while the identity expired (day 10): 2 of 30 days of grace used
  const devices = (await f.admin('GET', '/v1/devices')).json().devices as any[];
  assert.equal(devices.find((d) => d.id === udid).identity.standing, 'rescued');

  // Everything but Idle and the renewal's report is refused: nothing stored.
  let before = f.state();
  const token = { MessageType: 'TokenUpdate', Topic: TOPIC, Token: { $data: 'AAAA' }, PushMagic: 'said-while-rescued' };
  for (const message of [
    token,
    authenticate,
    { MessageType: 'CheckOut' },
    { MessageType: 'GetBootstrapToken' },
    { MessageType: 'SetBootstrapToken', BootstrapToken: { $data: 'AAAA' } },
  ])
    await refused(f, await f.speak(device, message), 'rescue-checkin-refused', before);
  await refused(f, await f.speak(device, { Status: 'Acknowledged', CommandUUID: waiting }), 'rescue-report-refused', before);
  await refused(f, await f.speak(device, { Status: 'Idle', UserID: 'user-1', UserShortName: 'u' }), 'rescue-other-channel', before);

  // Idle: the renewal profile, made on the spot by the lifecycle's own path.
  const idle = await f.speak(device, { Status: 'Idle' });
  assert.equal(idle.statusCode, 200, idle.body);
  const renewal = renewalChallenge(f, idle.rawPayload);
  let enrollment = (await f.app.store.getEnrollment(udid))!;
  assert.equal(enrollment.renewalCommandUuid, renewal.uuid);
  assert.deepEqual(enrollment.lastSeenAt, seenAt, 'a rescued identity is not recorded as seen');
  const [session] = await f.app.store.listAudit({ action: RESCUE_AUDIT_ACTION, limit: 1 });
  assert.equal(session!.detail?.step, 'session');
  assert.equal(session!.detail?.renewalStarted, true);
  assert.equal(session!.detail?.delivered, renewal.uuid);
  // Idle again (the device did not get to it): the same profile, not a second one.
  assert.equal(plistlibPlain((await f.speak(device, { Status: 'Idle' })).rawPayload).CommandUUID, renewal.uuid);
  assert.equal((await f.app.store.listAudit({ action: 'lifecycle.renewal-started' })).length, 1);

  // The device runs the profile's SCEP payload and reports on the profile with its old identity: stored, nothing delivered.
  const renewed = await enrollTestDevice(f, udid, newRequester(), { challenge: renewal.challenge, cn: udid });
  const acknowledged = await f.speak(device, { Status: 'Acknowledged', CommandUUID: renewal.uuid });
  assert.equal(acknowledged.statusCode, 200, acknowledged.body);
  assert.equal(acknowledged.rawPayload.length, 0, 'the waiting command is not delivered to the rescued identity');
  const queue = await f.app.store.listQueue(deviceChannel(udid));
  assert.equal(queue.find((q) => q.commandUuid === renewal.uuid)?.status, 'acknowledged');
  assert.equal(queue.find((q) => q.commandUuid === waiting)?.status, 'queued');
  before = f.state();
  await refused(f, await f.speak(device, token), 'rescue-checkin-refused', before);

  // The new identity authenticates: the binding moves, the rescue is complete, normal service resumes.
  assert.equal((await f.speak(renewed, authenticate)).statusCode, 200);
  enrollment = (await f.app.store.getEnrollment(udid))!;
  assert.equal(enrollment.identityCertificateId, (await f.app.store.getCertificateByFingerprint(fingerprint(renewed)))!.id);
  assert.equal(enrollment.renewalCommandUuid, null);
  assert.deepEqual(await completedRescues(f.app.store), [udid]);
  const next = await f.speak(renewed, { Status: 'Idle' });
  assert.equal(plistlibPlain(next.rawPayload).CommandUUID, waiting, 'the waiting command goes to the new identity');
  assert.equal((await f.speak(renewed, { ...token, PushMagic: 'said-by-the-new-identity' })).statusCode, 200);
  assert.ok((await f.app.store.getEnrollment(udid))!.lastSeenAt > seenAt);
  const oldAgain = await f.speak(device, { Status: 'Idle' });
  assert.equal(oldAgain.statusCode, 403, 'the expired identity is no longer current: refused as expired');
  assert.equal((await f.app.store.listAudit({ limit: 1 }))[0]!.detail?.refusal, 'certificate-expired');

  // The webhook: each rescue step as mdm.Rescue, each refusal as mdm.IdentityRefused, nothing the rescued identity said.
  // Webhook deliveries are asynchronous: waited for (up to 15 s on a loaded machine), not assumed.
  for (let i = 0; i < 750 && hook.events.filter((e) => e.topic === 'mdm.Rescue').length < 4; i++)
    await new Promise((r) => setTimeout(r, 20));
  const rescues = hook.events.filter((e) => e.topic === 'mdm.Rescue').map((e) => e.rescue_event.step as string);
  assert.deepEqual(rescues.sort(), ['completed', 'report', 'session', 'session']);
  const refusals = hook.events.filter((e) => e.topic === 'mdm.IdentityRefused').map((e) => e.identity_refused_event.reason);
  assert.ok(refusals.includes('rescue-checkin-refused') && refusals.includes('rescue-report-refused'), JSON.stringify(refusals));
  const passedOn = hook.events.filter(
    (e) =>
      (e.checkin_event || e.acknowledge_event) &&
      Buffer.from((e.checkin_event ?? e.acknowledge_event).raw_payload, 'base64').includes('said-while-rescued'),
  );
  assert.deepEqual(passedOn, [], 'no check-in or report of the rescued identity reaches the webhook as data');
  assert.ok(hook.events.filter((e) => e.topic === 'mdm.Rescue').every((e) => e.rescue_event.udid === udid));
  assert.ok(
    hook.events
      .filter((e) => e.topic === 'mdm.Rescue' && e.rescue_event.step !== 'completed')
      .every((e) => e.rescue_event.certificate_sha256 === fingerprint(device)),
  );
});

test('refused as expired, exactly as without rescue: beyond the grace, revoked, superseded, previous, never bound', async (t) => {
  const f = await mdmFixture({ 'identity-days': '10' });
  t.after(() => f.close());
  const late = await enrolled(f, 'RESCUE-LATE');
  const revoked = await enrolled(f, 'RESCUE-REVOKED');
  // Renewed: the first identity is superseded once the second is seen; the second expires too.
  const superseded = await enrolled(f, 'RESCUE-SUPERSEDED');
  const successor = await enrollTestDevice(f, 'RESCUE-SUPERSEDED', newRequester(), {
    challenge: (await f.challenge(3_600_000, undefined, 'RESCUE-SUPERSEDED')).challenge,
    cn: 'RESCUE-SUPERSEDED',
  });
  assert.equal((await f.speak(successor, authenticate)).statusCode, 200);
  assert.equal((await f.speak(successor, { Status: 'Idle' })).statusCode, 200);
  // Renewed, the new identity not seen again: the first is the enrollment's previous identity, not its current one.
  const previous = await enrolled(f, 'RESCUE-PREVIOUS');
  const current = await enrollTestDevice(f, 'RESCUE-PREVIOUS', newRequester(), {
    challenge: (await f.challenge(3_600_000, undefined, 'RESCUE-PREVIOUS')).challenge,
    cn: 'RESCUE-PREVIOUS',
  });
  assert.equal((await f.speak(current, authenticate)).statusCode, 200);
  // Issued, never authenticated: bound to nothing.
  const unbound = await enrollTestDevice(f, 'RESCUE-UNBOUND');
  const revokedId = (await f.app.store.getCertificateByFingerprint(fingerprint(revoked)))!.id;
  assert.ok(await f.app.store.setCertificateStatus(revokedId, 'active', 'revoked'));
  assert.equal((await f.app.store.getCertificateByFingerprint(fingerprint(superseded)))!.status, 'superseded');

  f.advance(12 * DAY); // every identity expired 2 days ago: within the grace
  let before = f.state();
  await refused(f, await f.speak(revoked, { Status: 'Idle' }), 'certificate-revoked', before);
  for (const [device, why] of [
    [superseded, /superseded/],
    [previous, /not its enrollment's current identity/],
    [unbound, /never authenticated/],
  ] as const) {
    const response = await f.speak(device, { Status: 'Idle' });
    await refused(f, response, 'certificate-expired', before);
    assert.match(response.body, why);
  }
  // The current identity of the renewed enrollment is rescuable; the superseded one's successor likewise.
  assert.equal((await f.speak(current, { Status: 'Idle' })).statusCode, 200);
  assert.equal((await f.speak(successor, { Status: 'Idle' })).statusCode, 200);

  f.advance(30 * DAY); // 32 days after expiry: beyond the 30-day grace
  before = f.state();
  const response = await f.speak(late, { Status: 'Idle' });
  await refused(f, response, 'certificate-expired', before);
  assert.match(response.body, /more than 30 days ago/);
  await refused(f, await f.speak(current, { Status: 'Idle' }), 'certificate-expired', before);
  const devices = (await f.admin('GET', '/v1/devices')).json().devices as any[];
  assert.equal(devices.find((d) => d.id === 'RESCUE-LATE').identity.standing, 'lost');
});

test('--rescue-grace-days 0 turns rescue off', async (t) => {
  const f = await mdmFixture({ 'identity-days': '10', 'rescue-grace-days': '0' });
  t.after(() => f.close());
  const device = await enrolled(f, 'RESCUE-OFF');
  f.advance(11 * DAY);
  const before = f.state();
  const response = await f.speak(device, { Status: 'Idle' });
  await refused(f, response, 'certificate-expired', before);
  assert.match(response.body, /rescue is off/);
  assert.deepEqual(await f.app.store.listAudit({ action: RESCUE_AUDIT_ACTION }), []);
});

test('the runner keeps a rescuable device renewing and names it in rescue; past the grace it is lost', async (t) => {
  const f = await mdmFixture({ 'identity-days': '10' });
  t.after(() => f.close());
  const runner = new LifecycleRunner({ app: f.app, pki: f.pki, profiles: f.profiles, push: createPushService(f.app) });
  const udid = 'RESCUE-RUNNER';
  const device = await enrolled(f, udid);
  f.advance(15 * DAY); // never online in the renewal window; expired 5 days ago
  const report = await runner.run();
  assert.deepEqual(report.done, [`renew-identity ${udid}`], 'a rescuable device is sent a renewal');
  assert.ok(
    report.attention.some((a) => a.startsWith(`device-at-risk ${udid}`) && a.includes('in rescue until')),
    report.attention.join('\n'),
  );
  const sent = (await f.app.store.getEnrollment(udid))!.renewalCommandUuid;
  assert.ok(sent);
  assert.deepEqual((await runner.run()).done, [], 'a renewal in flight is not started twice');
  // The device comes back: it gets the runner's profile, no second one.
  const idle = await f.speak(device, { Status: 'Idle' });
  assert.equal(renewalChallenge(f, idle.rawPayload).uuid, sent);
  assert.equal((await f.app.store.listAudit({ action: 'lifecycle.renewal-started' })).length, 1);

  f.advance(30 * DAY); // 35 days after expiry: lost
  const lost = await runner.run();
  assert.ok(!lost.done.some((d) => d.startsWith('renew-identity')), 'no renewal for a lost device');
  assert.ok(
    lost.attention.some((a) => a.startsWith(`device-at-risk ${udid}: its identity certificate has expired`)),
    lost.attention.join('\n'),
  );
});

test('over mutual TLS (certmdm serve, curl, scepclient): an expired identity gets its renewal profile and nothing else', async (t) => {
  // 0.0039 days is 337 s: the identity, backdated five minutes, is valid for about half a minute after issuance.
  const { dataDir, server, root, state, admin, say, authenticate } = await mtlsServer(MTLS_TOPIC, [
    '--identity-days',
    '0.0039',
    '--lifecycle-interval-minutes',
    '0',
  ]);
  t.after(() => server.stop());
  const udid = 'RESCUE-MTLS-1';
  const device = scepIdentity(dataDir, server.port, root, udid);
  assert.equal(say(device, authenticate(udid)).status, 200, 'authenticated while valid');
  const queued = admin('POST', '/v1/commands', { devices: [udid], command: { RequestType: 'ProfileList' }, priority: 90, push: false });
  assert.equal(queued.status, 201, queued.body);
  const notAfter = readCertificate(device.der).notAfter;
  await new Promise((r) => setTimeout(r, Math.max(0, notAfter.getTime() - Date.now()) + 1500));

  const before = state();
  const mark = lastAuditId(dataDir);
  const token = say(device, { MessageType: 'TokenUpdate', UDID: udid, Topic: MTLS_TOPIC, Token: { $data: 'AAAA' }, PushMagic: 'x' });
  assert.equal(token.status, 403, token.body);
  const [refusal] = auditSince(dataDir, mark);
  assert.equal(refusal!.detail?.refusal, 'rescue-checkin-refused');
  assert.deepEqual(refusal!.detail?.certificates, { mtls: createHash('sha256').update(device.der).digest('hex') });
  assert.deepEqual(state(), before, 'nothing stored');

  const idle = say(device, { UDID: udid, Status: 'Idle' });
  assert.equal(idle.status, 200, idle.body);
  const offered = plistlibPlain(idle.raw);
  assert.equal(offered.Command.RequestType, 'InstallProfile', 'the renewal profile, not the waiting ProfileList');
  assert.notEqual(offered.CommandUUID, JSON.parse(queued.body).command_uuid);
  assert.ok(auditSince(dataDir, mark).some((e) => e.action === RESCUE_AUDIT_ACTION && e.detail?.step === 'session'));
});

test('the plan: a device expired within the grace is renewed and at risk "in rescue" until the grace ends; after it, only at risk', () => {
  const now = new Date(Date.UTC(2030, 0, 1));
  const fact = (id: string, fromDays: number, spanDays: number) => ({
    id,
    notBefore: new Date(now.getTime() - fromDays * DAY),
    notAfter: new Date(now.getTime() + (spanDays - fromDays) * DAY),
  });
  const state: LifecycleState = {
    now,
    roots: [fact('root', 100, 3650)],
    intermediate: fact('int', 100, 1825),
    tlsRootId: 'root',
    tls: null,
    profileSigning: null,
    scepRa: null,
    push: null,
    devices: [
      { id: 'RESCUABLE', identity: fact('a', 100, 90), anchors: ['root'], lastSeenAt: now, renewalStartedAt: null },
      { id: 'LOST', identity: fact('b', 130, 90), anchors: ['root'], lastSeenAt: now, renewalStartedAt: null },
    ],
    identityLifetime: 90 * DAY,
    rescueGrace: 30 * DAY,
  };
  const actions = plan(state, DEFAULT_POLICY).map((a) => [a.kind, 'deviceId' in a ? a.deviceId : '', a.deadline.toISOString(), a.reason]);
  const graceEnds = new Date(now.getTime() + 20 * DAY).toISOString(); // expired 10 days ago, 30 days of grace
  assert.deepEqual(
    actions.filter(([, id]) => id === 'RESCUABLE').map(([kind, , deadline]) => [kind, deadline]),
    [
      ['device-at-risk', graceEnds],
      ['renew-identity', graceEnds],
    ],
  );
  assert.ok(
    actions.some(([kind, id, , reason]) => kind === 'device-at-risk' && id === 'RESCUABLE' && String(reason).includes('in rescue until')),
  );
  assert.deepEqual(
    actions.filter(([, id]) => id === 'LOST').map(([kind, , , reason]) => [kind, reason]),
    [['device-at-risk', 'its identity certificate has expired']],
  );
  // Without a grace (rescue off, or a state built before it existed), an expired identity is only at risk, as before.
  delete state.rescueGrace;
  assert.deepEqual(
    plan(state, DEFAULT_POLICY).map((a) => a.kind),
    ['device-at-risk', 'device-at-risk'],
  );
});

test('--rescue-grace-days: default 30, 0 turns it off, documented in --help', () => {
  const base = { data: '/tmp/certmdm-rescue-config', hostname: ['localhost'] };
  assert.equal(resolveConfig(base, {}).rescueGraceDays, 30);
  assert.equal(resolveConfig({ ...base, 'rescue-grace-days': '0' }, {}).rescueGraceDays, 0);
  assert.equal(resolveConfig(base, { CERTMDM_RESCUE_GRACE_DAYS: '7' }).rescueGraceDays, 7);
  assert.throws(() => resolveConfig({ ...base, 'rescue-grace-days': '-1' }, {}), /rescue-grace-days/);
  assert.match(renderOptionsHelp(), /--rescue-grace-days <value>\n.*renewal profile.*0 turns rescue off/);
});
