import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { hashPassword } from '../../src/console/passwords.ts';
import { csvField } from '../../src/console/pages/certificates.ts';
import {
  LOGIN_FAILURES_ALLOWED,
  LOGIN_HASHES_IN_FLIGHT,
  LOGIN_WINDOW_MS,
  LoginLimiter,
  addressKey,
} from '../../src/console/login-limiter.ts';
import { fakeApple, newTopic } from '../helpers/apple.ts';
import { mdmFixture } from '../mdm/fixture.ts';
import { enrollTestDevice } from '../helpers/device.ts';
import Database from 'better-sqlite3';
import { join } from 'node:path';

type Fixture = Awaited<ReturnType<typeof mdmFixture>>;
const PASSWORD = 'the right password, long';

/** The server in-process with two administrators; requests by inject, as a browser would send them. */
async function fixture(flags: Record<string, string | string[]> = {}) {
  const f = await mdmFixture(flags as never);
  for (const name of ['alice', 'bob'])
    await f.app.store.insertAdminAccount({
      name,
      passwordHash: await hashPassword(PASSWORD),
      createdAt: f.now(),
      passwordChangedAt: f.now(),
      lastLoginAt: null,
    });
  return f;
}

async function loginForm(f: Fixture) {
  const page = await f.server.inject({ method: 'GET', url: '/console/login' });
  return { cookie: String(page.headers['set-cookie']).split(';')[0]!, csrf: /name="csrf" value="([^"]+)"/.exec(page.body)![1]! };
}

async function login(
  f: Fixture,
  name: string,
  password: string,
  options: { remoteAddress?: string; headers?: Record<string, string> } = {},
) {
  const form = await loginForm(f);
  return f.server.inject({
    method: 'POST',
    url: '/console/login',
    remoteAddress: options.remoteAddress,
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: form.cookie, ...options.headers },
    payload: new URLSearchParams({ csrf: form.csrf, name, password }).toString(),
  });
}

async function session(f: Fixture, name = 'alice') {
  const r = await login(f, name, PASSWORD);
  assert.equal(r.statusCode, 303, r.body);
  const cookie = String(r.headers['set-cookie']).split(';')[0]!;
  const page = await f.server.inject({ method: 'GET', url: '/console/actions', headers: { cookie } });
  return { cookie, csrf: /name="csrf" value="([^"]+)"/.exec(page.body)![1]! };
}

const post = (f: Fixture, s: { cookie: string }, url: string, form: Record<string, string>) =>
  f.server.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: s.cookie },
    payload: new URLSearchParams(form).toString(),
  });

test('console login: guesses sent in parallel are limited as strictly as guesses sent one by one', async (t) => {
  const f = await fixture();
  t.after(() => f.close());
  const guesses = await Promise.all(Array.from({ length: 30 }, (_, i) => login(f, 'alice', `wrong guess number ${i}`)));
  const checked = guesses.filter((r) => r.statusCode === 403).length;
  assert.ok(checked <= LOGIN_FAILURES_ALLOWED.account, `${checked} passwords were checked`);
  assert.ok(guesses.every((r) => [403, 429, 503].includes(r.statusCode)));
  // More guesses, one by one, until refused: in all, exactly the allowance was ever checked.
  let more = 0;
  while ((await login(f, 'alice', `one more wrong guess ${more}`)).statusCode === 403) more++;
  assert.equal(checked + more, LOGIN_FAILURES_ALLOWED.account);
  assert.equal((await login(f, 'alice', PASSWORD)).statusCode, 429, 'the right password waits its turn too');
  const denied = await f.app.store.listAudit({ action: 'console.login', outcome: 'denied', limit: 100 });
  assert.equal(denied.filter((e) => e.reason === 'wrong name or password').length, LOGIN_FAILURES_ALLOWED.account);
});

test('console login: one account locked out leaves the others usable from the same address', async (t) => {
  const f = await fixture();
  t.after(() => f.close());
  for (let i = 0; i < LOGIN_FAILURES_ALLOWED.account; i++) assert.equal((await login(f, 'bob', `wrong-${i}-xxxxxxxx`)).statusCode, 403);
  assert.equal((await login(f, 'bob', PASSWORD)).statusCode, 429);
  assert.equal((await login(f, 'alice', PASSWORD)).statusCode, 303);
});

test('console login: X-Forwarded-For counts only from a trusted proxy', async (t) => {
  const f = await fixture({ 'trusted-proxies': ['127.0.0.9'] });
  t.after(() => f.close());
  // From an untrusted peer a made-up address changes nothing: every guess counts against the peer.
  for (let i = 0; i < LOGIN_FAILURES_ALLOWED.address; i++)
    await login(f, `nobody${i}`, 'wrong password here', { remoteAddress: '127.0.0.5', headers: { 'x-forwarded-for': `10.0.0.${i}` } });
  assert.equal(
    (await login(f, 'alice', PASSWORD, { remoteAddress: '127.0.0.5', headers: { 'x-forwarded-for': '10.1.1.1' } })).statusCode,
    429,
  );
  // Through the trusted proxy, each client is its own address.
  for (let i = 0; i < LOGIN_FAILURES_ALLOWED.address; i++)
    await login(f, `nobody${i}`, 'wrong password here', { remoteAddress: '127.0.0.9', headers: { 'x-forwarded-for': '10.0.0.66' } });
  assert.equal(
    (await login(f, 'alice', PASSWORD, { remoteAddress: '127.0.0.9', headers: { 'x-forwarded-for': '10.0.0.67' } })).statusCode,
    303,
  );
  const [event] = await f.app.store.listAudit({ action: 'console.login', outcome: 'ok', limit: 1 });
  assert.equal(event!.detail?.address, '10.0.0.67');
});

test('console login: a password typed as the name is never audited in clear', async (t) => {
  const f = await fixture();
  t.after(() => f.close());
  await login(f, 'my secret password oops', 'x');
  const [event] = await f.app.store.listAudit({ action: 'console.login', limit: 1 });
  assert.ok(!JSON.stringify(event).includes('my secret password'), JSON.stringify(event));
  assert.match(String(event!.target), /^unknown:[0-9a-f]{16}$/);
});

test('console: bodies other than forms are 415, never an unhandled exception', async (t) => {
  const f = await fixture();
  t.after(() => f.close());
  for (const [type, payload] of [
    ['text/plain', 'x'],
    ['application/json', '5'],
    ['application/json', '"abc"'],
    ['application/json', '{"name":"alice","password":"x","csrf":"y"}'],
  ] as const) {
    const r = await f.server.inject({ method: 'POST', url: '/console/login', headers: { 'content-type': type }, payload });
    assert.equal(r.statusCode, 415, `${type} ${payload}: ${r.body}`);
  }
  const s = await session(f);
  const r = await f.server.inject({
    method: 'POST',
    url: '/console/actions/enrollment-link',
    headers: { 'content-type': 'application/json', cookie: s.cookie },
    payload: JSON.stringify({ csrf: s.csrf, device: 5, confirm: 'yes' }),
  });
  assert.equal(r.statusCode, 415);
  assert.equal((await f.app.store.listAudit({ action: 'console.error', outcome: 'error', limit: 1 })).length, 0, 'no internal error');
});

test('console: repeated query parameters, long device ids and unknown pages answer with the console headers', async (t) => {
  const f = await fixture();
  t.after(() => f.close());
  const s = await session(f);
  for (const url of [
    '/console/certificates?q=a&q=b',
    '/console/certificates.csv?q=a&q=b',
    '/console/audit?action=a&action=b&actor=x&actor=y',
  ])
    assert.equal((await f.server.inject({ method: 'GET', url, headers: { cookie: s.cookie } })).statusCode, 200, url);
  const long = await f.server.inject({ method: 'GET', url: `/console/devices/${'U'.repeat(256)}`, headers: { cookie: s.cookie } });
  assert.equal(long.statusCode, 404);
  assert.match(long.body, /No device/);
  const unknown = await f.server.inject({ method: 'GET', url: '/console/nothing-here' });
  assert.equal(unknown.statusCode, 404);
  assert.match(String(unknown.headers['content-security-policy']), /script-src 'none'/);
});

test('console: a refused fresh renewal changes nothing; a pending push upload is confirmed once', async (t) => {
  const topic = newTopic();
  const f = await fixture({ 'push-topic': topic });
  t.after(() => f.close());
  const s = await session(f);
  // A device without an identity to renew, whose earlier renewal profile still waits: refused, nothing changed (the
  // waiting profile keeps its body).
  const device = await enrollTestDevice(f, 'NO-IDENTITY');
  assert.equal((await f.speak(device, { MessageType: 'Authenticate', Topic: topic, DeviceName: 'd' })).statusCode, 200);
  const queued = await f.admin('POST', '/v1/commands', { devices: ['NO-IDENTITY'], command: { RequestType: 'ProfileList' }, push: false });
  assert.equal(queued.statusCode, 201, queued.body);
  const db = new Database(join(f.app.config.dataDir, 'certmdm.db'));
  db.prepare('UPDATE enrollments SET identity_certificate_id = NULL, renewal_command_uuid = ? WHERE id = ?').run(
    queued.json().command_uuid,
    'NO-IDENTITY',
  );
  db.close();
  const before = f.state();
  const refused = await post(f, s, '/console/devices/NO-IDENTITY/renew', { csrf: s.csrf, confirm: 'yes' });
  assert.equal(refused.statusCode, 400, refused.body);
  assert.match(refused.body, /no identity to renew/);
  assert.deepEqual(f.state(), before, 'the waiting profile was not withdrawn');
  assert.equal((await post(f, s, '/console/devices/NO-SUCH-DEVICE/renew', { csrf: s.csrf, confirm: 'yes' })).statusCode, 400);
  assert.deepEqual(f.state(), before);

  // The push upload: checked, then confirmed; the same confirmation again is refused, not a 500.
  const apple = fakeApple();
  const push = apple.issueWithKey(`/C=US/UID=${topic}/CN=APSP:${topic.split('.').pop()}`);
  const boundary = 'certmdmtestboundary';
  const file = Buffer.concat([readFileSync(push.cert), readFileSync(push.key)]);
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n${s.csrf}\r\n`),
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="certificate"; filename="push.pem"\r\nContent-Type: application/x-pem-file\r\n\r\n`,
    ),
    file,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const checked = await f.server.inject({
    method: 'POST',
    url: '/console/actions/push-certificate',
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, cookie: s.cookie },
    payload: body,
  });
  assert.equal(checked.statusCode, 200, checked.body);
  const pending = /name="pending" value="([^"]+)"/.exec(checked.body)![1]!;
  assert.equal((await post(f, s, '/console/actions/push-certificate/confirm', { csrf: s.csrf, pending })).statusCode, 200);
  const installed = await f.app.store.listCertificates({ role: 'push', status: 'active' });
  assert.equal(installed.length, 1);
  const again = await post(f, s, '/console/actions/push-certificate/confirm', { csrf: s.csrf, pending });
  assert.equal(again.statusCode, 400);
  assert.match(again.body, /confirmed already/);
  assert.deepEqual(await f.app.store.listCertificates({ role: 'push', status: 'active' }), installed);
  // In another session the sealed upload does not open at all.
  const other = await session(f, 'bob');
  assert.equal((await post(f, other, '/console/actions/push-certificate/confirm', { csrf: other.csrf, pending })).statusCode, 400);
});

test('console CSV: a field a spreadsheet would read as a formula stays text, spaces or not', () => {
  assert.equal(csvField('=1+1'), "'=1+1");
  assert.equal(csvField(' =1+1'), "' =1+1");
  assert.equal(csvField('\t@SUM(A1)'), "'\t@SUM(A1)");
  assert.equal(csvField('-2'), "'-2");
  assert.equal(csvField('CN=a, O=b'), '"CN=a, O=b"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField('a"b,c'), '"a""b,c"');
  assert.equal(csvField('plain'), 'plain');
});

test('login limiter: a locked account stays locked however many other keys arrive; a full map refuses new keys', () => {
  const limiter = new LoginLimiter(50);
  const now = Date.UTC(2027, 0, 1);
  const victim = { account: 'victim', address: '192.0.2.1', known: false };
  for (let i = 0; i < LOGIN_FAILURES_ALLOWED.account; i++) {
    const a = limiter.begin(victim, now + i);
    assert.ok('token' in a);
    limiter.failed(a);
  }
  assert.ok('wait' in limiter.begin(victim, now + 10), 'locked');
  let refused = 0;
  for (let i = 0; i < 200; i++) {
    const a = limiter.begin({ account: `filler${i}`, address: `198.51.100.${i % 250}`, known: false }, now + 20 + i);
    if ('token' in a) limiter.failed(a);
    else refused++;
  }
  assert.ok(refused > 0, 'new keys refused once the map is full of live ones');
  assert.ok(limiter.size <= 50);
  assert.ok('wait' in limiter.begin(victim, now + 500), 'the victim is still locked: its key was never dropped');
  // Once the window has passed, aged-out keys make room again.
  const later = now + LOGIN_WINDOW_MS + 2000;
  assert.ok('token' in limiter.begin({ account: 'fresh', address: '203.0.113.7', known: false }, later));
});

test('login limiter: strangers fill the common lane; a browser that logged in before has its own', () => {
  const limiter = new LoginLimiter();
  const now = Date.UTC(2027, 0, 1);
  for (let i = 0; i < LOGIN_HASHES_IN_FLIGHT.anyone; i++)
    assert.ok('token' in limiter.begin({ account: `x${i}`, address: `198.51.100.${i}`, known: false }, now));
  assert.ok('busy' in limiter.begin({ account: 'alice', address: '203.0.113.1', known: false }, now), 'a stranger waits');
  const known = limiter.begin({ account: 'alice', address: '203.0.113.1', known: true }, now);
  assert.ok('token' in known && known.lane === 'known', 'the known browser goes through');
});

test('login limiter: IPv6 addresses count by their /64', () => {
  assert.equal(addressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:db8:1:2::ffff'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(addressKey('2001:0db8:0001:0002:aaaa::'), '2001:db8:1:2::/64');
  assert.equal(addressKey('192.0.2.7'), '192.0.2.7');
});

test('console: a dual-stack peer is its IPv4 address; URLs the router refuses carry the console headers and no echo', async (t) => {
  const f = await fixture({ 'trusted-proxies': ['127.0.0.9'] });
  t.after(() => f.close());
  assert.equal(
    (await login(f, 'alice', PASSWORD, { remoteAddress: '::ffff:127.0.0.9', headers: { 'x-forwarded-for': '10.0.0.70' } })).statusCode,
    303,
  );
  const [event] = await f.app.store.listAudit({ action: 'console.login', outcome: 'ok', limit: 1 });
  assert.equal(event!.detail?.address, '10.0.0.70', 'the trusted proxy is recognised on a dual-stack listener');
  for (const [url, status] of [
    ['/console/%', 400],
    [`/console/devices/${'a'.repeat(2000)}`, 414],
  ] as const) {
    const r = await f.server.inject({ method: 'GET', url });
    assert.equal(r.statusCode, status, url);
    assert.match(String(r.headers['content-security-policy']), /script-src 'none'/);
    assert.ok(!r.body.includes('aaaaaaaaaa'), 'the path is not echoed');
  }
});

test('console: refusals of clients without a session are audited one by one up to a bound, then counted', async (t) => {
  const f = await fixture();
  t.after(() => f.close());
  const junk = () =>
    f.server.inject({
      method: 'POST',
      url: '/console/logout',
      remoteAddress: '192.0.2.50',
      payload: 'x=1',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
  for (let i = 0; i < 50; i++) assert.equal((await junk()).statusCode, 403);
  const rows = await f.app.store.listAudit({ actor: 'ip:192.0.2.50', limit: 1000 });
  assert.equal(rows.length, 20);
  f.advance(16 * 60_000);
  await junk();
  const [next] = await f.app.store.listAudit({ actor: 'ip:192.0.2.50', limit: 1 });
  assert.equal(next!.detail?.unrecordedBefore, 30, 'the refusals not recorded one by one are counted in the next row');
});
