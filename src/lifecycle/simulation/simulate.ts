import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePki, openApp } from '../../app/context.ts';
import { createServices } from '../../app/services.ts';
import { DAY_MS } from '../../clock.ts';
import { resolveConfig } from '../../config.ts';
import { buildHttpServer } from '../../http/server.ts';
import { createLogger } from '../../log.ts';
import type { ChannelKey } from '../../store/types.ts';
import { DEFAULT_POLICY } from '../model.ts';
import { LifecycleRunner } from '../runner.ts';
import { KeyPool, SimulatedDevice, type DeviceNetwork } from './device.ts';
import { firstBreak, type Loss, type ServerChain } from './loss.ts';
import { acceptsProfiles, advance, finish, fleetMember, type FleetMember } from './fleet.ts';
import {
  CERTIFICATE_KINDS,
  applyLeadTimes,
  emptyKindFigures,
  type CertificateKind,
  type KindFigures,
  type ShardResult,
  type SimulationReport,
} from './report.ts';

const TOPIC = 'com.apple.mgmt.External.00000000-0000-4000-8000-000000000000';
/** A device that put a command off polls again later the same day when it is no longer busy, up to this many times. */
const SESSIONS_PER_DAY = 8;

export interface SimulationOptions {
  devices: number;
  years: number;
  seed: number;
  /** Off: the control run, where nothing renews anything. */
  lifecycle: boolean;
  identityDays: number;
  tlsDays: number;
  intermediateDays: number;
  rootDays: number;
  /** How often (simulated days) the lifecycle engine runs. */
  runEveryDays: number;
  /** Simulate only devices i with i % count === index (one process of a fleet split across several). */
  shard?: { index: number; count: number };
  progress?: (fraction: number) => void;
}

export const SIMULATION_DEFAULTS = { identityDays: 90, tlsDays: 120, intermediateDays: 365, rootDays: 730, runEveryDays: 1 };

interface Member {
  fleet: FleetMember;
  device: SimulatedDevice;
  enrolled: boolean;
  lost?: Loss;
}

/**
 * The time-travel fleet simulator. The real server core (SCEP, profiles, MDM check-in with Mdm-Signature, the
 * binding, the lifecycle runner) runs in-process on a virtual clock; simulated devices speak the real protocol to it
 * over Fastify's inject. Devices connect when a push is waiting and they are online (event-driven: a day on which
 * nothing is queued for a device costs nothing). A device is lost when a certificate it depends on expires before a
 * replacement is installed on it, or the server's TLS chain moves to a root it does not have.
 */
export async function simulateShard(options: SimulationOptions): Promise<ShardResult> {
  const started = performance.now();
  const shard = options.shard ?? { index: 0, count: 1 };
  const dir = mkdtempSync(join(tmpdir(), 'certmdm-simulate-'));
  const start = new Date(Date.UTC(2027, 0, 1));
  const horizon = Math.round(options.years * 365);
  let now = start;
  const config = resolveConfig(
    {
      data: join(dir, 'data'),
      'root-algorithm': 'rsa-2048',
      hostname: ['mdm.sim.test'],
      'public-url': 'https://mdm.sim.test',
      'push-topic': TOPIC,
      'root-days': String(options.rootDays),
      'intermediate-days': String(options.intermediateDays),
      'tls-days': String(options.tlsDays),
      'signing-days': String(options.rootDays),
      'identity-days': String(options.identityDays),
      'tls-renew-before-days': '0',
      'challenge-ttl-hours': String(24 * options.identityDays),
      'mdm-identity-sources': ['signature'],
    },
    {},
  );
  const app = await openApp(config, { logger: createLogger('silent'), clock: () => now, create: true });
  try {
    const pki = await ensurePki(app);
    const services = createServices(app, pki);
    const server = await buildHttpServer(app, pki, services);
    const woken = new Set<string>();
    const runner = new LifecycleRunner(
      {
        app,
        pki,
        profiles: services.profiles,
        push: { push: async (channels: ChannelKey[]) => channels.forEach((c) => woken.add(c.enrollmentId)) },
      },
      DEFAULT_POLICY,
    );
    let messages = 0;
    const network: DeviceNetwork = {
      request: (r) => server.inject(r),
      raCertificate: () => pki.scepRa.certificate.der,
      topic: TOPIC,
      sent: () => void messages++,
    };
    const keys = new KeyPool(Math.min(16, options.devices), SimulatedDevice.requesterValidity(start, horizon));

    const members: Member[] = [];
    for (let i = shard.index; i < options.devices; i += shard.count) {
      const fleet = fleetMember(options.seed, i, horizon);
      members.push({ fleet, device: new SimulatedDevice(fleet.udid, fleet.behaviour, fleet.random, network, keys), enrolled: false });
    }
    const byUdid = new Map(members.map((m) => [m.fleet.udid, m]));
    const enrollOn = new Map<number, Member[]>();
    for (const m of members) enrollOn.set(m.fleet.enrollDay, [...(enrollOn.get(m.fleet.enrollDay) ?? []), m]);

    const serverChain = async (previous?: ServerChain): Promise<ServerChain> => {
      const tls = pki.tls.certificate;
      const intermediate = (await app.store.getCertificate(tls.issuerId!))!;
      const root = (await app.store.getCertificate(intermediate.issuerId!))!;
      return {
        rootFingerprint: root.fingerprintSha256,
        rootNotAfter: root.notAfter,
        intermediateNotAfter: intermediate.notAfter,
        tlsNotAfter: tls.notAfter,
        rootSince: previous && previous.rootFingerprint === root.fingerprintSha256 ? previous.rootSince : now,
      };
    };
    let chain = await serverChain();

    /** What the device finds when it tries to connect: a chain it trusts, and an identity it can still use. */
    const reachable = (m: Member): boolean => {
      m.lost ??= firstBreak({ anchors: m.device.anchors, identityNotAfter: m.device.notAfter }, chain, now);
      return !m.lost;
    };

    const renewals: Record<Exclude<CertificateKind, 'identity'>, number> = { tls: 0, intermediate: 0, root: 0 };
    let current = { tls: pki.tls.certificate.id, intermediate: pki.authority.intermediate.id, root: pki.authority.root.id };
    /** First at-risk warning per device and certificate kind. */
    const warnings = new Map<string, Partial<Record<CertificateKind, Date>>>();

    for (let day = 0; day <= horizon; day++) {
      now = new Date(start.getTime() + day * DAY_MS);
      for (const m of enrollOn.get(day) ?? []) {
        const generated = await services.profiles.enrollment({ identity: 'scep', createdBy: 'simulator' });
        await m.device.enroll(generated.body);
        m.enrolled = true;
      }
      if (options.lifecycle && day > 0 && day % options.runEveryDays === 0) {
        const run = await runner.run();
        for (const action of run.planned) {
          if (action.kind !== 'device-at-risk') continue;
          const seen = warnings.get(action.deviceId) ?? {};
          seen[action.dependency] ??= now;
          warnings.set(action.deviceId, seen);
        }
        const next = { tls: pki.tls.certificate.id, intermediate: pki.authority.intermediate.id, root: pki.authority.root.id };
        for (const kind of ['tls', 'intermediate', 'root'] as const) if (next[kind] !== current[kind]) renewals[kind]++;
        if (next.tls !== current.tls) chain = await serverChain(chain);
        current = next;
      }
      // Devices with a push waiting that are online today connect; the others keep it until they are.
      for (const udid of woken) {
        const m = byUdid.get(udid);
        if (!m || m.lost || !m.enrolled) {
          woken.delete(udid);
          continue;
        }
        advance(m.fleet.availability, day);
        if (m.fleet.availability.nextOnline !== day) continue;
        woken.delete(udid);
        for (let session = 0; session < SESSIONS_PER_DAY && reachable(m); session++) {
          const outcome = await m.device.session();
          if (typeof outcome === 'object') m.lost = { kind: 'identity', cause: `server refused the device (${outcome.refused})`, at: now };
          if (outcome !== 'not-now') break;
        }
      }
      options.progress?.(day / horizon);
    }

    // The end of the horizon: whoever could not connect now is lost (since the moment its dependency broke).
    const leadDays = Object.fromEntries(CERTIFICATE_KINDS.map((k) => [k, [] as number[]])) as Record<CertificateKind, number[]>;
    const byKind = Object.fromEntries(CERTIFICATE_KINDS.map((k) => [k, emptyKindFigures()])) as Record<CertificateKind, KindFigures>;
    const report: SimulationReport = {
      seed: options.seed,
      devices: members.length,
      years: options.years,
      lifecycle: options.lifecycle,
      processes: 1,
      lifetimes: {
        identityDays: options.identityDays,
        tlsDays: options.tlsDays,
        intermediateDays: options.intermediateDays,
        rootDays: options.rootDays,
      },
      byKind,
      lost: { total: 0, eligible: 0, byCause: {}, eligibleExamples: [] },
      atRisk: { warned: 0, lostAndWarned: 0, lostUnwarned: 0 },
      behaviours: {},
      messages,
      scepIssuances: 0,
      wallSeconds: 0,
      deviceYearsPerSecond: 0,
    };
    for (const kind of ['tls', 'intermediate', 'root'] as const) byKind[kind].renewals = renewals[kind];
    // Eligible: online at least once in every renewal window, counting the engine's run cadence (a renewal starts up
    // to runEveryDays after the window opens), and willing to install a profile.
    const windowDays = options.identityDays * DEFAULT_POLICY.identityRenewAt - options.runEveryDays;
    for (const m of members) {
      finish(m.fleet.availability);
      if (!m.lost) reachable(m);
      report.behaviours[m.fleet.behaviour] = (report.behaviours[m.fleet.behaviour] ?? 0) + 1;
      byKind.identity.renewals += m.device.identityRenewals;
      report.scepIssuances += 1 + m.device.identityRenewals;
      const warned = warnings.get(m.fleet.udid) ?? {};
      for (const kind of CERTIFICATE_KINDS) if (warned[kind]) byKind[kind].warned++;
      if (Object.keys(warned).length) report.atRisk.warned++;
      if (!m.lost) continue;
      report.lost.total++;
      report.lost.byCause[m.lost.cause] = (report.lost.byCause[m.lost.cause] ?? 0) + 1;
      if (acceptsProfiles(m.fleet.behaviour) && m.fleet.availability.longestGap <= windowDays) {
        report.lost.eligible++;
        report.lost.eligibleExamples.push(m.fleet.udid);
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
    report.lost.eligibleExamples = report.lost.eligibleExamples.slice(0, 10);
    report.wallSeconds = (performance.now() - started) / 1000;
    report.deviceYearsPerSecond = (report.devices * report.years) / report.wallSeconds;
    await server.close();
    return { report, leadDays };
  } finally {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A whole fleet in this process. */
export async function simulate(options: SimulationOptions): Promise<SimulationReport> {
  return (await simulateShard({ ...options, shard: undefined })).report;
}
