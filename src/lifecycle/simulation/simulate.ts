import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePki, openApp, type AppContext } from '../../app/context.ts';
import { createServices } from '../../app/services.ts';
import { DAY_MS } from '../../clock.ts';
import { resolveConfig } from '../../config.ts';
import { buildHttpServer, swapSecureContext } from '../../http/server.ts';
import { createLogger } from '../../log.ts';
import type { ServerPki } from '../../pki/server-pki.ts';
import type { ChannelKey } from '../../store/types.ts';
import { DEFAULT_POLICY } from '../model.ts';
import { LifecycleRunner } from '../runner.ts';
import { KeyPool, SimulatedDevice, type SessionOutcome } from './device.ts';
import { acceptsProfiles, advance, finish, fleetMember, type FleetMember } from './fleet.ts';
import type { SimulatedLifetimes } from './lifetimes.ts';
import { LoopbackNetwork } from './network.ts';
import {
  CERTIFICATE_KINDS,
  applyLeadTimes,
  emptyKindFigures,
  type CertificateKind,
  type KindFigures,
  type ShardResult,
  type SimulationReport,
} from './report.ts';
import { CertificateCache } from './trust.ts';

const TOPIC = 'com.apple.mgmt.External.00000000-0000-4000-8000-000000000000';
const HOSTNAME = 'mdm.sim.test';
/**
 * Devices in session at once: the server is in this process, so while one device waits for the loopback the server
 * and other devices work (each device draws from its own random stream, so the order does not change what happens).
 */
const CONCURRENT_SESSIONS = 4;

async function inParallel<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** A device that put a command off polls again later the same day when it is no longer busy, up to this many times. */
const SESSIONS_PER_DAY = 8;
/**
 * Reachable, independently of any policy: online at least once in every 30 days and willing to install profiles.
 * No reachable device may be lost.
 */
export const REACHABLE_GAP_DAYS = 30;

export interface SimulationOptions {
  devices: number;
  years: number;
  seed: number;
  /** Off: the control run, where nothing renews anything. */
  lifecycle: boolean;
  lifetimes: SimulatedLifetimes;
  /** ServerURL pinning (`--pin-server-url`). */
  pinning?: boolean;
  /** `--rescue-grace-days` (default 30; the control run has none). */
  rescueGraceDays?: number;
  /** How often (simulated days) the lifecycle engine runs. */
  runEveryDays: number;
  /** Simulate only devices i with i % count === index (one process of a fleet split across several). */
  shard?: { index: number; count: number };
  progress?: (fraction: number) => void;
  /** Called on each lifecycle day before the runner, with the server's store: tests check the store's facts there. */
  observe?: (server: { app: AppContext; now: Date }) => Promise<void>;
}

interface Member {
  fleet: FleetMember;
  device: SimulatedDevice;
  enrolled: boolean;
  lost?: { kind: CertificateKind; cause: string; at: Date; absentDays: number };
}

/** The server's own certificates a device depends on at every moment: the TLS chain, profile signing, the RA. */
function liveCertificates(pki: ServerPki) {
  return [
    { role: 'tls', cert: pki.tls.certificate },
    { role: 'intermediate', cert: pki.authority.intermediate },
    { role: 'root', cert: pki.authority.root },
    { role: 'profile-signing', cert: pki.profileSigning.certificate },
    { role: 'scep-ra', cert: pki.scepRa.certificate },
  ];
}

/** Refusal texts name no device or certificate, so causes group; long hex (fingerprints, serials) is elided. */
const generalised = (text: string) => text.replace(/[0-9a-f]{12,}/gi, '…').split('\n')[0]!;

/**
 * The time-travel fleet simulator. The real server (the HTTPS listener `serve` runs, SCEP, profiles, the MDM check-in,
 * the binding, the lifecycle runner with its TLS hot swap) runs in-process on a virtual clock and listens on
 * loopback; simulated devices connect to it over real TLS, decide themselves whether to trust the chain they are
 * shown, and present their identity by mutual TLS or Mdm-Signature. Devices connect when a push is waiting and they
 * are online (event-driven: a day on which nothing is queued for a device costs nothing). A device is lost when what
 * it experiences says so: a handshake it does not trust, or its identity refused.
 */
export async function simulateShard(options: SimulationOptions): Promise<ShardResult> {
  const started = performance.now();
  const shard = options.shard ?? { index: 0, count: 1 };
  const dir = mkdtempSync(join(tmpdir(), 'certmdm-simulate-'));
  const start = new Date(Date.UTC(2027, 0, 1));
  const horizon = Math.round(options.years * 365);
  const lifetimes = options.lifetimes;
  let now = start;
  const config = resolveConfig(
    {
      data: join(dir, 'data'),
      'root-algorithm': 'rsa-2048',
      hostname: [HOSTNAME],
      listen: '127.0.0.1',
      'public-url': `https://${HOSTNAME}`,
      'push-topic': TOPIC,
      'root-days': String(lifetimes.rootDays),
      'intermediate-days': String(lifetimes.intermediateDays),
      'tls-days': String(lifetimes.tlsDays),
      'tls-renew-before-days': String(lifetimes.tlsRenewBeforeDays),
      'signing-days': String(lifetimes.signingDays),
      'identity-days': String(lifetimes.identityDays),
      'challenge-ttl-hours': String(lifetimes.challengeTtlHours),
      'mdm-identity-sources': ['mtls', 'signature'],
      'pin-server-url': String(options.pinning ?? false),
      // The control run is the server without what certmdm adds: no lifecycle engine and no rescue renewal.
      'rescue-grace-days': String(options.lifecycle ? (options.rescueGraceDays ?? 30) : 0),
    },
    {},
  );
  const app = await openApp(config, { logger: createLogger('silent'), clock: () => now, create: true });
  let closeServer = async () => {};
  try {
    const pki = await ensurePki(app);
    const services = createServices(app, pki);
    const server = await buildHttpServer(app, pki, services);
    closeServer = () => server.close();
    await server.listen({ host: '127.0.0.1', port: 0 });
    const woken = new Set<string>();
    const runner = new LifecycleRunner(
      {
        app,
        pki,
        profiles: services.profiles,
        push: { push: async (channels: ChannelKey[]) => channels.forEach((c) => woken.add(c.enrollmentId)) },
        onTlsChange: (live) => swapSecureContext(server, app, live),
      },
      DEFAULT_POLICY,
    );
    const address = server.server.address();
    if (!address || typeof address === 'string') throw new Error('the simulated server has no port');
    const cache = new CertificateCache();
    const network = new LoopbackNetwork(address.port, HOSTNAME, cache);
    let messages = 0;
    const link = { connect: network.connect.bind(network), now: () => now, topic: TOPIC, sent: () => void messages++ };
    const keys = new KeyPool(Math.min(16, options.devices), SimulatedDevice.requesterValidity(start, horizon));

    const members: Member[] = [];
    for (let i = shard.index; i < options.devices; i += shard.count) {
      const fleet = fleetMember(options.seed, i, horizon);
      const transport = i % 2 === 0 ? 'mtls' : 'signature';
      members.push({
        fleet,
        device: new SimulatedDevice(fleet.udid, fleet.behaviour, fleet.random, link, keys, i, transport, cache),
        enrolled: false,
      });
    }
    const byUdid = new Map(members.map((m) => [m.fleet.udid, m]));
    /** The devices a push woke that are online today (taken out of `woken`); the others keep their push. */
    const onlineToday = (pushed: Set<string>, day: number): Member[] => {
      const online: Member[] = [];
      for (const udid of pushed) {
        const m = byUdid.get(udid);
        if (m && !m.lost && m.enrolled) {
          advance(m.fleet.availability, day);
          if (m.fleet.availability.nextOnline !== day) continue;
          online.push(m);
        }
        pushed.delete(udid);
      }
      return online;
    };
    const enrollOn = new Map<number, Member[]>();
    for (const m of members) enrollOn.set(m.fleet.enrollDay, [...(enrollOn.get(m.fleet.enrollDay) ?? []), m]);

    // When the TLS chain last moved to another root: a device lacking that root was lost from then.
    let tlsRoot = pki.authority.root.fingerprintSha256;
    let tlsRootSince = now;

    /** Records what the device experienced; `day` is when it found out, after the absence that ended that day. */
    const rescueGraceMs = (options.lifecycle ? (options.rescueGraceDays ?? 30) : 0) * DAY_MS;
    const lose = (m: Member, outcome: Exclude<SessionOutcome, 'done' | 'not-now'>, day: number) => {
      const absentDays = day - m.fleet.availability.lastOnline;
      const identityEnd = m.device.notAfter;
      // Past its rescue grace, the identity was gone whatever the handshake finds now: that is what lost the device.
      const identityGone = m.enrolled && identityEnd.getTime() + rescueGraceMs <= now.getTime();
      if ('untrusted' in outcome) {
        const { kind, reason, at } = outcome.untrusted;
        const brokeAt = at ?? (kind === 'root' ? tlsRootSince : now);
        m.lost =
          identityGone && identityEnd < brokeAt
            ? { kind: 'identity', cause: `identity certificate expired while away (then: ${reason})`, at: identityEnd, absentDays }
            : { kind, cause: reason, at: brokeAt, absentDays };
        return;
      }
      const cause = `the server refused the identity (${outcome.refused}: ${generalised(outcome.reason)})`;
      const failure = m.device.lastFailure ? `; the last renewal failed: ${generalised(m.device.lastFailure)}` : '';
      const expired = identityEnd <= now;
      m.lost = { kind: 'identity', cause: cause + (expired ? failure : ''), at: expired ? identityEnd : now, absentDays };
    };

    const renewals: Record<Exclude<CertificateKind, 'identity'>, number> = { tls: 0, intermediate: 0, root: 0 };
    const reissued = { 'profile-signing': 0, 'scep-ra': 0 };
    const ids = () => ({
      tls: pki.tls.certificate.id,
      intermediate: pki.authority.intermediate.id,
      root: pki.authority.root.id,
      'profile-signing': pki.profileSigning.certificate.id,
      'scep-ra': pki.scepRa.certificate.id,
    });
    let current = ids();
    /** First at-risk warning per device and certificate kind. */
    const warnings = new Map<string, Partial<Record<CertificateKind, Date>>>();
    /** Days on which a certificate the server depends on was in use past its notAfter (the property: none). */
    const expiredInUse: { day: number; role: string }[] = [];

    for (let day = 0; day <= horizon; day++) {
      now = new Date(start.getTime() + day * DAY_MS);
      for (const m of enrollOn.get(day) ?? []) {
        const generated = await services.profiles.enrollment({ identity: 'scep', createdBy: 'simulator' });
        const outcome = await m.device.enroll(generated.body);
        if (typeof outcome === 'object') lose(m, outcome, day);
        else m.enrolled = true;
      }
      if (options.lifecycle && day > 0 && day % options.runEveryDays === 0) {
        await options.observe?.({ app, now });
        const run = await runner.run();
        for (const action of run.planned) {
          if (action.kind !== 'device-at-risk') continue;
          const seen = warnings.get(action.deviceId) ?? {};
          seen[action.dependency] ??= now;
          warnings.set(action.deviceId, seen);
        }
        const next = ids();
        for (const kind of ['tls', 'intermediate', 'root'] as const) if (next[kind] !== current[kind]) renewals[kind]++;
        for (const role of ['profile-signing', 'scep-ra'] as const) if (next[role] !== current[role]) reissued[role]++;
        current = next;
        if (pki.authority.root.fingerprintSha256 !== tlsRoot) {
          tlsRoot = pki.authority.root.fingerprintSha256;
          tlsRootSince = now;
        }
      }
      for (const { role, cert } of liveCertificates(pki)) if (cert.notAfter <= now) expiredInUse.push({ day, role });

      // Devices with a push waiting that are online today connect; the others keep it until they are. A push that
      // arrives during today's sessions is answered today by a device that is online.
      for (let batch = onlineToday(woken, day); batch.length > 0; batch = onlineToday(woken, day)) {
        await inParallel(batch, CONCURRENT_SESSIONS, async (m) => {
          for (let session = 0; session < SESSIONS_PER_DAY; session++) {
            const outcome = await m.device.session();
            if (typeof outcome === 'object') {
              lose(m, outcome, day);
              break;
            }
            if (outcome !== 'not-now') break;
          }
        });
      }
      options.progress?.(day / horizon);
    }

    // The end of the horizon: every device still enrolled tries once more, as if it came online now.
    for (const m of members) {
      finish(m.fleet.availability);
      if (m.lost || !m.enrolled) continue;
      const outcome = await m.device.probe();
      if (typeof outcome === 'object') lose(m, outcome, horizon);
    }

    const leadDays = Object.fromEntries(CERTIFICATE_KINDS.map((k) => [k, [] as number[]])) as Record<CertificateKind, number[]>;
    const byKind = Object.fromEntries(CERTIFICATE_KINDS.map((k) => [k, emptyKindFigures()])) as Record<CertificateKind, KindFigures>;
    const report: SimulationReport = {
      seed: options.seed,
      devices: members.length,
      years: options.years,
      lifecycle: options.lifecycle,
      pinning: options.pinning ?? false,
      processes: 1,
      lifetimes,
      byKind,
      reachable: 0,
      lost: { total: 0, reachable: 0, byCause: {}, reachableExamples: [] },
      atRisk: { warned: 0, lostAndWarned: 0, lostUnwarned: 0 },
      reissued,
      rescues: 0,
      expiredInUse: { days: new Set(expiredInUse.map((e) => e.day)).size, first: expiredInUse[0] ?? null },
      behaviours: {},
      transports: {},
      messages,
      connections: network.connections,
      scepIssuances: 0,
      wallSeconds: 0,
      deviceYearsPerSecond: 0,
    };
    for (const kind of ['tls', 'intermediate', 'root'] as const) byKind[kind].renewals = renewals[kind];
    for (const m of members) {
      const reachable = acceptsProfiles(m.fleet.behaviour) && m.fleet.availability.longestGap <= REACHABLE_GAP_DAYS;
      if (reachable) report.reachable++;
      report.behaviours[m.fleet.behaviour] = (report.behaviours[m.fleet.behaviour] ?? 0) + 1;
      report.transports[m.device.transport] = (report.transports[m.device.transport] ?? 0) + 1;
      byKind.identity.renewals += m.device.identityRenewals;
      report.rescues += m.device.rescues;
      report.scepIssuances += 1 + m.device.identityRenewals;
      const warned = warnings.get(m.fleet.udid) ?? {};
      for (const kind of CERTIFICATE_KINDS) if (warned[kind]) byKind[kind].warned++;
      if (Object.keys(warned).length) report.atRisk.warned++;
      if (!m.lost) continue;
      report.lost.total++;
      const cause = (report.lost.byCause[m.lost.cause] ??= { devices: 0, reachable: 0, minAbsentDays: Infinity, maxAbsentDays: 0 });
      cause.devices++;
      cause.minAbsentDays = Math.min(cause.minAbsentDays, m.lost.absentDays);
      cause.maxAbsentDays = Math.max(cause.maxAbsentDays, m.lost.absentDays);
      if (reachable) {
        cause.reachable++;
        report.lost.reachable++;
        report.lost.reachableExamples.push(m.fleet.udid);
      }
      const figures = byKind[m.lost.kind];
      figures.lost++;
      const warnedAt = warned[m.lost.kind] ?? Object.values(warned).sort((a, b) => a.getTime() - b.getTime())[0];
      if (warnedAt && warnedAt <= m.lost.at) {
        report.atRisk.lostAndWarned++;
        figures.lostAfterWarning++;
        leadDays[m.lost.kind].push((m.lost.at.getTime() - warnedAt.getTime()) / DAY_MS);
      } else {
        report.atRisk.lostUnwarned++;
        figures.lostUnwarned++;
      }
    }
    for (const kind of CERTIFICATE_KINDS) applyLeadTimes(byKind[kind], leadDays[kind]);
    report.lost.reachableExamples = report.lost.reachableExamples.slice(0, 10);
    report.wallSeconds = (performance.now() - started) / 1000;
    report.deviceYearsPerSecond = (report.devices * report.years) / report.wallSeconds;
    return { report, leadDays };
  } finally {
    await closeServer();
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A whole fleet in this process. */
export async function simulate(options: SimulationOptions): Promise<SimulationReport> {
  return (await simulateShard({ ...options, shard: undefined })).report;
}
