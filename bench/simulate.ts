import { simulateInProcesses } from '../src/lifecycle/simulation/processes.ts';
import { LIFETIME_PRESETS } from '../src/lifecycle/simulation/lifetimes.ts';
import type { BenchRow } from './measure.ts';

const FLEET = 10_000;
const YEARS = 5;
const PROCESSES = 2;

/**
 * The 10,000-device × 5-year simulation, at production and at stress lifetimes, with two processes on this machine:
 * a smaller fleet over the same five years is run (same horizon, so enrollment and every rollover weigh the same per
 * device) and its wall time scaled by the fleet size. Beside it, the time the RSA private operations the run certainly
 * needed would take at raw speed on every core: the server's signature in each TLS handshake, and per SCEP issuance
 * seven (the device's CSR and PKIMessage signatures and its CertRep decryption; the RA's decryption, the certificate,
 * the CertRep signature; the profile's signature). Device signatures over check-ins and mutual-TLS handshakes are
 * left out, so the floor is low.
 */
export async function simulationBench(limits: { rsaSign: number }): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const [name, devices, targetMinutes] of [
    ['production', 100, 10],
    ['stress', 50, 40],
  ] as const) {
    const report = await simulateInProcesses(
      { devices, years: YEARS, seed: 2026, lifecycle: true, lifetimes: LIFETIME_PRESETS[name], runEveryDays: 1 },
      PROCESSES,
    );
    const scale = FLEET / devices;
    const privateOps = (report.connections + report.scepIssuances * 7) * scale;
    console.log(
      `simulation, ${name} lifetimes: ${devices} devices × ${YEARS} years in ${PROCESSES} processes, ${report.wallSeconds.toFixed(1)} s wall: ` +
        `${report.lost.total} lost (${report.lost.reachable} reachable), ${report.byKind.identity.renewals} identity renewals, ` +
        `${report.connections} TLS connections, ${report.messages} messages, ${report.scepIssuances} SCEP issuances`,
    );
    rows.push({
      figure: `${FLEET.toLocaleString('en')} devices × ${YEARS} years, ${name} lifetimes, ${PROCESSES} processes (scaled from ${devices})`,
      value: (report.wallSeconds * scale) / 60,
      unit: 'min',
      limitName: `its RSA private operations at raw speed on ${PROCESSES} cores`,
      limit: privateOps / (limits.rsaSign * PROCESSES) / 60,
      target: { max: targetMinutes, text: `≤ ${targetMinutes} min` },
    });
  }
  return rows;
}
