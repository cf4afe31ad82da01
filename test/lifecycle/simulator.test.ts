import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { STRESS_LIFETIMES } from '../../src/lifecycle/simulation/lifetimes.ts';
import type { SimulationReport } from '../../src/lifecycle/simulation/report.ts';
import { simulate } from '../../src/lifecycle/simulation/simulate.ts';

const options = { devices: 8, years: 0.5, seed: 50, lifetimes: STRESS_LIFETIMES, runEveryDays: 1 };

function comparable(r: SimulationReport) {
  const { wallSeconds: _w, deviceYearsPerSecond: _d, ...rest } = r;
  return rest;
}

test('the same seed gives the same report', async () => {
  const [one, two] = [await simulate({ ...options, lifecycle: false }), await simulate({ ...options, lifecycle: false })];
  assert.deepEqual(comparable(one), comparable(two));
  assert.equal(one.byKind.identity.renewals, 0, 'nothing renews without the lifecycle engine');
});

test('certmdm simulate --processes 2 splits the same fleet across processes and merges one report', () => {
  const run = (processes: number) => {
    const r = spawnSync(
      process.execPath,
      [
        'bin/certmdm.mjs',
        'simulate',
        '--devices',
        '8',
        '--years',
        '0.25',
        '--seed',
        '50',
        '--lifetimes',
        'stress',
        '--json',
        '--processes',
        String(processes),
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as SimulationReport;
  };
  const [one, two] = [run(1), run(2)];
  assert.equal(two.processes, 2);
  assert.equal(two.devices, 8);
  assert.deepEqual(
    Object.entries(two.behaviours).sort(),
    Object.entries(one.behaviours).sort(),
    'device i is the same device in any process',
  );
  assert.deepEqual(two.transports, { mtls: 4, signature: 4 });
  assert.deepEqual(two.lifetimes, STRESS_LIFETIMES, 'the shards ran the lifetimes asked for');
  assert.equal(two.lost.reachable, 0);
  assert.ok(two.byKind.identity.renewals > 0);
});

test('rescue renewal brings back devices whose identity expired while they were away; without it the same fleet loses them', async () => {
  // Seed 1301's forty devices at the stress ratios include wanderers back within 30 days of their identity's expiry.
  const fleet = { devices: 40, years: 1, seed: 1301, lifecycle: true, lifetimes: STRESS_LIFETIMES, runEveryDays: 1 };
  const rescued = await simulate(fleet);
  const without = await simulate({ ...fleet, rescueGraceDays: 0 });
  assert.ok(rescued.rescues > 0, `rescues: ${JSON.stringify(rescued.lost)}`);
  assert.equal(without.rescues, 0);
  assert.equal(without.lost.total, rescued.lost.total + rescued.rescues, 'each device rescued is lost without rescue');
  assert.equal(rescued.lost.reachable, 0);
});
