import type { SimulatedLifetimes } from './lifetimes.ts';

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

export interface LossCause {
  devices: number;
  /** Of them, devices that were reachable (online at least once in every 30 days, installing profiles). */
  reachable: number;
  /** How long the devices had been away when they found out, shortest and longest. */
  minAbsentDays: number;
  maxAbsentDays: number;
}

export interface SimulationReport {
  seed: number;
  devices: number;
  years: number;
  lifecycle: boolean;
  pinning: boolean;
  processes: number;
  lifetimes: SimulatedLifetimes;
  byKind: Record<CertificateKind, KindFigures>;
  /** Devices online at least once in every 30 days that install profiles: none of them may be lost. */
  reachable: number;
  lost: {
    total: number;
    /** Lost devices that were reachable: the figure that must be 0. */
    reachable: number;
    byCause: Record<string, LossCause>;
    /** The first few reachable losses by name, for investigation. */
    reachableExamples: string[];
  };
  atRisk: { warned: number; lostAndWarned: number; lostUnwarned: number };
  /** Re-issues of the server certificates devices use without holding them (the TLS chain is in byKind). */
  reissued: { 'profile-signing': number; 'scep-ra': number };
  /** Identities renewed after they had expired (rescue renewal), counted on the devices. */
  rescues: number;
  /** Simulated days on which the server used a certificate past its notAfter (TLS chain, profile signing, RA). */
  expiredInUse: { days: number; first: { day: number; role: string } | null };
  behaviours: Record<string, number>;
  /** Devices by how they present their identity: mutual TLS or Mdm-Signature. */
  transports: Record<string, number>;
  messages: number;
  /** TLS connections devices made (each a full handshake). */
  connections: number;
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
    reachable: 0,
    lost: { total: 0, reachable: 0, byCause: {}, reachableExamples: [] },
    atRisk: { warned: 0, lostAndWarned: 0, lostUnwarned: 0 },
    reissued: { 'profile-signing': 0, 'scep-ra': 0 },
    rescues: 0,
    expiredInUse: { days: 0, first: null },
    behaviours: {},
    transports: {},
    messages: 0,
    connections: 0,
    scepIssuances: 0,
  };
  for (const { report } of shards) {
    merged.devices += report.devices;
    merged.messages += report.messages;
    merged.connections += report.connections;
    merged.scepIssuances += report.scepIssuances;
    merged.rescues += report.rescues;
    // Server-side, like the TLS chain: each shard's server re-issued the same certificates.
    for (const role of ['profile-signing', 'scep-ra'] as const)
      merged.reissued[role] = Math.max(merged.reissued[role], report.reissued[role]);
    merged.reachable += report.reachable;
    merged.lost.total += report.lost.total;
    merged.lost.reachable += report.lost.reachable;
    merged.lost.reachableExamples.push(...report.lost.reachableExamples);
    for (const [cause, from] of Object.entries(report.lost.byCause)) {
      const into = (merged.lost.byCause[cause] ??= { devices: 0, reachable: 0, minAbsentDays: Infinity, maxAbsentDays: 0 });
      into.devices += from.devices;
      into.reachable += from.reachable;
      into.minAbsentDays = Math.min(into.minAbsentDays, from.minAbsentDays);
      into.maxAbsentDays = Math.max(into.maxAbsentDays, from.maxAbsentDays);
    }
    // Each shard ran its own server: its days with an expired certificate in use are the same calendar days.
    if (report.expiredInUse.days > merged.expiredInUse.days) merged.expiredInUse = report.expiredInUse;
    addCounts(merged.behaviours, report.behaviours);
    addCounts(merged.transports, report.transports);
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
  merged.lost.reachableExamples = merged.lost.reachableExamples.sort().slice(0, 10);
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
  const causes = Object.entries(r.lost.byCause).map(
    ([cause, c]) =>
      `    ${String(c.devices).padStart(6)}  ${cause} (${c.reachable} reachable; away ${c.minAbsentDays}–${c.maxAbsentDays} days when they found out)`,
  );
  const l = r.lifetimes;
  return [
    `certmdm simulation — seed ${r.seed}, ${r.devices} devices, ${r.years} years, lifecycle ${r.lifecycle ? 'on' : 'OFF (control run)'}` +
      (r.pinning ? ', ServerURL pinned' : '') +
      (r.processes > 1 ? `, ${r.processes} processes` : ''),
    `  lifetimes: identity ${+l.identityDays.toFixed(2)} d, TLS ${l.tlsDays} d (renewed ${l.tlsRenewBeforeDays} d early at start), ` +
      `intermediate ${l.intermediateDays} d, root ${l.rootDays} d, profile signing and SCEP RA ${l.signingDays} d, challenges ${l.challengeTtlHours} h`,
    `  fleet: ${Object.entries(r.behaviours)
      .map(([b, n]) => `${n} ${b}`)
      .join(', ')}`,
    ...table,
    `  reachable (online at least once in every 30 days, installing profiles): ${r.reachable} of ${r.devices}`,
    `  lost: ${r.lost.total} devices, ${r.lost.reachable} of them reachable` +
      (r.lost.reachableExamples.length ? ` (e.g. ${r.lost.reachableExamples.slice(0, 3).join(', ')})` : ''),
    ...causes,
    `  at risk: ${r.atRisk.warned} devices named; lost after a warning ${r.atRisk.lostAndWarned}, lost without one ${r.atRisk.lostUnwarned}`,
    `  re-issued: profile signing ${r.reissued['profile-signing']}, SCEP RA ${r.reissued['scep-ra']}`,
    `  rescued after expiry: ${r.rescues}; days with an expired server certificate in use: ${r.expiredInUse.days}` +
      (r.expiredInUse.first ? ` (first: day ${r.expiredInUse.first.day}, ${r.expiredInUse.first.role})` : ''),
    `  ${r.messages} MDM messages over ${r.connections} TLS connections (${Object.entries(r.transports)
      .map(([t, n]) => `${n} devices by ${t}`)
      .join(
        ', ',
      )}), ${r.scepIssuances} SCEP issuances; ${r.wallSeconds.toFixed(1)} s wall, ${r.deviceYearsPerSecond.toFixed(2)} device-years/s`,
  ].join('\n');
}
