import client from 'prom-client';
import type { Clock } from '../clock.ts';
import { DEFAULT_POLICY, type Action, type LifecycleState } from '../lifecycle/model.ts';
import { plan } from '../lifecycle/planner.ts';
import { schedule } from '../lifecycle/schedule.ts';
import { lifecycleState } from '../lifecycle/state.ts';
import { identityStanding } from '../mdm/rescue-policy.ts';
import type { AuditEvent, CertificateRecord, CertificateRole, Store } from '../store/types.ts';
import { lastProbe, type ProbeReport } from './probe.ts';
import { commonName } from '../pki/inventory.ts';

/** The server-side roles whose certificates are exported one series each (device identities are aggregated). */
const SERVER_ROLES: CertificateRole[] = ['root', 'intermediate', 'tls', 'profile-signing', 'scep-ra', 'push'];

/** A device's lifecycle state, as the metrics and the alerts name it. */
export type DeviceState = 'current' | 'renewing' | 'at_risk' | 'rescued' | 'lost';
export const DEVICE_STATES: DeviceState[] = ['current', 'renewing', 'at_risk', 'rescued', 'lost'];

/** Time-to-expiry buckets for device identities, in seconds: a day to a year. */
const EXPIRY_BUCKETS = [1, 7, 14, 30, 60, 90, 180, 365].map((days) => days * 86_400);

/**
 * Each enrolled device with an identity in exactly one state: lost (its identity expired beyond the rescue grace),
 * rescued (expired within it), at risk (the planner names it), renewing (a renewal in flight), else current. Pure.
 */
export function deviceStates(state: LifecycleState, actions: Action[]): Record<DeviceState, number> {
  const atRisk = new Set(actions.flatMap((a) => (a.kind === 'device-at-risk' ? [a.deviceId] : [])));
  const counts = Object.fromEntries(DEVICE_STATES.map((s) => [s, 0])) as Record<DeviceState, number>;
  for (const device of state.devices) {
    if (!device.identity) continue;
    const standing = identityStanding(device.identity.notAfter, state.now, state.rescueGrace ?? 0);
    const s: DeviceState =
      standing !== 'valid' ? standing : atRisk.has(device.id) ? 'at_risk' : device.renewalStartedAt ? 'renewing' : 'current';
    counts[s]++;
  }
  return counts;
}

const seconds = (d: Date) => d.getTime() / 1000;

export interface MetricsSource {
  store: Store;
  clock: Clock;
  config: { pinServerUrl: boolean; identityDays: number; rescueGraceDays: number; lifecycleIntervalMinutes: number };
}

/**
 * certmdm's Prometheus metrics. Deadlines are absolute timestamps (as x509-certificate-exporter and cert-manager
 * export them), read from the store at each scrape, so every instance reports the same inventory; device identities
 * are a histogram and counts by state, never a series per device. Counters are this process's own.
 */
export class Metrics {
  readonly registry = new client.Registry();
  readonly checkIns: client.Counter<'message_type' | 'outcome'>;
  readonly commandReports: client.Counter<'status' | 'outcome'>;
  readonly #refusals: client.Counter<'reason'>;
  readonly #scep: client.Counter<'outcome'>;
  readonly #pushes: client.Counter<'reason'>;
  readonly #lifecycleActions: client.Counter<'kind' | 'result'>;
  readonly #lifecycleLastRun: client.Gauge;

  constructor(private readonly source: MetricsSource) {
    const registers = [this.registry];
    const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
      new client.Counter<L>({ name, help, labelNames, registers });
    client.collectDefaultMetrics({ register: this.registry });
    // Gauges prom-client names like counters: promtool's lint refuses them, and alerting on them would mislead.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
      this.registry.removeSingleMetric(name);
    this.checkIns = counter('certmdm_checkins_total', 'Check-in messages by MessageType and outcome (ok, refused, error).', [
      'message_type',
      'outcome',
    ]);
    this.commandReports = counter(
      'certmdm_command_reports_total',
      'Command reports (Idle, Acknowledged, Error, CommandFormatError, NotNow) by outcome (ok, refused, error).',
      ['status', 'outcome'],
    );
    this.#refusals = counter(
      'certmdm_identity_refusals_total',
      'MDM requests refused, by the named reason (not-our-ca, certificate-revoked, bound-to-another-enrollment, ...).',
      ['reason'],
    );
    this.#scep = counter('certmdm_scep_issuances_total', 'SCEP PKIOperations by outcome (ok: a certificate issued; denied; error).', [
      'outcome',
    ]);
    this.#pushes = counter('certmdm_pushes_total', 'APNs pushes by reason (Success, or the reason APNs or certmdm gave).', ['reason']);
    this.#lifecycleActions = counter(
      'certmdm_lifecycle_actions_total',
      'Lifecycle actions taken, by kind and result (ok, denied, error).',
      ['kind', 'result'],
    );
    this.#lifecycleLastRun = new client.Gauge({
      name: 'certmdm_lifecycle_last_run_timestamp_seconds',
      help: 'When this instance last completed a lifecycle run (0: never; only the instance holding the lease runs it).',
      registers,
    });
    new client.Gauge({
      name: 'certmdm_lifecycle_interval_seconds',
      help: 'The configured interval between lifecycle runs (0: the runner is off on this instance).',
      registers,
    }).set(source.config.lifecycleIntervalMinutes * 60);
    this.#inventoryGauges(registers);
  }

  /** The audit log's events, counted: SCEP, refusals, pushes and lifecycle actions. */
  observe(event: AuditEvent): void {
    const detail = event.detail ?? {};
    if (event.action === 'scep.pkioperation') this.#scep.inc({ outcome: event.outcome });
    if ((event.action === 'mdm.identity' || event.action === 'mdm.request') && typeof detail.refusal === 'string')
      this.#refusals.inc({ reason: detail.refusal });
    if (event.action === 'push.sent' && detail.reasons && typeof detail.reasons === 'object')
      for (const [reason, n] of Object.entries(detail.reasons as Record<string, unknown>))
        if (typeof n === 'number') this.#pushes.inc({ reason }, n);
    if (event.action.startsWith('lifecycle.') || event.action.startsWith('pki.'))
      this.#lifecycleActions.inc({ kind: event.action, result: event.outcome });
  }

  lifecycleRan(at: Date): void {
    this.#lifecycleLastRun.set(seconds(at));
  }

  async render(): Promise<string> {
    return this.registry.metrics();
  }

  /** Gauges read from the store at each scrape; each reads the same snapshot (prom-client collects concurrently). */
  #inventoryGauges(registers: client.Registry[]): void {
    const snapshot = () => this.#snapshot();
    // One series per certificate, each gauge a timestamp of it; absent where `pick` says null.
    const certificateGauge = (name: string, help: string, pick: (c: Snapshot['certificates'][number]) => number | null) =>
      new client.Gauge({
        name,
        help,
        labelNames: ['role', 'subject_cn', 'serial'],
        registers,
        async collect() {
          this.reset();
          for (const c of (await snapshot()).certificates) {
            const value = pick(c);
            if (value !== null) this.set(c.labels, value);
          }
        },
      });
    certificateGauge(
      'certmdm_certificate_not_after_timestamp_seconds',
      'notAfter of each active server-side certificate (root, intermediate, TLS, profile signing, SCEP RA, push), and of the chain presented at the public URL (role="presented").',
      (c) => c.notAfter,
    );
    certificateGauge('certmdm_certificate_not_before_timestamp_seconds', 'notBefore of each of those certificates.', (c) => c.notBefore);
    certificateGauge(
      'certmdm_certificate_renewal_timestamp_seconds',
      'When certmdm plans to replace each server-side certificate (now when due); absent when nothing automatic replaces it (the push certificate: see its expiry).',
      (c) => c.renewal,
    );
    new client.Gauge({
      name: 'certmdm_devices',
      help: 'Enrolled devices by lifecycle state: current, renewing, at_risk, rescued, lost.',
      labelNames: ['state'],
      registers,
      async collect() {
        this.reset();
        const { states } = await snapshot();
        if (states) for (const s of DEVICE_STATES) this.set({ state: s }, states[s]);
      },
    });
    new client.Histogram({
      name: 'certmdm_device_identity_expiry_seconds',
      help: "Time left until each enrolled device's identity expires (negative once expired), at the scrape.",
      buckets: EXPIRY_BUCKETS,
      registers,
      async collect() {
        this.reset();
        for (const left of (await snapshot()).expiries) this.observe(left);
      },
    });
    new client.Gauge({
      name: 'certmdm_presented_chain_trusted',
      help: 'Whether devices trust the chain the public URL presented at the last probe (1), or not (0): it must end in a root they hold.',
      registers,
      async collect() {
        this.reset();
        const { probe } = await snapshot();
        if (probe) this.set(probe.trusted ? 1 : 0);
      },
    });
    new client.Gauge({
      name: 'certmdm_presented_chain_probe_timestamp_seconds',
      help: 'When the public URL was last probed (certmdm probe, or the lifecycle runner).',
      registers,
      async collect() {
        this.reset();
        const { probe } = await snapshot();
        if (probe) this.set(Date.parse(probe.at) / 1000);
      },
    });
    new client.Gauge({
      name: 'certmdm_command_queue_depth',
      help: 'Commands waiting for delivery across every channel, by status (queued, not_now).',
      labelNames: ['status'],
      registers,
      async collect() {
        const { depth } = await snapshot();
        this.set({ status: 'queued' }, depth.queued);
        this.set({ status: 'not_now' }, depth.notNow);
      },
    });
  }

  #cached?: { at: number; snapshot: Promise<Snapshot> };

  /** The store's facts for one scrape, shared by its metrics (and by scrapes less than a second apart). */
  #snapshot(): Promise<Snapshot> {
    const at = Date.now();
    if (!this.#cached || at - this.#cached.at > 1000) this.#cached = { at, snapshot: readSnapshot(this.source) };
    return this.#cached.snapshot;
  }
}

interface Snapshot {
  /** Server-side certificates certmdm holds, and those of the chain the last probe saw at the public URL. */
  certificates: {
    labels: { role: string; subject_cn: string; serial: string };
    notAfter: number;
    notBefore: number;
    renewal: number | null;
  }[];
  states: Record<DeviceState, number> | null;
  expiries: number[];
  depth: { queued: number; notNow: number };
  probe: ProbeReport | null;
}

async function readSnapshot({ store, clock, config }: MetricsSource): Promise<Snapshot> {
  const now = clock();
  const certificates = (await Promise.all(SERVER_ROLES.map((role) => store.listCertificates({ role, status: 'active' })))).flat();
  const depth = await store.queueDepth();
  const probe = await lastProbe(store);
  let state: LifecycleState;
  try {
    state = await lifecycleState(store, now, {
      pinning: config.pinServerUrl,
      identityDays: config.identityDays,
      rescueGraceDays: config.rescueGraceDays,
    });
  } catch {
    // No CA yet: certificates as they are, nothing planned.
    state = undefined as never;
  }
  const planned = state ? new Map(schedule(state, DEFAULT_POLICY).server.map((e) => [e.id, e.action])) : new Map();
  return {
    certificates: certificates
      .map((c: CertificateRecord): Snapshot['certificates'][number] => ({
        labels: { role: c.role, subject_cn: commonName(c.subject), serial: c.serialHex },
        notAfter: seconds(c.notAfter),
        notBefore: seconds(c.notBefore),
        renewal: planned.get(c.id) ? seconds(planned.get(c.id)!.at) : null,
      }))
      .concat(
        // What devices are shown at the public URL (a proxy's chain, perhaps): watched, though certmdm cannot renew it.
        (probe?.chain ?? []).map((c) => ({
          labels: { role: 'presented', subject_cn: commonName(c.subject), serial: c.serial },
          notAfter: Date.parse(c.notAfter) / 1000,
          notBefore: Date.parse(c.notBefore) / 1000,
          renewal: null,
        })),
      ),
    states: state ? deviceStates(state, plan(state, DEFAULT_POLICY)) : null,
    expiries: state ? state.devices.flatMap((d) => (d.identity ? [(d.identity.notAfter.getTime() - now.getTime()) / 1000] : [])) : [],
    depth,
    probe,
  };
}
