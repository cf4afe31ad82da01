import assert from 'node:assert/strict';
import { test } from 'node:test';
import { simulate } from '../../src/lifecycle/simulation/simulate.ts';
import type { SimulationReport } from '../../src/lifecycle/simulation/report.ts';

// Short lifetimes so that every kind of rollover happens within a simulated year: identities renew about every month,
// TLS every ~45 days, the intermediate twice, the root once (successor, delivery, switch).
const options = { devices: 10, years: 1, seed: 42, identityDays: 45, tlsDays: 60, intermediateDays: 150, rootDays: 300, runEveryDays: 1 };

function comparable(r: SimulationReport) {
  const { wallSeconds: _w, deviceYearsPerSecond: _d, ...rest } = r;
  return rest;
}

test('with the lifecycle engine, no device that checks in within each renewal window is lost; every rollover happens', async () => {
  const report = await simulate({ ...options, lifecycle: true });
  assert.equal(report.lost.eligible, 0, JSON.stringify(report));
  assert.equal(report.atRisk.lostUnwarned, 0, 'every device lost was named at risk first');
  assert.ok(report.byKind.identity.renewals >= options.devices * 5, `identities renewed: ${report.byKind.identity.renewals}`);
  assert.ok(report.byKind.tls.renewals >= 3);
  assert.ok(report.byKind.intermediate.renewals >= 1);
  assert.equal(report.byKind.root.renewals, 1, 'the root was rolled over once');
});

test('the control run (lifecycle off) loses devices, and the same seed gives the same report', async () => {
  const control = await simulate({ ...options, lifecycle: false });
  assert.ok(control.lost.eligible > 0, JSON.stringify(control));
  assert.equal(control.byKind.identity.renewals, 0);
  const again = await simulate({ ...options, lifecycle: false });
  assert.deepEqual(comparable(again), comparable(control));
});
