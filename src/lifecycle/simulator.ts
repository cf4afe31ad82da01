import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePki, openApp } from '../app/context.ts';
import { createServices } from '../app/services.ts';
import { resolveConfig } from '../config.ts';
import { buildHttpServer } from '../http/server.ts';
import { createLogger } from '../log.ts';
import { appleMdmSignature } from '../mdm/sign-message.ts';
import * as cms from '../pki/cms.ts';
import { buildCertificate, encodeName, readCertificate } from '../pki/certificate.ts';
import { buildCsr } from '../pki/csr.ts';
import { parsePlistDict } from '../plist/parse.ts';
import { serializePlist } from '../plist/serialize.ts';
import type { PlistDict } from '../plist/types.ts';
import { buildPkiRequest, readCertRep } from '../scep/client.ts';
import { DEFAULT_POLICY } from './model.ts';
import { LifecycleRunner } from './runner.ts';

const DAY = 86_400_000;
const TOPIC = 'com.apple.mgmt.External.00000000-0000-4000-8000-000000000000';

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
  progress?: (fraction: number) => void;
}

export const SIMULATION_DEFAULTS = { identityDays: 90, tlsDays: 120, intermediateDays: 365, rootDays: 730, runEveryDays: 1 };

type Behaviour = 'daily' | 'weekly' | 'monthly' | 'wanderer' | 'vanishing';

interface Device {
  udid: string;
  behaviour: Behaviour;
  key: KeyObject;
  certificate: Buffer;
  notAfter: Date;
  /** SHA-256 fingerprints of the roots installed on the device. */
  anchors: Set<string>;
  nextCheckIn: number;
  lost?: { cause: string; at: Date };
  /** Longest time offline, in days: the device is "eligible" when it never exceeded a renewal window. */
  longestGap: number;
  lastSeen: number;
  stopsAt: number;
  firstWarnedAt?: Date;
}

export interface SimulationReport {
  seed: number;
  devices: number;
  years: number;
  lifecycle: boolean;
  lifetimes: { identityDays: number; tlsDays: number; intermediateDays: number; rootDays: number };
  renewals: { identity: number; tls: number; intermediate: number; root: number };
  lost: { total: number; eligible: number; byCause: Record<string, number> };
  /** Devices lost that had been named at risk beforehand, and the lead time of those warnings. */
  atRisk: { warned: number; lostAndWarned: number; lostUnwarned: number; minLeadDays: number | null; medianLeadDays: number | null };
  behaviours: Record<string, number>;
  messages: number;
  wallSeconds: number;
  deviceYearsPerSecond: number;
}

/** mulberry32: a small seeded PRNG, so the same seed gives the same fleet and the same report. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const fingerprint = (der: Buffer) => createHash('sha256').update(der).digest('hex');

/**
 * The time-travel fleet simulator: the real server core (SCEP, profiles, MDM check-in with Mdm-Signature, binding,
 * the lifecycle runner) in-process on a virtual clock, and simulated devices speaking the real protocol over
 * Fastify's inject. A device is lost when a certificate it depends on expires before a replacement is installed on
 * it, or the server's TLS chain ends in a root it does not have.
 */
export async function simulate(options: SimulationOptions): Promise<SimulationReport> {
  const started = performance.now();
  const random = prng(options.seed);
  const dir = mkdtempSync(join(tmpdir(), 'certmdm-simulate-'));
  const start = new Date(Date.UTC(2027, 0, 1));
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
  const pki = await ensurePki(app);
  const services = createServices(app, pki);
  const server = await buildHttpServer(app, pki, services);
  const woken = new Set<string>();
  const runner = new LifecycleRunner(
    { app, pki, profiles: services.profiles, push: { push: async (ids: string[]) => ids.forEach((id) => woken.add(id)) } },
    DEFAULT_POLICY,
  );
  const report: SimulationReport = {
    seed: options.seed,
    devices: options.devices,
    years: options.years,
    lifecycle: options.lifecycle,
    lifetimes: {
      identityDays: options.identityDays,
      tlsDays: options.tlsDays,
      intermediateDays: options.intermediateDays,
      rootDays: options.rootDays,
    },
    renewals: { identity: 0, tls: 0, intermediate: 0, root: 0 },
    lost: { total: 0, eligible: 0, byCause: {} },
    atRisk: { warned: 0, lostAndWarned: 0, lostUnwarned: 0, minLeadDays: null, medianLeadDays: null },
    behaviours: {},
    messages: 0,
    wallSeconds: 0,
    deviceYearsPerSecond: 0,
  };

  // Keys are drawn from a pool: generating 10k RSA keys would dominate the run; certificates stay unique per device.
  const pool = Array.from({ length: Math.min(16, options.devices) }, () => generateKeyPairSync('rsa', { modulusLength: 2048 }));

  const send = async (device: Device, message: PlistDict, path = '/mdm/server') => {
    const body = serializePlist({ UDID: device.udid, ...message });
    report.messages++;
    const response = await server.inject({
      method: 'PUT',
      url: path,
      payload: body,
      headers: {
        'content-type': path.endsWith('checkin') ? 'application/x-apple-aspen-mdm-checkin' : 'application/x-apple-aspen-mdm',
        'mdm-signature': appleMdmSignature(body, device.certificate, device.key),
      },
    });
    return response;
  };

  /** SCEP as a device does it for a profile's SCEP payload; returns the new certificate or undefined. */
  const scepEnroll = async (device: Device, keyIndex: number, payload: PlistDict): Promise<Buffer | undefined> => {
    const keys = pool[keyIndex % pool.length]!;
    const subject = encodeName((payload.Subject as [string, string][][]).map(([pair]) => pair as never));
    const selfSigned = buildCertificate(
      {
        subject: [['CN', device.udid]],
        publicKey: keys.publicKey,
        notBefore: new Date(now.getTime() - DAY),
        notAfter: new Date(now.getTime() + DAY),
        keyUsage: ['digitalSignature'],
      },
      { selfSigningKey: keys.privateKey },
    );
    const requester = { signerCertificate: selfSigned, signerKey: keys.privateKey };
    const csr = buildCsr({
      subject,
      publicKey: keys.publicKey,
      privateKey: keys.privateKey,
      challengePassword: payload.Challenge as string,
    });
    const ra = pki.scepRa.certificate.der;
    const request = buildPkiRequest({ requester, csr, raCertificate: ra });
    const response = await server.inject({
      method: 'POST',
      url: '/scep?operation=PKIOperation',
      payload: request.message,
      headers: { 'content-type': 'application/x-pki-message' },
    });
    const rep = readCertRep(response.rawPayload, { requester, raCertificate: ra, ...request });
    if (rep.status !== 'success') return undefined;
    device.key = keys.privateKey;
    return rep.certificates[0];
  };

  /** Installs a profile: verify its signature, add its roots, run its SCEP payload and authenticate with the result. */
  const installProfile = async (device: Device, signed: Buffer): Promise<'ok' | 'error'> => {
    const cmsData = cms.parseSignedData(signed);
    cms.verifySignedData(cmsData);
    const profile = parsePlistDict(cmsData.content!);
    const payloads = profile.PayloadContent as PlistDict[];
    for (const p of payloads) if (p.PayloadType === 'com.apple.security.root') device.anchors.add(fingerprint(p.PayloadContent as Buffer));
    const scep = payloads.find((p) => p.PayloadType === 'com.apple.security.scep');
    if (!scep) return 'ok';
    const renewed = await scepEnroll(device, Math.floor(random() * pool.length), scep.PayloadContent as PlistDict);
    if (!renewed) return 'error';
    (device as Device & { pending?: Buffer }).pending = renewed;
    return 'ok';
  };

  const authenticate = async (device: Device) => {
    const r = await send(
      device,
      { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: device.udid, Model: 'iPhone15,2', ModelName: 'iPhone' },
      '/mdm/checkin',
    );
    if (r.statusCode !== 200) throw new Error(`simulated Authenticate refused: ${r.statusCode} ${r.body}`);
    await send(
      device,
      {
        MessageType: 'TokenUpdate',
        Topic: TOPIC,
        Token: Buffer.from(fingerprint(Buffer.from(device.udid)), 'hex'),
        PushMagic: `magic-${device.udid}`,
      },
      '/mdm/checkin',
    );
  };

  const lose = (device: Device, cause: string, at: Date = now) => {
    device.lost = { cause, at };
  };

  /** A connection: the device checks what it trusts, then runs its command queue. */
  const connect = async (device: Device) => {
    const tls = pki.tls.certificate;
    const intermediate = (await app.store.getCertificate(tls.issuerId!))!;
    const root = (await app.store.getCertificate(intermediate.issuerId!))!;
    if (!device.anchors.has(root.fingerprintSha256)) return lose(device, 'server TLS chain ends in a root the device lacks');
    if (root.notAfter <= now) return lose(device, 'root expired');
    if (intermediate.notAfter <= now || tls.notAfter <= now) return lose(device, 'server TLS certificate or intermediate expired');
    if (device.notAfter <= now) return lose(device, 'identity certificate expired', device.notAfter);
    let response = await send(device, { Status: 'Idle' });
    while (response.statusCode === 200 && response.rawPayload.length > 0) {
      const command = parsePlistDict(response.rawPayload);
      const uuid = command.CommandUUID as string;
      const body = command.Command as PlistDict;
      if (random() < 0.1) {
        response = await send(device, { Status: 'NotNow', CommandUUID: uuid });
        continue;
      }
      if (body.RequestType === 'InstallProfile') {
        const outcome = await installProfile(device, body.Payload as Buffer);
        response = await send(device, { Status: outcome === 'ok' ? 'Acknowledged' : 'Error', CommandUUID: uuid });
        const pending = (device as Device & { pending?: Buffer }).pending;
        if (pending) {
          delete (device as Device & { pending?: Buffer }).pending;
          device.certificate = pending;
          device.notAfter = readCertificate(pending).notAfter;
          await authenticate(device);
          report.renewals.identity++;
          response = await send(device, { Status: 'Idle' });
        }
      } else {
        response = await send(device, { Status: 'Acknowledged', CommandUUID: uuid });
      }
    }
    if (response.statusCode !== 200) lose(device, `server refused the device (${response.statusCode})`);
  };

  // The fleet: enrolled on day 0 through an enrollment profile each (real SCEP, real Authenticate).
  const behaviours: [Behaviour, number][] = [
    ['daily', 0.45],
    ['weekly', 0.3],
    ['monthly', 0.15],
    ['wanderer', 0.07],
    ['vanishing', 0.03],
  ];
  const horizon = Math.round(options.years * 365);
  const fleet: Device[] = [];
  for (let i = 0; i < options.devices; i++) {
    let r = random();
    const behaviour = behaviours.find(([, share]) => (r -= share) < 0)?.[0] ?? 'daily';
    report.behaviours[behaviour] = (report.behaviours[behaviour] ?? 0) + 1;
    const device: Device = {
      udid: `SIM-${options.seed}-${String(i).padStart(6, '0')}`,
      behaviour,
      key: pool[0]!.privateKey,
      certificate: Buffer.alloc(0),
      notAfter: now,
      anchors: new Set(),
      nextCheckIn: 0,
      longestGap: 0,
      lastSeen: 0,
      stopsAt: behaviour === 'vanishing' ? Math.floor(random() * horizon) : Infinity,
    };
    const generated = await services.profiles.enrollment({ identity: 'scep', createdBy: 'simulator' });
    if ((await installProfile(device, generated.body)) !== 'ok') throw new Error('simulated enrollment failed');
    const first = (device as Device & { pending?: Buffer }).pending!;
    delete (device as Device & { pending?: Buffer }).pending;
    device.certificate = first;
    device.notAfter = readCertificate(first).notAfter;
    await authenticate(device);
    device.nextCheckIn = 1 + Math.floor(random() * intervalOf(behaviour));
    fleet.push(device);
  }

  function intervalOf(behaviour: Behaviour): number {
    return behaviour === 'daily' ? 1 : behaviour === 'weekly' ? 7 : behaviour === 'monthly' ? 30 : behaviour === 'wanderer' ? 14 : 3;
  }

  const windowDays = options.identityDays * DEFAULT_POLICY.identityRenewAt;
  let lastRoot = pki.authority.root.id;
  let lastIntermediate = pki.authority.intermediate.id;
  let lastTls = pki.tls.certificate.id;
  const warnings = new Map<string, Date>();
  for (let day = 1; day <= horizon; day++) {
    now = new Date(start.getTime() + day * DAY);
    if (options.lifecycle && day % options.runEveryDays === 0) {
      const run = await runner.run();
      for (const action of run.planned)
        if (action.kind === 'device-at-risk' && !warnings.has(action.deviceId)) warnings.set(action.deviceId, now);
      if (pki.tls.certificate.id !== lastTls) (report.renewals.tls++, (lastTls = pki.tls.certificate.id));
      if (pki.authority.intermediate.id !== lastIntermediate)
        (report.renewals.intermediate++, (lastIntermediate = pki.authority.intermediate.id));
      if (pki.authority.root.id !== lastRoot) (report.renewals.root++, (lastRoot = pki.authority.root.id));
    }
    for (const device of fleet) {
      if (device.lost || day > device.stopsAt) continue;
      // A push wakes an online device the next day; otherwise it comes on its own schedule.
      const pushed = woken.has(device.udid) && device.behaviour !== 'wanderer';
      if (day < device.nextCheckIn && !pushed) continue;
      woken.delete(device.udid);
      device.longestGap = Math.max(device.longestGap, day - device.lastSeen);
      device.lastSeen = day;
      await connect(device);
      // Wanderers go offline for weeks or months now and then.
      const away = device.behaviour === 'wanderer' && random() < 0.15 ? 14 + Math.floor(random() * 120) : 0;
      device.nextCheckIn = day + intervalOf(device.behaviour) + away;
    }
    options.progress?.(day / horizon);
  }
  // Whoever is still unlost at the end but holds an expired identity never came back in time.
  for (const device of fleet) {
    if (!device.lost && device.notAfter <= now) lose(device, 'identity certificate expired', device.notAfter);
    if (!device.lost) device.longestGap = Math.max(device.longestGap, horizon - device.lastSeen);
  }

  const leads: number[] = [];
  for (const device of fleet) {
    const warnedAt = warnings.get(device.udid);
    if (warnedAt) report.atRisk.warned++;
    if (!device.lost) continue;
    report.lost.total++;
    report.lost.byCause[device.lost.cause] = (report.lost.byCause[device.lost.cause] ?? 0) + 1;
    if (device.behaviour !== 'vanishing' && device.longestGap <= windowDays) report.lost.eligible++;
    if (warnedAt && warnedAt <= device.lost.at) {
      report.atRisk.lostAndWarned++;
      leads.push((device.lost.at.getTime() - warnedAt.getTime()) / DAY);
    } else report.atRisk.lostUnwarned++;
  }
  leads.sort((a, b) => a - b);
  report.atRisk.minLeadDays = leads.length ? Math.round(leads[0]!) : null;
  report.atRisk.medianLeadDays = leads.length ? Math.round(leads[Math.floor(leads.length / 2)]!) : null;
  report.wallSeconds = (performance.now() - started) / 1000;
  report.deviceYearsPerSecond = (options.devices * options.years) / report.wallSeconds;
  await server.close();
  await app.close();
  rmSync(dir, { recursive: true, force: true });
  return report;
}

/** The human summary of a simulation. */
export function formatSimulationReport(r: SimulationReport): string {
  const lost = Object.entries(r.lost.byCause).map(([cause, n]) => `    ${String(n).padStart(6)}  ${cause}`);
  return [
    `certmdm simulation — seed ${r.seed}, ${r.devices} devices, ${r.years} years, lifecycle ${r.lifecycle ? 'on' : 'OFF (control run)'}`,
    `  lifetimes: identity ${r.lifetimes.identityDays} d, TLS ${r.lifetimes.tlsDays} d, intermediate ${r.lifetimes.intermediateDays} d, root ${r.lifetimes.rootDays} d`,
    `  fleet: ${Object.entries(r.behaviours)
      .map(([b, n]) => `${n} ${b}`)
      .join(', ')}`,
    `  renewals: ${r.renewals.identity} identities, ${r.renewals.tls} TLS, ${r.renewals.intermediate} intermediates, ${r.renewals.root} roots`,
    `  lost: ${r.lost.total} devices (${r.lost.eligible} of them checked in within every renewal window)`,
    ...lost,
    `  at risk: ${r.atRisk.warned} named; lost after a warning ${r.atRisk.lostAndWarned}, lost without one ${r.atRisk.lostUnwarned}` +
      (r.atRisk.medianLeadDays !== null ? `; lead time min ${r.atRisk.minLeadDays} d, median ${r.atRisk.medianLeadDays} d` : ''),
    `  ${r.messages} MDM messages; ${r.wallSeconds.toFixed(1)} s wall, ${r.deviceYearsPerSecond.toFixed(2)} device-years/s`,
  ].join('\n');
}
