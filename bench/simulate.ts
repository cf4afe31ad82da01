import { simulate, SIMULATION_DEFAULTS } from '../src/lifecycle/simulation/simulate.ts';
import type { BenchRow } from './measure.ts';

/**
 * Simulated device-years per wall-second (single process), beside the rate the RSA private-key operations the
 * same run needed would allow on their own: one signature per device message, and per renewal about six (SCEP
 * CSR, PKIMessage, key transport, certificate, CertRep, profile).
 */
export async function simulationBench(limits: { rsaSign: number }): Promise<BenchRow[]> {
  const report = await simulate({ devices: 40, years: 1, seed: 1, lifecycle: true, ...SIMULATION_DEFAULTS });
  const renewals = report.byKind.identity.renewals + report.devices; // first enrollments are renewals' twins
  const privateOps = report.messages + renewals * 6;
  const deviceYears = report.devices * report.years;
  const limit = limits.rsaSign / (privateOps / deviceYears);
  console.log(
    `simulation: ${report.devices} devices × ${report.years} year: ${report.lost.total} lost (${report.lost.eligible} eligible), ` +
      `${report.byKind.identity.renewals} identity renewals, ${report.messages} messages, ${report.wallSeconds.toFixed(1)} s; ` +
      `10,000 devices × 5 years would take about ${((10_000 * 5) / report.deviceYearsPerSecond / 3600).toFixed(1)} h at this rate`,
  );
  return [{ figure: 'simulated device-years per wall-second', value: report.deviceYearsPerSecond, unit: 'dev-yr/s', limitName: 'RSA private ops it needed, at raw speed', limit }];
}
