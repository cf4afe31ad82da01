import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BEHAVIOUR_SHARES, acceptsProfiles, advance, finish, fleetMember } from '../../src/lifecycle/simulation/fleet.ts';
import { STRESS_LIFETIMES } from '../../src/lifecycle/simulation/lifetimes.ts';
import { mergeShards, type ShardResult, type SimulationReport } from '../../src/lifecycle/simulation/report.ts';

const onlineDays = (seed: number, index: number, horizon: number) => {
  const m = fleetMember(seed, index, horizon);
  const days: number[] = [];
  for (let day = 0; day <= horizon; day++) {
    advance(m.availability, day);
    if (m.availability.nextOnline === day) days.push(day);
  }
  finish(m.availability);
  return { m, days };
};

test('a fleet member is a pure function of seed and index: any process simulating device i sees the same device', () => {
  for (const index of [0, 7, 4242]) {
    const a = onlineDays(99, index, 730);
    const b = onlineDays(99, index, 730);
    assert.equal(a.m.udid, b.m.udid);
    assert.equal(a.m.behaviour, b.m.behaviour);
    assert.deepEqual(a.days, b.days);
    assert.equal(a.m.availability.longestGap, b.m.availability.longestGap);
  }
  assert.notDeepEqual(onlineDays(99, 1, 730).days.slice(0, 20), onlineDays(100, 1, 730).days.slice(0, 20));
});

test('behaviours come in their shares, and each keeps its rhythm', () => {
  const counts = new Map<string, number>();
  const n = 4000;
  for (let i = 0; i < n; i++) {
    const { m, days } = onlineDays(7, i, 365);
    counts.set(m.behaviour, (counts.get(m.behaviour) ?? 0) + 1);
    const gaps = days.slice(1).map((d, k) => d - days[k]!);
    assert.ok(
      days.every((d) => d > m.enrollDay),
      'online only after enrollment',
    );
    if (m.behaviour === 'daily' || m.behaviour === 'kiosk') assert.ok(gaps.every((g) => g === 1));
    if (m.behaviour === 'weekly')
      assert.ok(
        gaps.every((g) => g >= 5 && g <= 9),
        `weekly gaps ${gaps}`,
      );
    if (m.behaviour === 'monthly')
      assert.ok(
        gaps.every((g) => g >= 24 && g <= 33),
        `monthly gaps ${gaps}`,
      );
    // The longest gap the report uses for eligibility is the longest silence within the horizon, the last one included.
    const tail = days.length ? 365 - days.at(-1)! : 0;
    assert.equal(m.availability.longestGap, Math.max(days[0]! - m.enrollDay, ...gaps, tail), `${m.udid} ${m.behaviour}`);
  }
  for (const [behaviour, share] of BEHAVIOUR_SHARES) {
    const got = (counts.get(behaviour) ?? 0) / n;
    assert.ok(Math.abs(got - share) < 0.03, `${behaviour}: ${got} vs ${share}`);
  }
  assert.equal(acceptsProfiles('kiosk'), false);
  assert.equal(acceptsProfiles('monthly'), true);
});

test('shards merge into one report: devices and losses add up, lead times are exact over all shards', () => {
  const kind = (renewals: number, lost: number) => ({
    renewals,
    lost,
    warned: lost,
    lostAfterWarning: lost,
    lostUnwarned: 0,
    minLeadDays: null,
    medianLeadDays: null,
  });
  const shard = (devices: number, identityRenewals: number, tls: number, leads: number[]): ShardResult => ({
    report: {
      seed: 1,
      devices,
      years: 2,
      lifecycle: true,
      pinning: false,
      processes: 1,
      lifetimes: STRESS_LIFETIMES,
      byKind: { identity: kind(identityRenewals, leads.length), tls: kind(tls, 0), intermediate: kind(1, 0), root: kind(1, 0) },
      reachable: devices - leads.length,
      lost: {
        total: leads.length,
        reachable: 0,
        byCause: { 'identity expired': { devices: leads.length, reachable: 0, minAbsentDays: leads[0]!, maxAbsentDays: leads.at(-1)! } },
        reachableExamples: [],
      },
      atRisk: { warned: leads.length, lostAndWarned: leads.length, lostUnwarned: 0 },
      reissued: { 'profile-signing': 1, 'scep-ra': 2 },
      rescues: identityRenewals > 35 ? 2 : 1,
      expiredInUse: { days: 0, first: null },
      behaviours: { daily: devices },
      transports: { mtls: devices - 2, signature: 2 },
      messages: 10 * devices,
      connections: 4 * devices,
      scepIssuances: devices + identityRenewals,
      wallSeconds: 1,
      deviceYearsPerSecond: 1,
    } satisfies SimulationReport,
    leadDays: { identity: leads, tls: [], intermediate: [], root: [] },
  });
  const merged = mergeShards([shard(5, 40, 6, [10, 30]), shard(4, 30, 6, [20])], 4);
  assert.equal(merged.devices, 9);
  assert.equal(merged.processes, 2);
  assert.equal(merged.byKind.identity.renewals, 70, 'device renewals add up');
  assert.equal(merged.byKind.tls.renewals, 6, 'each shard had its own server: server-side rollovers are not summed');
  assert.equal(merged.lost.total, 3);
  assert.deepEqual(merged.lost.byCause, { 'identity expired': { devices: 3, reachable: 0, minAbsentDays: 10, maxAbsentDays: 30 } });
  assert.equal(merged.reachable, 6);
  assert.equal(merged.rescues, 3);
  assert.deepEqual(merged.transports, { mtls: 5, signature: 4 });
  assert.equal(merged.connections, 36);
  assert.equal(merged.byKind.identity.minLeadDays, 10);
  assert.equal(merged.byKind.identity.medianLeadDays, 20);
  assert.equal(merged.deviceYearsPerSecond, (9 * 2) / 4);
});
