import type { ProbeReport } from '../ops/probe.ts';
import { DAY_MS } from '../clock.ts';
import type { CertificateRecord, Store } from '../store/types.ts';
import type { Action } from './model.ts';
import { groupByMonth, type ExpiryGroup, type Schedule, type ScheduledCertificate } from './schedule.ts';

/**
 * `certmdm lifecycle plan` as an administrator reads it: the schedule joined with the inventory (subject, serial),
 * then the actions due now. The schedule is pure; this is the one place that reads the store for it.
 */

/** Identities listed one by one before the rest are counted per month of expiry (unless --all). */
export const SOONEST_IDENTITIES = 5;

export interface ReportedCertificate extends Omit<ScheduledCertificate, 'notAfter' | 'action' | 'warnings'> {
  subject: string;
  serial: string;
  notAfter: string;
  daysLeft: number;
  action: { kind: Action['kind']; at: string; dueNow: boolean } | null;
  warnings?: { days: number; at: string }[];
}

export interface PlanReport {
  at: string;
  /** The server's certificates, soonest expiry first. */
  expiries: ReportedCertificate[];
  identities: {
    count: number;
    byMonth: (Omit<ExpiryGroup, 'firstExpiry' | 'lastExpiry' | 'firstRenewal'> & {
      firstExpiry: string;
      lastExpiry: string;
      firstRenewal: string;
    })[];
    /** Every identity, soonest expiry first. */
    entries: ReportedCertificate[];
  };
  /** What `plan()` says is due now, as the runner will carry it out. */
  due: Action[];
  /**
   * The chain devices are shown at the public URL by the last probe (`certmdm probe`, each lifecycle run): a proxy's
   * perhaps, which certmdm cannot renew but watches. Null before the first probe.
   */
  presented: ProbeReport | null;
}

export async function planReport(
  store: Store,
  scheduled: Schedule,
  due: Action[],
  /** The last probe of the public URL (`lastProbe`), if any. */
  presented: ProbeReport | null = null,
): Promise<PlanReport> {
  const records = new Map((await store.listCertificates({ status: 'active' })).map((r) => [r.id, r]));
  const record = async (id: string): Promise<CertificateRecord | undefined> => records.get(id) ?? (await store.getCertificate(id));
  const report = async ({ notAfter, action, warnings, ...c }: ScheduledCertificate): Promise<ReportedCertificate> => {
    const r = await record(c.id);
    return {
      ...c,
      subject: r?.subject ?? '',
      serial: r?.serialHex ?? '',
      notAfter: notAfter.toISOString(),
      daysLeft: Math.floor((notAfter.getTime() - scheduled.at.getTime()) / DAY_MS),
      action: action && { ...action, at: action.at.toISOString() },
      ...(warnings ? { warnings: warnings.map((w) => ({ days: w.days, at: w.at.toISOString() })) } : {}),
    };
  };
  const expiries = [...scheduled.server, ...(await previousIntermediates(store, scheduled, [...records.values()]))].sort(
    (a, b) => a.notAfter.getTime() - b.notAfter.getTime(),
  );
  return {
    at: scheduled.at.toISOString(),
    expiries: await Promise.all(expiries.map(report)),
    identities: {
      count: scheduled.identities.length,
      byMonth: groupByMonth(scheduled.identities).map((g) => ({
        ...g,
        firstExpiry: g.firstExpiry.toISOString(),
        lastExpiry: g.lastExpiry.toISOString(),
        firstRenewal: g.firstRenewal.toISOString(),
      })),
      entries: await Promise.all(scheduled.identities.map(report)),
    },
    due,
    presented,
  };
}

/**
 * Intermediates rolled away from stay active, so the identities they issued keep working until renewed. The planner
 * does not act on them (renewing those identities does), and its facts hold only the current one; but devices still
 * depend on them, so they are listed with the devices whose identity they issued.
 */
async function previousIntermediates(store: Store, scheduled: Schedule, active: CertificateRecord[]): Promise<ScheduledCertificate[]> {
  const listed = new Set(scheduled.server.map((e) => e.id));
  const inUse = new Set(scheduled.identities.map((i) => i.id));
  const previous = active.filter((r) => r.role === 'intermediate' && !listed.has(r.id));
  return Promise.all(
    previous.map(async (r) => ({
      role: 'intermediate' as const,
      id: r.id,
      notAfter: r.notAfter,
      dependants: {
        devices: (await store.listIssuedBy(r.id)).filter((c) => inUse.has(c.id)).length,
        profiles: [],
        through: 'issued identities still in use',
      },
      action: null,
      note: 'previous intermediate: issues no more; its identities are renewed from the current one',
    })),
  );
}

const day = (iso: string) => iso.slice(0, 10);

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows]
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** One row per server certificate, the soonest identities one by one and the rest per month (all with `all`). */
export function formatPlanReport(report: PlanReport, options: { all: boolean }): string {
  type Row = { notAfter: string; cells: string[] };
  const row = (c: ReportedCertificate, name: string): Row => ({
    notAfter: c.notAfter,
    cells: [
      day(c.notAfter),
      c.role,
      name,
      String(c.dependants.devices),
      c.dependants.profiles.join(',') || '-',
      // No action of the planner's: the note says why (the push certificate: an operator renews it with Apple).
      c.action?.kind ?? 'none',
      c.action ? (c.action.dueNow ? 'now' : day(c.action.at)) : c.warnings?.[0] ? `warn ${day(c.warnings[0].at)}` : '-',
      [c.dependants.through, c.note].filter(Boolean).join('; '),
    ],
  });
  const short = (c: ReportedCertificate) => `${c.subject || c.id}${c.serial ? ` #${c.serial.slice(0, 8)}` : ''}`;
  const rows: Row[] = report.expiries.map((c) => row(c, short(c)));
  const shown = options.all ? report.identities.entries : report.identities.entries.slice(0, SOONEST_IDENTITIES);
  rows.push(...shown.map((c) => row(c, `${c.deviceId} ${short(c)}`)));
  if (!options.all) {
    // The rest, counted per month of expiry: bounded for any fleet size.
    const rest = report.identities.entries.slice(SOONEST_IDENTITIES);
    const months = new Map<string, { count: number; first: ReportedCertificate; renewal: string; dueNow: number }>();
    for (const c of rest) {
      const month = c.notAfter.slice(0, 7);
      const m = months.get(month);
      const renewal = c.action?.at ?? c.notAfter;
      if (!m) months.set(month, { count: 1, first: c, renewal, dueNow: c.action?.dueNow ? 1 : 0 });
      else {
        m.count += 1;
        if (renewal < m.renewal) m.renewal = renewal;
        if (c.action?.dueNow) m.dueNow += 1;
      }
    }
    for (const [month, m] of months)
      rows.push({
        notAfter: m.first.notAfter,
        cells: [
          day(m.first.notAfter),
          'device-identity',
          `${m.count} more expiring in ${month}`,
          String(m.count),
          '-',
          'renew-identity',
          m.dueNow > 0 ? `now (${m.dueNow})` : `from ${day(m.renewal)}`,
          'each device its own identity',
        ],
      });
  }
  const probe = report.presented;
  for (const c of probe?.chain ?? [])
    rows.push({
      notAfter: c.notAfter,
      cells: [
        day(c.notAfter),
        'presented',
        `${c.subject} #${c.serial.slice(0, 8)}`,
        String(report.identities.count),
        '-',
        'none',
        '-',
        `shown to devices at ${probe!.url} (probed ${day(probe!.at)}); renewed where it is served, not by certmdm` +
          (probe!.trusted ? '' : `; NOT TRUSTED: ${probe!.problem}`),
      ],
    });
  rows.sort((a, b) => a.notAfter.localeCompare(b.notAfter));
  const lines = [
    `Upcoming expiries as of ${day(report.at)}, soonest first (the dates the runner acts on if nothing changes):`,
    table(
      ['NOT AFTER', 'ROLE', 'CERTIFICATE', 'DEVICES', 'PROFILES', 'PLANNED ACTION', 'ON', 'DEPENDS ON IT / NOTE'],
      rows.map((r) => r.cells),
    ),
  ];
  const count = report.identities.count;
  if (!options.all && count > SOONEST_IDENTITIES)
    lines.push(`${count} device identities: the soonest ${SOONEST_IDENTITIES} listed, the rest per month (--all lists every one)`);
  lines.push('', 'Due now:', formatDue(report.due, options));
  return lines.join('\n');
}

/** Routine per-device actions listed one by one before the rest are counted (unless --all); at-risk devices always are. */
export const ROUTINE_DEVICE_ACTIONS_SHOWN = 10;
const ROUTINE: ReadonlySet<Action['kind']> = new Set(['renew-identity', 'deliver-root']);

/** The actions due now, soonest deadline first, as `lifecycle plan` has always printed them. */
export function formatDue(actions: Action[], options: { all: boolean } = { all: true }): string {
  if (actions.length === 0) return 'nothing is due: every certificate has more than its renewal window left';
  const shown = new Map<Action['kind'], number>();
  const lines: string[] = [];
  for (const a of actions) {
    if (!options.all && ROUTINE.has(a.kind)) {
      const n = (shown.get(a.kind) ?? 0) + 1;
      shown.set(a.kind, n);
      if (n > ROUTINE_DEVICE_ACTIONS_SHOWN) continue;
    }
    lines.push(`${a.deadline.toISOString().slice(0, 10)}  ${a.kind.padEnd(26)} ${'deviceId' in a ? a.deviceId + '  ' : ''}${a.reason}`);
  }
  for (const [kind, n] of shown)
    if (n > ROUTINE_DEVICE_ACTIONS_SHOWN)
      lines.push(`... and ${n - ROUTINE_DEVICE_ACTIONS_SHOWN} more ${kind} (--all or --json lists every one)`);
  return lines.join('\n');
}
