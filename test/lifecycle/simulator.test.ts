import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import type { SimulationReport } from '../../src/lifecycle/simulation/report.ts';
import { simulate } from '../../src/lifecycle/simulation/simulate.ts';

// Short lifetimes so that every kind of rollover happens within a simulated year: identities renew about every four
// weeks, TLS every ~45 days, the intermediate twice, the root twice (its successor is made when 1.4 identity lifetimes
// plus 20% of its life are left: 123 of 300 days, so the first successor comes on day 177 and the next on day 354). Seed 50's twelve
// devices include a kiosk (NotNow forever), a wanderer and a monthly device, so losses and warnings happen too.
const options = { devices: 12, years: 1, seed: 50, identityDays: 45, tlsDays: 60, intermediateDays: 150, rootDays: 300, runEveryDays: 1 };

function comparable(r: SimulationReport) {
  const { wallSeconds: _w, deviceYearsPerSecond: _d, ...rest } = r;
  return rest;
}

test('with the lifecycle engine, no device online in every renewal window is lost, every loss was warned of, every rollover happens', async () => {
  const report = await simulate({ ...options, lifecycle: true });
  const detail = JSON.stringify(report);
  assert.equal(report.lost.eligible, 0, detail);
  assert.ok(report.lost.total > 0, `the kiosk cannot be renewed and is lost: ${detail}`);
  assert.equal(report.atRisk.lostUnwarned, 0, 'every device lost was named at risk first');
  assert.equal(report.atRisk.lostAndWarned, report.lost.total);
  assert.ok(report.byKind.identity.minLeadDays! > 0, 'warnings come ahead of the loss');
  assert.ok(report.byKind.identity.renewals >= options.devices * 5, `identities renewed: ${report.byKind.identity.renewals}`);
  assert.ok(report.byKind.tls.renewals >= 3);
  assert.ok(report.byKind.intermediate.renewals >= 1);
  assert.equal(report.byKind.root.renewals, 2, 'the root was rolled over twice: its successor is due when 123 of its 300 days are left');
  assert.equal(report.scepIssuances, options.devices + report.byKind.identity.renewals);
});

test('the control run (lifecycle off) loses devices, and the same seed gives the same report', async () => {
  const control = await simulate({ ...options, lifecycle: false });
  assert.ok(control.lost.eligible > 0, JSON.stringify(control));
  assert.equal(control.byKind.identity.renewals, 0);
  const again = await simulate({ ...options, lifecycle: false });
  assert.deepEqual(comparable(again), comparable(control));
});

test('certmdm simulate --processes 2 splits the same fleet across processes and merges one report', () => {
  const run = (processes: number) => {
    const r = spawnSync(
      process.execPath,
      ['bin/certmdm.mjs', 'simulate', '--devices', '8', '--years', '0.25', '--seed', '50', '--json', '--processes', String(processes)],
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
  assert.equal(two.lost.eligible, 0);
  assert.ok(two.byKind.identity.renewals > 0);
});
