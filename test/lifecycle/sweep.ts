import assert from 'node:assert/strict';
import { productionLifetimes, type SimulatedLifetimes } from '../../src/lifecycle/simulation/lifetimes.ts';
import type { SimulationReport } from '../../src/lifecycle/simulation/report.ts';
import { simulate } from '../../src/lifecycle/simulation/simulate.ts';

/**
 * The lifetime sweep (issue 13, item 8): a small fleet through one lifetime configuration, with the lifecycle engine
 * and without (the control run). Production's ratios at a quarter of their length unless a configuration says
 * otherwise: identities of 91 days, so that a device online once every 30 days can always be renewed.
 */
export interface SweepCase {
  name: string;
  years: number;
  lifetimes: Partial<SimulatedLifetimes>;
  pinning?: boolean;
  /** What must have happened in the lifecycle run for this configuration to have tested anything. */
  expect: (r: SimulationReport) => void;
}

export const SWEEP_DEVICES = 24;
export const SWEEP_SEED = 1301;

export async function runSweepCase(c: SweepCase): Promise<void> {
  const options = {
    devices: SWEEP_DEVICES,
    years: c.years,
    seed: SWEEP_SEED,
    lifetimes: { ...productionLifetimes(0.25), ...c.lifetimes },
    pinning: c.pinning ?? false,
    runEveryDays: 1,
  };
  const report = await simulate({ ...options, lifecycle: true });
  const detail = `${c.name}: ${JSON.stringify({ ...report, byKind: report.byKind }, null, 1)}`;
  assert.ok(report.reachable > SWEEP_DEVICES / 2, `most of the fleet is reachable: ${detail}`);
  assert.equal(report.lost.reachable, 0, `no reachable device lost: ${detail}`);
  assert.equal(report.atRisk.lostUnwarned, 0, `every loss was warned of: ${detail}`);
  for (const kind of Object.values(report.byKind)) if (kind.lost > 0) assert.ok(kind.minLeadDays! > 0, `warned ahead: ${detail}`);
  assert.equal(report.expiredInUse.days, 0, `no certificate in use past its notAfter on any day: ${detail}`);
  assert.ok(report.transports.mtls! > 0 && report.transports.signature! > 0, 'both identity transports in the fleet');
  c.expect(report);

  const control = await simulate({ ...options, lifecycle: false });
  assert.ok(control.lost.reachable > 0, `the control run loses reachable devices: ${c.name}: ${JSON.stringify(control.lost)}`);
  assert.ok(control.expiredInUse.days > 0, `and uses expired certificates: ${c.name}`);
}
