import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_POLICY, type CertificateFact, type DeviceFact, type LifecycleState } from '../../src/lifecycle/model.ts';
import { unservableLifetimes } from '../../src/lifecycle/lifetimes.ts';
import { plan } from '../../src/lifecycle/planner.ts';

const DAY = 86_400_000;
const NOW = new Date(Date.UTC(2030, 0, 1));
/** A certificate valid from `from` days before now for `span` days. */
const cert = (id: string, from: number, span: number): CertificateFact => ({
  id,
  notBefore: new Date(NOW.getTime() - from * DAY),
  notAfter: new Date(NOW.getTime() + (span - from) * DAY),
});
const device = (id: string, identity: CertificateFact | null, anchors = ['root-1'], renewalStartedAt: Date | null = null): DeviceFact => ({
  id,
  identity,
  anchors,
  lastSeenAt: NOW,
  renewalStartedAt,
});

/** A healthy state: nothing is due. */
function healthy(): LifecycleState {
  return {
    now: NOW,
    roots: [cert('root-1', 100, 3650)],
    intermediate: cert('int-1', 100, 1825),
    tlsRootId: 'root-1',
    tls: cert('tls-1', 10, 397),
    profileSigning: cert('sign-1', 10, 730),
    scepRa: cert('ra-1', 10, 730),
    push: cert('push-1', 10, 365),
    devices: [device('D1', cert('id-1', 10, 365))],
    identityLifetime: 365 * DAY,
  };
}

const kinds = (state: LifecycleState) => plan(state, DEFAULT_POLICY).map((a) => a.kind);

test('a healthy state plans nothing', () => {
  assert.deepEqual(plan(healthy(), DEFAULT_POLICY), []);
});

test('identity renewal opens at 40% of lifetime left, and only then', () => {
  const s = healthy();
  // 155 of 365 days left (42%): not yet; 140 left (38%): due.
  s.devices = [device('early', cert('a', 210, 365)), device('due', cert('b', 225, 365))];
  const actions = plan(s, DEFAULT_POLICY);
  assert.deepEqual(
    actions.map((a) => [a.kind, 'deviceId' in a ? a.deviceId : '']),
    [['renew-identity', 'due']],
  );
  assert.deepEqual(actions[0]!.deadline, s.devices[1]!.identity!.notAfter);
});

test('a renewal that does not complete puts the device at risk, named with its deadline', () => {
  const s = healthy();
  const identity = cert('a', 300, 365);
  s.devices = [
    // Overdue after 20% of the lifetime (73 days) in flight.
    device('slow', identity, ['root-1'], new Date(NOW.getTime() - 80 * DAY)),
    device('fresh', cert('b', 300, 365), ['root-1'], new Date(NOW.getTime() - 5 * DAY)),
  ];
  const atRisk = plan(s, DEFAULT_POLICY).filter((a) => a.kind === 'device-at-risk');
  assert.equal(atRisk.length, 1);
  assert.equal('deviceId' in atRisk[0]! && atRisk[0].deviceId, 'slow');
  assert.deepEqual(atRisk[0]!.deadline, identity.notAfter);
  s.devices = [device('gone', cert('c', 400, 365))];
  assert.deepEqual(kinds(s), ['device-at-risk'], 'an expired identity is at risk, and cannot be renewed by profile');
});

test('TLS is re-issued at 25% left, or when it would outlive the intermediate', () => {
  const s = healthy();
  s.tls = cert('tls', 300, 397);
  assert.deepEqual(kinds(s), ['reissue-tls']);
  const t = healthy();
  t.intermediate = cert('int', 100, 2000);
  t.tls = { id: 'tls', notBefore: NOW, notAfter: new Date(t.intermediate.notAfter.getTime() + DAY) };
  assert.ok(kinds(t).includes('reissue-tls'));
});

test('the intermediate rolls over at 30% left, while the root has room for a successor', () => {
  const s = healthy();
  s.intermediate = cert('int', 1300, 1825); // 525 days left of 1825: 29%
  s.tls = cert('tls', 100, 397);
  assert.deepEqual(kinds(s), ['rollover-intermediate']);
  s.intermediate = cert('int', 1200, 1825); // 625 days left: 34%
  assert.deepEqual(kinds(s), []);
  const t = healthy();
  t.roots = [cert('root-1', 3500, 3650)]; // the root itself ends in 150 days
  t.intermediate = cert('int', 1700, 1825);
  t.tls = cert('tls', 300, 397);
  assert.ok(!kinds(t).includes('rollover-intermediate'), 'no intermediate rollover under a root that is running out');
});

test('root rollover: successor made at 30% left, delivered to every device, TLS switches only when all have it', () => {
  const s = healthy();
  s.roots = [cert('root-1', 2600, 3650)];
  assert.deepEqual(kinds(s), ['create-root-successor']);

  s.roots = [cert('root-1', 2600, 3650), cert('root-2', 1, 3650)];
  s.devices = [device('has', cert('a', 10, 365), ['root-1', 'root-2']), device('lacks', cert('b', 10, 365), ['root-1'])];
  const delivering = plan(s, DEFAULT_POLICY);
  assert.deepEqual(
    delivering.map((a) => [a.kind, 'deviceId' in a ? a.deviceId : '']),
    [['deliver-root', 'lacks']],
  );

  s.devices[1]!.anchors.push('root-2');
  assert.deepEqual(kinds(s), ['switch-tls-root']);

  // A device already lost (its identity expired) is not waited for: it can never install the root.
  s.devices.push(device('lost', cert('c', 400, 365), ['root-1']));
  assert.deepEqual(kinds(s).sort(), ['device-at-risk', 'switch-tls-root']);
});

test('root switch at the deadline names the stragglers', () => {
  const s = healthy();
  s.roots = [cert('root-1', 3300, 3650), cert('root-2', 1, 3650)];
  s.devices = [device('lacks', cert('b', 10, 365), ['root-1'])];
  const sw = plan(s, DEFAULT_POLICY).find((a) => a.kind === 'switch-tls-root');
  assert.ok(sw && sw.kind === 'switch-tls-root');
  assert.deepEqual(sw.stragglers, ['lacks']);
  assert.match(sw.reason, /1 device\(s\) lack the successor root/);
});

test('profile-signing re-issue and push warnings', () => {
  const s = healthy();
  s.profileSigning = cert('sign', 600, 730);
  s.push = cert('push', 330, 365);
  assert.deepEqual(kinds(s).sort(), ['push-certificate-expiring', 'reissue-profile-signing']);
  s.push = cert('push', 290, 365); // 75 days left: no warning yet
  assert.deepEqual(kinds(s), ['reissue-profile-signing']);
});

test('the SCEP RA is re-issued inside its renewal window, as every certificate something depends on', () => {
  const s = healthy();
  s.scepRa = cert('ra', 500, 730); // 230 days left of 730: not yet
  assert.deepEqual(kinds(s), []);
  s.scepRa = cert('ra', 560, 730); // 170 days left: inside the last quarter
  const [action] = plan(s, DEFAULT_POLICY);
  assert.equal(action?.kind, 'reissue-scep-ra');
  assert.deepEqual(action?.deadline, s.scepRa.notAfter);
});

test('actions come soonest deadline first', () => {
  const s = healthy();
  s.tls = cert('tls', 380, 397);
  s.devices = [device('d', cert('a', 300, 365))];
  const deadlines = plan(s, DEFAULT_POLICY).map((a) => a.deadline.getTime());
  assert.deepEqual(
    deadlines,
    [...deadlines].sort((a, b) => a - b),
  );
});

test('a device still lacking the successor root is named at risk before the switch deadline', () => {
  const s = healthy();
  // Production lifetimes: the switch is due when 1.4 identity lifetimes (511 days) of the root are left, the successor
  // is made 20% of the root's life (730 days) before that, and devices lacking it are at risk from halfway (876 days).
  s.roots = [cert('root-1', 2650, 3650), cert('root-2', 1, 3650)]; // 1000 days left
  s.devices = [device('lacks', cert('b', 10, 365), ['root-1'])];
  assert.deepEqual(kinds(s), ['deliver-root']);
  s.roots = [cert('root-1', 2800, 3650), cert('root-2', 1, 3650)]; // 850 days left
  const atRisk = plan(s, DEFAULT_POLICY).find((a) => a.kind === 'device-at-risk');
  assert.ok(atRisk && 'deviceId' in atRisk && atRisk.deviceId === 'lacks');
  assert.deepEqual(atRisk.deadline, new Date(s.roots[0]!.notAfter.getTime() - 511 * DAY));
});

test('identities are never cut short: the intermediate rolls while an identity lifetime and its window are left', () => {
  const s = healthy();
  s.identityLifetime = 180 * DAY; // about half of a 365-day intermediate: 1.4 × 180 = 252 days must be left
  s.tls = cert('tls', 200, 397);
  s.intermediate = cert('int', 100, 365); // 265 days left: an identity issued now still gets its 180 days
  assert.deepEqual(kinds(s), []);
  s.intermediate = cert('int', 120, 365); // 245 days left: 30% alone would wait until 109
  assert.deepEqual(kinds(s), ['rollover-intermediate']);
});

test('the root switch comes while the root can still carry a full identity, whatever its share says', () => {
  const s = healthy();
  s.identityLifetime = 365 * DAY;
  // 10% of 3650 is 365 days, exactly one identity: identities issued later would be cut short. The switch is due at 511.
  s.roots = [cert('root-1', 3100, 3650), cert('root-2', 1, 3650)]; // 550 days left
  s.devices = [device('lacks', cert('b', 10, 365), ['root-1'])];
  assert.ok(!kinds(s).includes('switch-tls-root'));
  s.roots = [cert('root-1', 3140, 3650), cert('root-2', 1, 3650)]; // 510 days left
  assert.ok(kinds(s).includes('switch-tls-root'));
});

test('lifetimes that cannot be served are named in one line', () => {
  const days = (n: number) => n * DAY;
  assert.equal(unservableLifetimes({ identity: days(365), intermediate: days(1825), root: days(3650) }, DEFAULT_POLICY), undefined);
  assert.equal(unservableLifetimes({ identity: days(90), intermediate: days(365), root: days(730) }, DEFAULT_POLICY), undefined);
  assert.match(
    unservableLifetimes({ identity: days(90), intermediate: days(120), root: days(730) }, DEFAULT_POLICY) ?? '',
    /^--intermediate-days 120 cannot serve --identity-days 90: .*at least 128 days/,
  );
  // A 240-day root serves 90-day identities now (the switch comes at 126 days left); a 150-day one cannot.
  assert.equal(unservableLifetimes({ identity: days(90), intermediate: days(130), root: days(240) }, DEFAULT_POLICY), undefined);
  assert.match(
    unservableLifetimes({ identity: days(90), intermediate: days(365), root: days(150) }, DEFAULT_POLICY) ?? '',
    /^--root-days 150 /,
  );
});
