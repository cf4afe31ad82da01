import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { createPushService } from '../../src/app/services.ts';
import { SESSION_IDLE_MS } from '../../src/console/sessions.ts';
import { DEFAULT_POLICY } from '../../src/lifecycle/model.ts';
import { plan } from '../../src/lifecycle/planner.ts';
import { LifecycleRunner } from '../../src/lifecycle/runner.ts';
import { lifecycleState } from '../../src/lifecycle/state.ts';
import { importPushCertificate } from '../../src/push/certificate.ts';
import { deviceChannel } from '../../src/store/types.ts';
import { fakeApple, newTopic } from '../helpers/apple.ts';
import { run, tempDir } from '../helpers/cli.ts';
import { selfSigned } from '../helpers/openssl.ts';
import { probeAndRecord } from '../../src/ops/probe.ts';
import type { TestDevice } from '../helpers/device.ts';
import { openSigned } from '../helpers/profile.ts';
import { ARTIFACTS, PASSWORD, assertNoScript, consoleFixture, dataOf } from './fixture.ts';

const DAY = 86_400_000;

/** A command's stdout, without blocking the event loop the in-process server runs on. */
function runAsync(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', () => resolve(out));
    child.stdin.end();
  });
}
const TOPIC = newTopic();
type Fixture = Awaited<ReturnType<typeof consoleFixture>>;

let f: Fixture;
let page: Page;
const apple = fakeApple();
const devices: Record<string, TestDevice> = {};

async function enrolled(udid: string, info: Record<string, string>): Promise<TestDevice> {
  devices[udid] = await f.enrolled(udid, TOPIC, info);
  return devices[udid]!;
}

/** Every page the console serves answers with the strict CSP and without script. */
async function visit(path: string, shot?: string): Promise<string> {
  const response = await page.goto(`${f.base}${path}`);
  assert.equal(response?.status(), 200, `${path}: ${await response?.text()}`);
  const headers = response!.headers();
  assert.match(headers['content-security-policy'] ?? '', /script-src 'none'/);
  assert.match(headers['content-security-policy'] ?? '', /frame-ancestors 'none'/);
  const html = await page.content();
  assertNoScript(html);
  if (shot) await f.shot(page, shot);
  return html;
}

before(async () => {
  // A 30-day identity, no rescue grace: the lifecycle's deadlines land inside one simulated month.
  f = await consoleFixture({ 'identity-days': '30', 'rescue-grace-days': '0', 'push-topic': TOPIC, 'apns-url': 'https://127.0.0.1:9' });
  page = await f.context.newPage();

  // AT-RISK-1 enrolls, its renewal window opens (day 18 of 30), the real runner sends its renewal, and it is never
  // heard from again: a week later the planner names it at risk.
  await enrolled('AT-RISK-1', { DeviceName: 'Lobby iPad', SerialNumber: 'F9FAT1SK', Model: 'iPad13,1' });
  f.advance(18.5 * DAY);
  const runner = new LifecycleRunner({ app: f.app, pki: f.pki, profiles: f.profiles, push: createPushService(f.app) });
  const first = await runner.run();
  assert.ok(first.done.includes('renew-identity AT-RISK-1'), JSON.stringify(first));
  // Two healthy devices: one checks in every two days, one once.
  const steady = await enrolled('STEADY-2', { DeviceName: 'Front desk Mac', SerialNumber: 'C02STEADY2', Model: 'Mac14,2' });
  await enrolled('QUIET-3', { DeviceName: 'Warehouse iPhone', SerialNumber: 'DNQUIET3', Model: 'iPhone15,2' });
  for (let i = 0; i < 3; i++) {
    f.advance(2 * DAY);
    assert.equal((await f.speak(steady, { Status: 'Idle' })).statusCode, 200);
  }
  f.advance(1.5 * DAY);
  const second = await runner.run();
  assert.ok(
    second.attention.some((a) => a.startsWith('device-at-risk AT-RISK-1')),
    JSON.stringify(second),
  );
  // A takeover refused: QUIET-3's identity speaks for AT-RISK-1 (audited against AT-RISK-1).
  const takeover = await f.speak(devices['QUIET-3']!, { Status: 'Idle', UDID: 'AT-RISK-1' });
  assert.equal(takeover.statusCode, 403);
  // The push certificate, as an administrator imports it (topic TOPIC, a year).
  const push = apple.issueWithKey(`/C=US/UID=${TOPIC}/CN=APSP:${TOPIC.split('.').pop()}`);
  await importPushCertificate(
    { store: f.app.store, keyring: f.app.keyring, clock: f.now, audit: f.app.audit },
    { data: Buffer.concat([readFileSync(push.cert), readFileSync(push.key)]), actor: 'cli' },
  );
});

after(async () => {
  await f?.close();
});

test('console: a wrong password is refused, audited, and opens no session; the right one logs in', async () => {
  await f.login(page, 'not the password at all');
  assert.equal(await page.textContent('#login-message'), 'Wrong administrator name or password.');
  assert.ok(!(await f.context.cookies()).some((c) => c.name === '__Host-certmdm-console'), 'no session cookie');
  const [event] = await f.app.store.listAudit({ action: 'console.login', limit: 1 });
  assert.equal(event!.outcome, 'denied');
  assert.equal(event!.detail?.name, 'alice');
  assert.ok(!JSON.stringify(event).includes('not the password'), 'the password is never audited');
  await f.shot(page, '01-login-refused');

  await f.login(page);
  assert.equal(new URL(page.url()).pathname, '/console');
  const cookie = (await f.context.cookies()).find((c) => c.name === '__Host-certmdm-console')!;
  assert.ok(cookie.secure && cookie.httpOnly && cookie.sameSite === 'Strict', JSON.stringify(cookie));
  const stored = await f.app.store.getConsoleSession(createHash('sha256').update(cookie.value).digest());
  assert.equal(stored?.account, 'alice', 'the store holds only the hash of the cookie');
});

test("console: overview tiles count devices by lifecycle state and the push certificate's days", async () => {
  await visit('/console', '02-overview');
  const tiles = Object.fromEntries((await dataOf(page, '#device-states [data-state]')).map((t) => [t.state, Number(t.count)]));
  const state = await lifecycleState(f.app.store, f.now(), { pinning: false, identityDays: 30, rescueGraceDays: 0 });
  assert.deepEqual(tiles, { current: 2, renewing: 0, at_risk: 1, rescued: 0, lost: 0 });
  assert.equal(Number((await dataOf(page, '#push-days'))[0]!.days), Math.floor((state.push!.notAfter.getTime() - f.now().getTime()) / DAY));
});

test('console: the timeline charts every server certificate with its validity and planned replacement', async () => {
  // A proxy in front presents its own certificate: the real probe records it, and the timeline shows it too.
  const dir = tempDir('proxy-');
  selfSigned({
    key: join(dir, 'k.pem'),
    cert: join(dir, 'c.pem'),
    subject: '/CN=proxy.example',
    days: 400,
    extensions: ['subjectAltName=DNS:localhost'],
  });
  const proxy = createHttpsServer({ key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) }, (_q, r) =>
    r.end('ok'),
  );
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  try {
    await probeAndRecord(f.app.store, `https://localhost:${(proxy.address() as { port: number }).port}`, f.now());
  } finally {
    proxy.close();
  }
  const proxyCert = new X509Certificate(readFileSync(join(dir, 'c.pem')));
  await visit('/console/timeline', '03-timeline');
  const presented = (await dataOf(page, '#timeline g.certificate')).filter((b) => b.foreign === 'true');
  assert.deepEqual(
    presented.map((b) => [b.role, b.subject, b.notAfter]),
    [['presented', 'CN=proxy.example', new Date(proxyCert.validTo).toISOString()]],
    'the proxy certificate, which certmdm did not issue, is drawn apart',
  );
  const bars = (await dataOf(page, '#timeline g.certificate')).filter((b) => b.foreign === 'false');
  const server = (await f.app.store.listCertificates({ status: 'active' })).filter((c) => c.role !== 'device-identity');
  assert.deepEqual(bars.map((b) => b.role).sort(), server.map((c) => c.role).sort(), 'one bar per active server certificate');
  for (const c of server) {
    const bar = bars.find((b) => b.role === c.role)!;
    assert.equal(bar.notBefore, c.notBefore.toISOString(), `${c.role} starts where the certificate does`);
    assert.equal(bar.notAfter, c.notAfter.toISOString(), `${c.role} ends where the certificate does`);
  }
  // Planned replacements where the policy puts them: TLS with a quarter of its life left, the intermediate with 30%.
  for (const [role, share] of [
    ['tls', DEFAULT_POLICY.tlsRenewAt],
    ['intermediate', DEFAULT_POLICY.intermediateRolloverAt],
    ['scep-ra', DEFAULT_POLICY.scepRaRenewAt],
  ] as const) {
    const c = server.find((x) => x.role === role)!;
    const expected = c.notAfter.getTime() - share * (c.notAfter.getTime() - c.notBefore.getTime());
    assert.ok(Math.abs(Date.parse(bars.find((b) => b.role === role)!.planned!) - expected) < 1000, `${role} replacement planned`);
  }
  assert.equal(bars.find((b) => b.role === 'push')!.planned, '', 'nothing replaces the push certificate automatically');
  assert.equal((await dataOf(page, '#timeline g.today'))[0]!.at, f.now().toISOString(), 'today marked');

  // The histogram: every enrolled identity once, in the bin its expiry falls in; the renewal window shaded.
  const bins = await dataOf(page, '#histogram g.bin');
  const identities = (
    await Promise.all((await f.app.store.listEnrollments()).map((e) => f.app.store.getCertificate(e.identityCertificateId!)))
  ).map((c) => c!.notAfter.getTime());
  assert.equal(
    bins.reduce((n, b) => n + Number(b.count), 0),
    identities.length,
  );
  for (const t of identities) {
    const bin = bins.find((b) => Date.parse(b.start!) <= t && t < Date.parse(b.end!))!;
    assert.ok(Number(bin.count) >= 1, 'each identity counted in its own bin');
  }
  const horizon = f.now().getTime() + DEFAULT_POLICY.identityRenewAt * 30 * DAY;
  for (const b of bins) assert.equal(b.renewalWindow, String(Date.parse(b.start!) < horizon));
  const atRiskExpiry = identities.reduce((a, b) => Math.min(a, b));
  assert.equal(bins.find((b) => Date.parse(b.start!) <= atRiskExpiry && atRiskExpiry < Date.parse(b.end!))!.renewalWindow, 'true');
});

test('console: the device the runner named at risk is listed with its deadline, what was tried, and its actions', async () => {
  await visit('/console/at-risk', '04-at-risk');
  const rows = await dataOf(page, 'tr.at-risk');
  const planned = plan(
    await lifecycleState(f.app.store, f.now(), { pinning: false, identityDays: 30, rescueGraceDays: 0 }),
    DEFAULT_POLICY,
  ).find((a) => a.kind === 'device-at-risk')!;
  assert.deepEqual(rows, [{ device: 'AT-RISK-1', lostAt: planned.deadline.toISOString() }]);
  const text = (await page.textContent('tr.at-risk'))!.replace(/\s+/g, ' ');
  const enrollment = (await f.app.store.getEnrollment('AT-RISK-1'))!;
  // The first renewal profile's challenge expired undelivered (7 days) and the runner sent a fresh one.
  assert.equal(enrollment.renewalAttempts, 2);
  assert.ok(text.includes(`2 attempt(s) since ${enrollment.renewalStartedAt!.toISOString().slice(0, 10)}`), text);
  assert.match(text, /renewal profile queued/);
  assert.match(text!, /Lobby iPad/);
  assert.equal(await page.locator('tr.at-risk form button').count(), 3, 'push again, fresh renewal, re-enrollment link');

  // Push again: confirmed first, then done and audited with the administrator's name.
  await page.click('tr.at-risk form[action$="/push"] button');
  assert.match((await page.textContent('#confirm'))!, /Wake AT-RISK-1 again/);
  await f.shot(page, '05-confirm-push');
  await page.click('#confirm-button');
  assert.match((await page.textContent('#device-action-done'))!, /Push for AT-RISK-1: not delivered/);
  const [pushed] = await f.app.store.listAudit({ action: 'console.device-push', limit: 1 });
  assert.equal(pushed!.actor, 'admin:alice');
  assert.equal(pushed!.target, 'AT-RISK-1');
});

test('console: devices are found by serial; a device shows its identity, binding history and queue', async () => {
  await visit('/console/devices?q=C02STEADY', '06-devices');
  assert.deepEqual(
    (await dataOf(page, 'tr.device')).map((d) => d.device),
    ['STEADY-2'],
  );
  await visit('/console/devices?q=warehouse');
  assert.deepEqual(
    (await dataOf(page, 'tr.device')).map((d) => d.device),
    ['QUIET-3'],
  );
  await visit('/console/devices/AT-RISK-1', '07-device');
  const events = await dataOf(page, 'tr.binding-event');
  assert.ok(
    events.some((e) => e.action === 'mdm.authenticate' && e.outcome === 'ok'),
    'the enrollment',
  );
  assert.ok(
    events.some((e) => e.action === 'lifecycle.renewal-started'),
    'the renewal',
  );
  assert.ok(
    events.some((e) => e.action === 'mdm.request' && e.outcome === 'denied'),
    'the refused takeover',
  );
  assert.deepEqual(
    (await dataOf(page, 'tr.queued-command')).map((q) => q.status),
    ['expired', 'queued'],
    'the first renewal profile expired undelivered; the fresh one waits',
  );
});

test('console: certificates filter by role and export as CSV; a certificate shows its chain and dependants', async () => {
  await visit('/console/certificates?role=device-identity', '08-certificates');
  const identities = await f.app.store.listCertificates({ role: 'device-identity' });
  assert.equal((await dataOf(page, 'tr.certificate')).length, identities.length);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('text=Export CSV')]);
  const file = join(tempDir('csv-'), 'certs.csv');
  await download.saveAs(file);
  // Python's csv module reads what the console wrote.
  const parsed = run('python3', [
    '-c',
    'import csv,json,sys; print(json.dumps(list(csv.DictReader(open(sys.argv[1], newline="")))))',
    file,
  ]);
  const rows = JSON.parse(parsed.stdout) as Record<string, string>[];
  assert.deepEqual(rows.map((r) => r.fingerprint_sha256).sort(), identities.map((c) => c.fingerprintSha256).sort());
  assert.ok(rows.every((r) => r.role === 'device-identity'));
  assert.equal(rows.find((r) => r.id === identities[0]!.id)!.not_after, identities[0]!.notAfter.toISOString());

  const [intermediate] = await f.app.store.listCertificates({ role: 'intermediate', status: 'active' });
  await visit(`/console/certificates/${intermediate!.id}`, '09-certificate');
  assert.deepEqual(
    (await dataOf(page, 'tr.chain')).map((c) => c.role),
    ['intermediate', 'root'],
  );
  const dependants = await page.locator('tr.dependant').allTextContents();
  for (const role of ['tls', 'profile-signing', 'scep-ra', 'device-identity'])
    assert.ok(
      dependants.some((d) => d.includes(`issued ${role}`)),
      `${role} depends on the intermediate`,
    );
});

test('console: an enrollment link is confirmed, shown with a QR code that decodes to it, and its profile downloads signed', async () => {
  await visit('/console/actions', '10-actions');
  await page.selectOption('#identity', 'scep');
  await page.click('#enrollment-link-form button[type=submit]');
  assert.match((await page.textContent('#confirm'))!, /one-time SCEP enrollment link/);
  await page.click('#confirm-button');
  const url = (await page.getAttribute('#enrollment-url', 'href'))!;
  assert.match(url, new RegExp(`^${f.base}/enroll/`));
  await f.shot(page, '11-enrollment-link');
  // zbarimg (a real QR decoder) reads the code off the rendered page.
  const png = join(tempDir('qr-'), 'qr.png');
  await page.locator('#enrollment-qr svg').screenshot({ path: png });
  const decoded = run('zbarimg', ['--raw', '-q', png]);
  assert.equal(decoded.status, 0, decoded.stderr);
  assert.equal(decoded.stdout.trim(), url);
  const [event] = await f.app.store.listAudit({ action: 'console.enroll-link', limit: 1 });
  assert.equal(event!.actor, 'admin:alice');

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#enrollment-url')]);
  const profile = join(tempDir('profile-'), 'enroll.mobileconfig');
  await download.saveAs(profile);
  const { profile: plist } = openSigned(readFileSync(profile), f.root, f.now());
  const types = (plist.PayloadContent as { PayloadType: string }[]).map((p) => p.PayloadType);
  assert.ok(types.indexOf('com.apple.mdm') > types.indexOf('com.apple.security.root'), 'roots before the MDM payload');
  assert.equal(
    (plist.PayloadContent as { PayloadType: string; Topic?: string }[]).find((p) => p.PayloadType === 'com.apple.mdm')!.Topic,
    TOPIC,
  );
});

test('console: a push certificate with another topic is refused with the reason explained and nothing changed', async () => {
  const before = f.state();
  const [current] = await f.app.store.listCertificates({ role: 'push', status: 'active' });
  const other = newTopic();
  const wrong = apple.issueWithKey(`/C=US/UID=${other}/CN=APSP:${other.split('.').pop()}`);
  const upload = join(tempDir('push-'), 'other-topic.pem');
  writeFileSync(upload, Buffer.concat([readFileSync(wrong.cert), readFileSync(wrong.key)]));
  await visit('/console/actions');
  await page.setInputFiles('#certificate', upload);
  const [response] = await Promise.all([page.waitForNavigation(), page.click('#push-form button[type=submit]')]);
  assert.equal(response?.status(), 409);
  const refusal = (await page.textContent('#push-refusal'))!.replace(/\s+/g, ' ');
  assert.ok(refusal.includes(other) && refusal.includes(TOPIC), 'both topics named');
  assert.match(refusal, /accepts pushes only for the topic it enrolled with/);
  assert.match(refusal, /Nothing was changed/);
  await f.shot(page, '12-push-refused');
  assert.deepEqual(f.state(), before, 'stored state unchanged');
  assert.deepEqual(
    (await f.app.store.listCertificates({ role: 'push', status: 'active' })).map((c) => c.id),
    [current!.id],
  );
  const [event] = await f.app.store.listAudit({ action: 'console.push-certificate', limit: 1 });
  assert.deepEqual(
    [event!.outcome, event!.actor, event!.detail?.uploadedTopic, event!.detail?.currentTopic],
    ['denied', 'admin:alice', other, TOPIC],
  );

  // The renewal with the same topic: checked, explained, installed only on confirmation.
  const renewed = apple.issueWithKey(`/C=US/UID=${TOPIC}/CN=APSP:${TOPIC.split('.').pop()}`);
  writeFileSync(upload, Buffer.concat([readFileSync(renewed.cert), readFileSync(renewed.key)]));
  await visit('/console/actions');
  await page.setInputFiles('#certificate', upload);
  await page.click('#push-form button[type=submit]');
  assert.match((await page.textContent('#push-preview'))!.replace(/\s+/g, ' '), /keeps topic/);
  await f.shot(page, '13-push-preview');
  assert.deepEqual(
    (await f.app.store.listCertificates({ role: 'push', status: 'active' })).map((c) => c.id),
    [current!.id],
    'nothing before confirming',
  );
  await page.click('#confirm-button');
  assert.match((await page.textContent('#push-installed'))!, /Installed/);
  const [installed] = await f.app.store.listCertificates({ role: 'push', status: 'active' });
  assert.notEqual(installed!.id, current!.id);
});

test('console: rotate TLS now, confirmed; the listener presents the new certificate', async () => {
  const [old] = await f.app.store.listCertificates({ role: 'tls', status: 'active' });
  await visit('/console/actions');
  await page.selectOption('#what', 'tls');
  await page.click('#rotate-form button[type=submit]');
  await page.click('#confirm-button');
  assert.match((await page.textContent('#rotated'))!, /reissued tls/);
  const [tls] = await f.app.store.listCertificates({ role: 'tls', status: 'active' });
  assert.notEqual(tls!.id, old!.id);
  // openssl runs beside the in-process server (asynchronously: a blocking spawn would stop the server answering).
  const presented = await runAsync('openssl', ['s_client', '-connect', `127.0.0.1:${new URL(f.base).port}`, '-servername', 'localhost']);
  const leaf = run('openssl', ['x509', '-noout', '-fingerprint', '-sha256'], { input: presented });
  assert.equal(leaf.stdout.split('=')[1]!.trim().replace(/:/g, '').toLowerCase(), tls!.fingerprintSha256);
});

test('console: a command is enqueued for the devices named, after confirmation, and audited', async () => {
  await visit('/console/actions');
  await page.fill('#devices', 'STEADY-2\nQUIET-3');
  await page.selectOption('#requestType', 'DeviceInformation');
  await page.click('#command-form button[type=submit]');
  assert.match((await page.textContent('#confirm'))!.replace(/\s+/g, ' '), /Enqueue DeviceInformation for 2 device\(s\)/);
  assert.equal((await f.app.store.listQueue(deviceChannel('STEADY-2'))).length, 0, 'nothing before confirming');
  await page.click('#confirm-button');
  const uuid = /\(([0-9A-F-]{36})\)/.exec((await page.textContent('#enqueued'))!)![1]!;
  for (const udid of ['STEADY-2', 'QUIET-3'])
    assert.deepEqual(
      (await f.app.store.listQueue(deviceChannel(udid))).map((q) => [q.commandUuid, q.requestType, q.status]),
      [[uuid, 'DeviceInformation', 'queued']],
    );
  const [event] = await f.app.store.listAudit({ action: 'command.enqueued', limit: 1 });
  assert.deepEqual([event!.actor, event!.target], ['admin:alice', uuid]);
});

test('console: the forecast names the silent device, its loss date and why', async () => {
  await visit('/console/forecast?days=90', '14-forecast');
  const losses = await dataOf(page, 'tr.forecast-loss');
  const identity = await f.app.store.getCertificate((await f.app.store.getEnrollment('AT-RISK-1'))!.identityCertificateId!);
  assert.deepEqual(
    losses.map((l) => [l.device, l.cause, l.lostAt]),
    [['AT-RISK-1', 'identity-expires', identity!.notAfter.toISOString()]],
  );
  assert.match((await page.textContent('tr.forecast-loss'))!, /no check-in expected/);
});

test("console: the audit log filters by actor and shows the administrator's actions", async () => {
  await visit('/console/audit?actor=admin%3Aalice', '15-audit');
  const events = await dataOf(page, 'tr.audit-event');
  assert.ok(events.length >= 5);
  assert.ok(events.every((e) => e.actor === 'admin:alice'));
  for (const action of ['console.login', 'console.enroll-link', 'console.device-push', 'console.rotate-tls', 'console.push-certificate'])
    assert.ok(
      events.some((e) => e.action === action),
      action,
    );
});

test('console: a state change without the CSRF token is refused, audited, and changes nothing', async () => {
  const before = f.state();
  const response = await page.request.post(`${f.base}/console/actions/rotate`, {
    form: { what: 'intermediate', confirm: 'yes' },
    maxRedirects: 0,
  });
  assert.equal(response.status(), 403);
  assert.deepEqual(f.state(), before);
  const [event] = await f.app.store.listAudit({ action: 'console.csrf', limit: 1 });
  assert.equal(event!.reason, 'missing CSRF token');
  assert.equal(event!.actor, 'admin:alice');
  const wrong = await page.request.post(`${f.base}/console/actions/rotate`, {
    form: { what: 'intermediate', confirm: 'yes', csrf: 'A'.repeat(43) },
    maxRedirects: 0,
  });
  assert.equal(wrong.status(), 403);
  assert.deepEqual(f.state(), before);
});

test('console: an idle session is refused and sends the browser to the login page', async () => {
  f.advance(SESSION_IDLE_MS + 60_000);
  const response = await page.goto(`${f.base}/console/devices`);
  assert.equal(new URL(page.url()).pathname, '/console/login');
  assert.equal(response?.status(), 200);
  const [event] = await f.app.store.listAudit({ action: 'console.session', limit: 1 });
  assert.equal(event!.reason, 'no live session (idle)');
  const post = await page.request.post(`${f.base}/console/logout`, { form: { csrf: 'x' }, maxRedirects: 0 });
  assert.equal(post.status(), 403, 'a post without a live session is refused, not redirected');
  await f.shot(page, '16-session-ended');
});

test('console: five failed logins lock the account out for a while, even with the right password', async () => {
  for (let i = 0; i < 5; i++) await f.login(page, `wrong-${i}-password`);
  await f.login(page, PASSWORD);
  assert.match((await page.textContent('#login-message'))!, /Too many failed attempts/);
  assert.equal(new URL(page.url()).pathname, '/console/login');
  const [event] = await f.app.store.listAudit({ action: 'console.login', limit: 1 });
  assert.equal(event!.reason, 'rate limited');
  assert.ok(ARTIFACTS);
});
