import { spawn } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensurePki, openApp } from '../src/app/context.ts';
import { resolveConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { appleMdmSignature } from '../src/mdm/sign-message.ts';
import { buildCertificate, encodeName, toPem } from '../src/pki/certificate.ts';
import { buildCsr } from '../src/pki/csr.ts';
import { serializePlist } from '../src/plist/serialize.ts';
import { mintChallenge } from '../src/scep/challenges.ts';
import { buildPkiRequest, readCertRep } from '../src/scep/client.ts';
import { freePort } from '../test/helpers/cli.ts';
import type { BenchRow } from './measure.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DEVICES = 32;
const MESSAGES = 3000;
const CONCURRENCY = 16;

/** utime + stime of a process, in seconds, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * Signed check-ins end to end: `certmdm serve` as its own process (SQLite, HTTPS on loopback), devices enrolled
 * through its SCEP, then pre-signed Apple-form messages (TokenUpdate and Idle reports) from many devices at once.
 * The server's CPU is read from /proc, so the load generator's work is not counted.
 */
export async function mdmBench(limits: { rsaVerify: number }): Promise<BenchRow[]> {
  const dataDir = join(mkdtempSync(join(tmpdir(), 'certmdm-bench-mdm-')), 'data');
  const flags = { data: dataDir, 'root-algorithm': 'rsa-2048', hostname: ['localhost', '127.0.0.1'], listen: '127.0.0.1' };
  const app = await openApp(resolveConfig(flags, {}), { logger: createLogger('silent'), create: true });
  const pki = await ensurePki(app);
  const ra = pki.scepRa.certificate.der;
  const challenges = await Promise.all(
    Array.from({ length: DEVICES }, () => mintChallenge(app.store, app.clock, { ttlMs: 3_600_000, purpose: 'bench', createdBy: 'bench' })),
  );
  const rootPem = toPem(pki.authority.root.der);
  await app.close();

  const port = await freePort();
  const profile = process.env.CERTMDM_BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${join(dataDir, '..', 'profile')}`] : [];
  const child = spawn(
    process.execPath,
    [
      ...profile,
      join(ROOT, 'bin', 'certmdm.mjs'),
      'serve',
      '--data',
      dataDir,
      '--port',
      String(port),
      '--listen',
      '127.0.0.1',
      '--hostname',
      'localhost,127.0.0.1',
      '--mdm-identity-sources',
      'signature',
      '--log-level',
      'warn',
    ],
    {
      stdio: 'ignore',
    },
  );
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY, ca: rootPem });
  const call = (method: string, path: string, body: Buffer, headers: Record<string, string>) =>
    new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', servername: 'localhost', port, path, method, agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end(body);
    });
  try {
    for (let i = 0; ; i++) {
      const up = await call('GET', '/healthz', Buffer.alloc(0), {}).catch(() => undefined);
      if (up?.status === 200) break;
      if (i > 100) throw new Error('certmdm did not start for the MDM bench');
      await new Promise((r) => setTimeout(r, 100));
    }

    // Enroll the fleet through SCEP and Authenticate each device.
    const devices: { udid: string; certificate: Buffer; key: KeyObject }[] = [];
    for (let i = 0; i < DEVICES; i++) {
      const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const udid = `BENCH-${String(i).padStart(4, '0')}`;
      const selfSigned = buildCertificate(
        {
          subject: [['CN', udid]],
          publicKey: keys.publicKey,
          notBefore: new Date(Date.now() - 60_000),
          notAfter: new Date(Date.now() + 86_400_000),
          keyUsage: ['digitalSignature'],
        },
        { selfSigningKey: keys.privateKey },
      );
      const requester = { signerCertificate: selfSigned, signerKey: keys.privateKey };
      const csr = buildCsr({
        subject: encodeName([['CN', udid]]),
        publicKey: keys.publicKey,
        privateKey: keys.privateKey,
        challengePassword: challenges[i]!.challenge,
      });
      const pkiRequest = buildPkiRequest({ requester, csr, raCertificate: ra });
      const rep = readCertRep(
        (await call('POST', '/scep?operation=PKIOperation', pkiRequest.message, { 'content-type': 'application/x-pki-message' })).body,
        { requester, raCertificate: ra, ...pkiRequest },
      );
      if (rep.status !== 'success') throw new Error(`bench SCEP enrollment failed: ${JSON.stringify(rep)}`);
      devices.push({ udid, certificate: rep.certificates[0]!, key: keys.privateKey });
    }
    const signed = (device: (typeof devices)[number], message: Record<string, unknown>) => {
      const body = serializePlist({ UDID: device.udid, ...message });
      return { body, signature: appleMdmSignature(body, device.certificate, device.key), checkIn: 'MessageType' in message };
    };
    for (const d of devices) {
      const auth = signed(d, {
        MessageType: 'Authenticate',
        Topic: 'com.apple.mgmt.External.bench',
        DeviceName: d.udid,
        Model: 'iPhone15,2',
        ModelName: 'iPhone',
      });
      const r = await call('PUT', '/mdm/checkin', auth.body, {
        'content-type': 'application/x-apple-aspen-mdm-checkin',
        'mdm-signature': auth.signature,
      });
      if (r.status !== 200) throw new Error(`bench Authenticate failed: ${r.status} ${r.body}`);
    }

    const messages = Array.from({ length: MESSAGES }, (_, i) => {
      const d = devices[i % DEVICES]!;
      return i % 2 === 0
        ? signed(d, {
            MessageType: 'TokenUpdate',
            Topic: 'com.apple.mgmt.External.bench',
            Token: Buffer.alloc(32, i % 256),
            PushMagic: `magic-${i}`,
          })
        : signed(d, { Status: 'Idle' });
    });
    const cpuBefore = cpuSeconds(child.pid!);
    const start = performance.now();
    let next = 0;
    let failures = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < messages.length) {
          const m = messages[next++]!;
          const r = await call('PUT', m.checkIn ? '/mdm/checkin' : '/mdm/server', m.body, {
            'content-type': m.checkIn ? 'application/x-apple-aspen-mdm-checkin' : 'application/x-apple-aspen-mdm',
            'mdm-signature': m.signature,
          });
          if (r.status !== 200) failures++;
        }
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    const cpu = cpuSeconds(child.pid!) - cpuBefore;
    if (failures) throw new Error(`${failures} bench check-ins were refused`);
    return [
      {
        figure: `signed check-ins, HTTPS, ${DEVICES} devices, ${CONCURRENCY} connections`,
        value: MESSAGES / seconds,
        unit: 'msgs/s',
        limitName: 'raw RSA-2048 verify',
        limit: limits.rsaVerify,
      },
      // Lower is better here: the ratio says how many times the bare signature check the server spends.
      {
        figure: 'server CPU per 1000 check-ins (lower is better)',
        value: (cpu * 1000) / MESSAGES,
        unit: 'cpu-s',
        limitName: '1000 raw RSA-2048 verifies',
        limit: 1000 / limits.rsaVerify,
      },
    ];
  } finally {
    agent.destroy();
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGINT');
      await exited;
    }
    if (process.env.CERTMDM_BENCH_PROFILE) console.error(`server CPU profile in ${join(dataDir, '..', 'profile')}`);
  }
}
