/** What a simulation found, per kind of certificate, and how to read, merge and print it. */
export type CertificateKind = 'identity' | 'tls' | 'intermediate' | 'root';
export const CERTIFICATE_KINDS: readonly CertificateKind[] = ['identity', 'tls', 'intermediate', 'root'];

export interface KindFigures {
  /** Replacements that happened: identities renewed on devices; TLS, intermediates and roots re-issued. */
  renewals: number;
  /** Devices lost to this kind of certificate. */
  lost: number;
  /** Devices named at risk because of this kind of certificate. */
  warned: number;
  lostAfterWarning: number;
  lostUnwarned: number;
  /** Days between the first at-risk warning and the loss, over the devices lost after one. */
  minLeadDays: number | null;
  medianLeadDays: number | null;
}

export interface SimulationReport {
  seed: number;
  devices: number;
  years: number;
  lifecycle: boolean;
  processes: number;
  lifetimes: { identityDays: number; tlsDays: number; intermediateDays: number; rootDays: number };
  byKind: Record<CertificateKind, KindFigures>;
  lost: {
    total: number;
    /** Lost devices that were online at least once in every renewal window: the figure that must be 0. */
    eligible: number;
    byCause: Record<string, number>;
    /** The first few eligible losses by name, for investigation. */
    eligibleExamples: string[];
  };
  atRisk: { warned: number; lostAndWarned: number; lostUnwarned: number };
  behaviours: Record<string, number>;
  messages: number;
  scepIssuances: number;
  wallSeconds: number;
  deviceYearsPerSecond: number;
}

/** A shard's report with the raw lead times, which a merge needs for exact medians. */
export interface ShardResult {
  report: SimulationReport;
  leadDays: Record<CertificateKind, number[]>;
}

export function emptyKindFigures(): KindFigures {
  return { renewals: 0, lost: 0, warned: 0, lostAfterWarning: 0, lostUnwarned: 0, minLeadDays: null, medianLeadDays: null };
}

export function applyLeadTimes(figures: KindFigures, leads: number[]): void {
  const sorted = [...leads].sort((a, b) => a - b);
  figures.minLeadDays = sorted.length ? Math.round(sorted[0]!) : null;
  figures.medianLeadDays = sorted.length ? Math.round(sorted[Math.floor(sorted.length / 2)]!) : null;
}

const addCounts = (into: Record<string, number>, from: Record<string, number>) => {
  for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n;
};

/**
 * One report from the shards of a fleet run in several processes. Device counts add up; the server-side rollovers
 * (TLS, intermediate, root) happened once per shard's server, so they are reported as the most any shard did.
 */
export function mergeShards(shards: ShardResult[], wallSeconds: number): SimulationReport {
  const first = shards[0]!.report;
  const merged: SimulationReport = {
    ...first,
    devices: 0,
    processes: shards.length,
    byKind: Object.fromEntries(CERTIFICATE_KINDS.map((k) => [k, emptyKindFigures()])) as Record<CertificateKind, KindFigures>,
    lost: { total: 0, eligible: 0, byCause: {}, eligibleExamples: [] },
    atRisk: { warned: 0, lostAndWarned: 0, lostUnwarned: 0 },
    behaviours: {},
    messages: 0,
    scepIssuances: 0,
  };
  for (const { report } of shards) {
    merged.devices += report.devices;
    merged.messages += report.messages;
    merged.scepIssuances += report.scepIssuances;
    merged.lost.total += report.lost.total;
    merged.lost.eligible += report.lost.eligible;
    merged.lost.eligibleExamples.push(...report.lost.eligibleExamples);
    addCounts(merged.lost.byCause, report.lost.byCause);
    addCounts(merged.behaviours, report.behaviours);
    for (const key of ['warned', 'lostAndWarned', 'lostUnwarned'] as const) merged.atRisk[key] += report.atRisk[key];
    for (const kind of CERTIFICATE_KINDS) {
      const into = merged.byKind[kind];
      const from = report.byKind[kind];
      into.renewals = kind === 'identity' ? into.renewals + from.renewals : Math.max(into.renewals, from.renewals);
      for (const key of ['lost', 'warned', 'lostAfterWarning', 'lostUnwarned'] as const) into[key] += from[key];
    }
  }
  for (const kind of CERTIFICATE_KINDS)
    applyLeadTimes(
      merged.byKind[kind],
      shards.flatMap((s) => s.leadDays[kind]),
    );
  merged.lost.eligibleExamples = merged.lost.eligibleExamples.sort().slice(0, 10);
  merged.wallSeconds = wallSeconds;
  merged.deviceYearsPerSecond = (merged.devices * merged.years) / wallSeconds;
  return merged;
}

/** The human summary of a simulation. */
export function formatSimulationReport(r: SimulationReport): string {
  const cell = (v: number | null) => String(v ?? '–').padStart(9);
  const table = [
    `  ${'certificate'.padEnd(13)}${['renewals', 'lost', 'at risk', 'warned+lost', 'unwarned', 'min lead', 'med lead'].map((h) => h.padStart(9)).join(' ')}`,
    ...CERTIFICATE_KINDS.map((kind) => {
      const f = r.byKind[kind];
      return `  ${kind.padEnd(13)}${[f.renewals, f.lost, f.warned, f.lostAfterWarning, f.lostUnwarned, f.minLeadDays, f.medianLeadDays].map(cell).join(' ')}`;
    }),
  ];
  const causes = Object.entries(r.lost.byCause).map(([cause, n]) => `    ${String(n).padStart(6)}  ${cause}`);
  return [
    `certmdm simulation — seed ${r.seed}, ${r.devices} devices, ${r.years} years, lifecycle ${r.lifecycle ? 'on' : 'OFF (control run)'}` +
      (r.processes > 1 ? `, ${r.processes} processes` : ''),
    `  lifetimes: identity ${r.lifetimes.identityDays} d, TLS ${r.lifetimes.tlsDays} d, intermediate ${r.lifetimes.intermediateDays} d, root ${r.lifetimes.rootDays} d`,
    `  fleet: ${Object.entries(r.behaviours)
      .map(([b, n]) => `${n} ${b}`)
      .join(', ')}`,
    ...table,
    `  lost: ${r.lost.total} devices, ${r.lost.eligible} of them online at least once in every renewal window` +
      (r.lost.eligibleExamples.length ? ` (e.g. ${r.lost.eligibleExamples.slice(0, 3).join(', ')})` : ''),
    ...causes,
    `  at risk: ${r.atRisk.warned} devices named; lost after a warning ${r.atRisk.lostAndWarned}, lost without one ${r.atRisk.lostUnwarned}`,
    `  ${r.messages} MDM messages, ${r.scepIssuances} SCEP issuances; ${r.wallSeconds.toFixed(1)} s wall, ${r.deviceYearsPerSecond.toFixed(2)} device-years/s`,
  ].join('\n');
}
