import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_POLICY, type Action, type CertificateFact, type DeviceFact, type LifecycleState } from '../../src/lifecycle/model.ts';
import { plan } from '../../src/lifecycle/planner.ts';
import { groupByMonth, schedule, type ScheduledCertificate } from '../../src/lifecycle/schedule.ts';
import { formatPlanReport, planReport } from '../../src/lifecycle/schedule-report.ts';
import type { Store } from '../../src/store/types.ts';

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

function base(): LifecycleState {
  return {
    now: NOW,
    roots: [cert('root-1', 100, 3650)],
    intermediate: cert('int-1', 100, 1825),
    tlsRootId: 'root-1',
    tls: cert('tls-1', 10, 397),
    profileSigning: cert('sign-1', 10, 730),
    scepRa: cert('ra-1', 20, 730),
    push: cert('push-1', 10, 365),
    devices: [
      device('D1', cert('id-1', 10, 365)),
      device('D2', cert('id-2', 200, 365)),
      device('D3', cert('id-3', 250, 365), ['root-1'], new Date(NOW.getTime() - 10 * DAY)),
      device('D4', null),
    ],
    identityLifetime: 365 * DAY,
  };
}

/** Mid-rollover: a successor root that one device still lacks; `lackerFrom` ages that device's identity. */
function rollingRoot(lackerFrom: number): LifecycleState {
  const s = base();
  s.roots = [cert('root-1', 2800, 3650), cert('root-2', 1, 3650)]; // 850 days left of root-1: the switch is due at 339
  s.devices = [device('has', cert('a', 10, 365), ['root-1', 'root-2']), device('lacks', cert('b', lackerFrom, 365), ['root-1'])];
  return s;
}

/** Whether `plan()` at `at` takes the scheduled certificate's action (for an identity: for its device). */
function takes(state: LifecycleState, entry: ScheduledCertificate, kind: Action['kind'], at: Date): boolean {
  return plan({ ...state, now: at }, DEFAULT_POLICY).some(
    (a) => a.kind === kind && (entry.deviceId === undefined || ('deviceId' in a && a.deviceId === entry.deviceId)),
  );
}

/** Every future date the schedule shows is the day `plan()` starts taking the action: not a day, not a moment before. */
function assertConsistent(state: LifecycleState): number {
  const { server, identities } = schedule(state, DEFAULT_POLICY);
  let checked = 0;
  for (const entry of [...server, ...identities]) {
    const due = entry.action && !entry.action.dueNow ? { kind: entry.action.kind, at: entry.action.at } : undefined;
    // The push certificate has no action of the planner's, but its warnings are planned the same way.
    const warning =
      entry.warnings?.[0] && entry.warnings[0].at > state.now
        ? { kind: 'push-certificate-expiring' as const, at: entry.warnings[0].at }
        : undefined;
    const check = due ?? warning;
    if (!check) continue;
    const label = `${entry.role} ${entry.id} ${check.kind} on ${check.at.toISOString()}`;
    assert.equal(takes(state, entry, check.kind, new Date(check.at.getTime() - DAY)), false, `${label}: not a day before`);
    assert.equal(takes(state, entry, check.kind, new Date(check.at.getTime() - 1)), false, `${label}: not a moment before`);
    assert.equal(takes(state, entry, check.kind, check.at), true, `${label}: on the day`);
    checked += 1;
  }
  return checked;
}

test('every certificate something depends on is scheduled, soonest expiry first, with its dependants', () => {
  const s = base();
  const { server, identities } = schedule(s, DEFAULT_POLICY);
  assert.deepEqual(
    server.map((e) => e.role),
    ['push', 'tls', 'scep-ra', 'profile-signing', 'intermediate', 'root'],
  );
  const byRole = Object.fromEntries(server.map((e) => [e.role, e]));
  assert.equal(byRole.tls!.dependants.devices, 4);
  assert.deepEqual(byRole['profile-signing']!.dependants.profiles, ['enrollment', 'renewal', 'trust']);
  assert.equal(byRole.intermediate!.dependants.devices, 3, 'every device with an identity');
  assert.equal(byRole.root!.action?.kind, 'create-root-successor');
  assert.equal(byRole.push!.action, null);
  assert.match(byRole.push!.note, /^none — operator/);
  assert.deepEqual(
    byRole.push!.warnings!.map((w) => w.days),
    [60, 30, 14, 7, 1],
  );
  assert.deepEqual(
    identities.map((i) => i.deviceId),
    ['D3', 'D2', 'D1'],
  );
  assert.match(identities[0]!.note, /renewal in flight since .*; at risk from/);
  assert.equal(identities[0]!.action?.dueNow, true, 'D3 is inside its renewal window now');
});

test('each scheduled date is the day plan() takes the action', () => {
  assert.ok(assertConsistent(base()) >= 7);
});

test('root rollover: the switch is scheduled at its deadline, or when the last device waited for is lost', () => {
  // The lacking device is still valid at the deadline (day 339): the switch is planned at the deadline.
  const atDeadline = rollingRoot(10);
  const root = schedule(atDeadline, DEFAULT_POLICY).server.find((e) => e.id === 'root-1')!;
  assert.equal(root.action?.kind, 'switch-tls-root');
  assert.deepEqual(root.action?.at, new Date(NOW.getTime() + 339 * DAY));
  assert.match(root.note, /1 device\(s\) still lacking the successor have it \(named at risk since 2029-12-06\)/);
  assert.ok(assertConsistent(atDeadline) >= 2);
  // Its identity ends on day 65: from then it is not waited for, and the switch comes then.
  const early = rollingRoot(300);
  assert.deepEqual(schedule(early, DEFAULT_POLICY).server.find((e) => e.id === 'root-1')!.action?.at, new Date(NOW.getTime() + 65 * DAY));
  assertConsistent(early);
  // The successor and the intermediate (which the root rollover replaces: the root runs out first) have no action.
  const successor = schedule(early, DEFAULT_POLICY).server.find((e) => e.id === 'root-2')!;
  assert.equal(successor.action, null);
  assert.equal(successor.dependants.devices, 1);
  assert.equal(successor.dependants.through, 'installed on 1 of 2 devices');
  assert.equal(schedule(early, DEFAULT_POLICY).server.find((e) => e.id === 'root-1')!.dependants.devices, 2);
  assert.equal(schedule(early, DEFAULT_POLICY).server.find((e) => e.role === 'intermediate')!.action, null);
});

test('an action already due is planned now; a TLS certificate outliving the intermediate is due at once', () => {
  const s = base();
  s.intermediate = cert('int', 100, 400);
  s.tls = { id: 'tls', notBefore: NOW, notAfter: new Date(s.intermediate.notAfter.getTime() + DAY) };
  const tls = schedule(s, DEFAULT_POLICY).server.find((e) => e.role === 'tls')!;
  assert.deepEqual(tls.action, { kind: 'reissue-tls', at: NOW, dueNow: true });
  assert.ok(plan(s, DEFAULT_POLICY).some((a) => a.kind === 'reissue-tls'));
});

test('device identities group by month of expiry', () => {
  const s = base();
  s.devices = Array.from({ length: 1000 }, (_, i) => device(`D${i}`, cert(`id-${i}`, i % 300, 365)));
  const groups = groupByMonth(schedule(s, DEFAULT_POLICY).identities);
  assert.ok(groups.length <= 11);
  assert.equal(
    groups.reduce((n, g) => n + g.identities, 0),
    1000,
  );
  assert.ok(groups.every((g) => g.firstExpiry <= g.lastExpiry && g.firstRenewal < g.firstExpiry));
});

test('the human table stays bounded for 10,000 devices: the soonest identities, then one row per month; --all lists every one', async () => {
  const s = base();
  s.devices = Array.from({ length: 10_000 }, (_, i) => device(`D${i}`, cert(`id-${i}`, i % 300, 365)));
  // The report reads subjects and serials from the inventory; this one has none, so ids stand in.
  const store = { listCertificates: async () => [], getCertificate: async () => undefined } as unknown as Store;
  const report = await planReport(store, schedule(s, DEFAULT_POLICY), plan(s, DEFAULT_POLICY));
  assert.equal(report.identities.entries.length, 10_000, 'JSON has every identity');
  assert.ok(report.due.filter((a) => a.kind === 'renew-identity').length > 1000);
  const table = formatPlanReport(report, { all: false }).split('\n');
  assert.ok(table.length < 60, `${table.length} lines`);
  assert.equal(
    table.filter((l) => /^\S+\s+renew-identity\s+D\d+/.test(l)).length,
    10,
    'the renewals due now: the soonest 10, then a count',
  );
  assert.ok(table.some((l) => /^\.\.\. and \d+ more renew-identity/.test(l)));
  const monthRows = table.filter((l) => /device-identity\s+\d+ more expiring in \d{4}-\d{2}/.test(l));
  assert.ok(monthRows.length >= 10);
  assert.equal(table.filter((l) => /device-identity\s+D\d+ /.test(l)).length, 5);
  assert.ok(table.some((l) => /10000 device identities: the soonest 5 listed/.test(l)));
  const all = formatPlanReport({ ...report, due: [] }, { all: true }).split('\n');
  assert.equal(all.filter((l) => /device-identity\s+D\d+ /.test(l)).length, 10_000);
});

test('an intermediate rolled away from is listed with the devices whose identity it issued, and no action', async () => {
  const s = base();
  const previous = cert('int-0', 1500, 1825);
  const record = (c: CertificateFact, role: string) => ({ ...c, role, subject: `CN=${c.id}`, serialHex: '0a0b', status: 'active' });
  const store = {
    listCertificates: async () => [record(previous, 'intermediate'), record(s.intermediate, 'intermediate')],
    getCertificate: async () => undefined,
    listIssuedBy: async (id: string) => (id === 'int-0' ? [{ id: 'id-1' }, { id: 'id-retired' }] : []),
  } as unknown as Store;
  const report = await planReport(store, schedule(s, DEFAULT_POLICY), []);
  const listed = report.expiries.find((e) => e.id === 'int-0');
  assert.ok(listed);
  assert.equal(listed.action, null);
  assert.equal(listed.dependants.devices, 1, 'only identities devices still use');
  assert.match(listed.note, /previous intermediate/);
  const notAfters = report.expiries.map((e) => e.notAfter);
  assert.deepEqual(notAfters, [...notAfters].sort());
  assert.equal(report.expiries.filter((e) => e.role === 'intermediate').length, 2);
});
