import assert from 'node:assert/strict';
import { test } from 'node:test';
import { forecast, type ForecastDevice, type ForecastInput } from '../../src/lifecycle/forecast.ts';
import { DEFAULT_POLICY } from '../../src/lifecycle/model.ts';

const DAY = 86_400_000;
const now = new Date(Date.UTC(2027, 0, 1));
const at = (days: number) => new Date(now.getTime() + days * DAY);
const cert = (id: string, fromDays: number, toDays: number) => ({ id, notBefore: at(fromDays), notAfter: at(toDays) });

function device(id: string, overrides: Partial<ForecastDevice> = {}): ForecastDevice {
  return {
    id,
    name: null,
    serial: null,
    // A 90-day identity issued 50 days ago: its renewal window (the last 40%, 36 days) opens in 4 days; it expires in 40.
    identity: cert(`id-${id}`, -50, 40),
    anchors: ['root'],
    lastSeenAt: at(-1),
    rhythm: { sessions: 30, typicalGapMs: DAY, longestGapMs: 3 * DAY },
    renewalStartedAt: null,
    renewalAttempts: 0,
    ...overrides,
  };
}

function input(devices: ForecastDevice[], overrides: Partial<ForecastInput> = {}): ForecastInput {
  return {
    now,
    days: 90,
    devices,
    policy: DEFAULT_POLICY,
    identityLifetime: 90 * DAY,
    rescueGrace: 0,
    push: cert('push', -100, 265),
    tlsRoot: cert('root', -365, 3285),
    rootSuccessor: null,
    foreignChain: null,
    ...overrides,
  };
}

test('forecast: a daily device renews; one whose rhythm misses its window is lost at its expiry, with why', () => {
  const f = forecast(
    input([
      device('DAILY'),
      // Every 60 days, last seen 20 days ago: next check-ins at +40 (the expiry instant: too late) and +100.
      device('BIMONTHLY', { lastSeenAt: at(-20), rhythm: { sessions: 5, typicalGapMs: 60 * DAY, longestGapMs: 60 * DAY } }),
    ]),
  );
  assert.deepEqual(
    f.lost.map((l) => [l.deviceId, l.cause, l.lostAt.toISOString()]),
    [['BIMONTHLY', 'identity-expires', at(40).toISOString()]],
  );
  assert.match(f.lost[0]!.why, /checks in about every 60 days/);
  assert.match(f.lost[0]!.why, /no check-in expected between its renewal window opening 2027-01-05 and 2027-02-10/);
  assert.equal(f.renewals, 2, 'DAILY renews at +4 (window opens) and again at +58 (its new identity, +4 to +94, opens at +58)');
});

test('forecast: with a rescue grace the same device is renewed late instead of lost', () => {
  const late = device('LATE', { lastSeenAt: at(-20), rhythm: { sessions: 5, typicalGapMs: 60 * DAY, longestGapMs: 60 * DAY } });
  assert.equal(forecast(input([late], { rescueGrace: 30 * DAY })).lost.length, 0, 'seen at +100? no: at +40 it is within the grace');
  assert.equal(forecast(input([late], { rescueGrace: 0 })).lost.length, 1);
});

test('forecast: a device seen once is assumed away, from now, as long again as it has been', () => {
  // Seen once, 30 days ago: projected at +30, +60 … — inside its window (+4 to +40).
  const once = device('ONCE', { lastSeenAt: at(-30), rhythm: { sessions: 1, typicalGapMs: null, longestGapMs: null } });
  assert.equal(forecast(input([once])).lost.length, 0);
  // Seen once, 45 days ago: projected at +45, after its expiry at +40.
  const gone = device('GONE', { lastSeenAt: at(-45), rhythm: { sessions: 1, typicalGapMs: null, longestGapMs: null } });
  const f = forecast(input([gone]));
  assert.deepEqual(
    f.lost.map((l) => [l.deviceId, l.cause]),
    [['GONE', 'identity-expires']],
  );
  assert.match(f.lost[0]!.why, /one session so far/);
});

test('forecast: a device seen since its renewal started without installing it is declining the profile', () => {
  const kiosk = device('KIOSK', { renewalStartedAt: at(-4), renewalAttempts: 3, lastSeenAt: at(-1) });
  const f = forecast(input([kiosk]));
  assert.deepEqual(
    f.lost.map((l) => [l.deviceId, l.cause, l.lostAt.toISOString()]),
    [['KIOSK', 'renewal-declined', at(40).toISOString()]],
  );
  assert.match(f.lost[0]!.why, /3 sent; NotNow or an error/);
});

test('forecast: after the push certificate expires no device is woken to renew', () => {
  // Push ends in 20 days; a device whose window opens at +46 (identity issued now-4, 90 days) is lost at its expiry.
  const young = device('YOUNG', { identity: cert('id-young', -4, 86) });
  const f = forecast(input([young], { push: cert('push', -345, 20) }));
  assert.deepEqual(
    f.lost.map((l) => [l.deviceId, l.cause, l.lostAt.toISOString()]),
    [['YOUNG', 'push-expires', at(86).toISOString()]],
  );
  assert.match(f.lost[0]!.why, /after the push certificate expires 2027-01-21/);
  assert.equal(forecast(input([young], { push: null })).lost.length, 0, 'no push certificate: not a constraint the forecast invents');
});

test('forecast: a proxy certificate certmdm cannot renew cuts every device off at its expiry', () => {
  const f = forecast(
    input([device('A'), device('B')], { foreignChain: { url: 'https://mdm.example', subject: 'CN=mdm.example', notAfter: at(10) } }),
  );
  assert.deepEqual(
    f.lost.map((l) => [l.deviceId, l.cause, l.lostAt.toISOString()]),
    [
      ['A', 'proxy-certificate', at(10).toISOString()],
      ['B', 'proxy-certificate', at(10).toISOString()],
    ],
  );
  assert.equal(
    forecast(input([device('A')], { foreignChain: { url: 'x', subject: 'CN=x', notAfter: at(200) } })).lost.length,
    0,
    'beyond the window: not counted',
  );
});

test('forecast: a root switch in the window loses the devices not expected to receive the successor', () => {
  // A root with 11 of 3650 days left: the switch deadline (10% left) has passed — it is now; the successor exists.
  const root = cert('root', -3639, 11);
  const successor = cert('root2', -30, 3620);
  const has = device('HAS', { anchors: ['root', 'root2'] });
  const lacks = device('LACKS', { lastSeenAt: at(-2), rhythm: { sessions: 4, typicalGapMs: 400 * DAY, longestGapMs: 400 * DAY } });
  const f = forecast(input([has, lacks], { tlsRoot: root, rootSuccessor: successor }));
  assert.deepEqual(
    f.lost.map((l) => [l.deviceId, l.cause]),
    [['LACKS', 'root-switch']],
  );
});

test('forecast: deterministic and bounded — 10 000 devices over ten years', () => {
  const devices = Array.from({ length: 10_000 }, (_, i) =>
    device(`D${i}`, { rhythm: { sessions: 9, typicalGapMs: ((i % 50) + 1) * DAY, longestGapMs: null }, lastSeenAt: at(-(i % 7)) }),
  );
  const long = { days: 3650, push: cert('push', -100, 4000) };
  const a = forecast(input(devices, long));
  const b = forecast(input(devices, long));
  assert.deepEqual(a, b);
  // A rhythm can miss a 36-day renewal window only if its gap is at least as long.
  assert.ok(
    a.lost.every((l) => l.gapDays >= 36),
    JSON.stringify(a.lost.find((l) => l.gapDays < 36)),
  );
  assert.ok(a.lost.length > 0 && a.lost.length < devices.length);
});
