import { STRESS_LIFETIMES } from '../src/lifecycle/simulation/lifetimes.ts';
import { simulate } from '../src/lifecycle/simulation/simulate.ts';
import type { BenchRow } from './measure.ts';

/**
 * Simulated device-years per wall-second, single process, beside the rate the RSA private-key operations the same
 * run needed would allow on their own: one signature per device message, and per SCEP issuance seven (the device's
 * CSR and PKIMessage signatures and its CertRep decryption; the RA's decryption, the certificate, the CertRep
 * signature; the renewal profile's signature).
 */
export async function simulationBench(limits: { rsaSign: number }): Promise<BenchRow[]> {
  const report = await simulate({ devices: 200, years: 1, seed: 1, lifecycle: true, lifetimes: STRESS_LIFETIMES, runEveryDays: 1 });
  const privateOps = report.messages + report.scepIssuances * 7;
  const deviceYears = report.devices * report.years;
  const limit = limits.rsaSign / (privateOps / deviceYears);
  const acceptanceHours = (10_000 * 5) / report.deviceYearsPerSecond / 3600;
  console.log(
    `simulation: ${report.devices} devices × ${report.years} year: ${report.lost.total} lost (${report.lost.reachable} reachable), ` +
      `${report.byKind.identity.renewals} identity renewals, ${report.messages} messages, ${report.wallSeconds.toFixed(1)} s; ` +
      `10,000 devices × 5 years: about ${acceptanceHours.toFixed(1)} h in one process at this rate, ${(acceptanceHours / 2).toFixed(1)} h with --processes 2 on 2 cores`,
  );
  return [
    {
      figure: 'simulated device-years per wall-second, one process',
      value: report.deviceYearsPerSecond,
      unit: 'dev-yr/s',
      limitName: 'RSA private ops it needed, at raw speed',
      limit,
    },
  ];
}
