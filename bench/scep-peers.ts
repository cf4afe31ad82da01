import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePki, openApp } from '../src/app/context.ts';
import { resolveConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { mintChallenge } from '../src/scep/challenges.ts';
import { freePort, ROOT } from '../test/helpers/cli.ts';
import type { BenchRow } from './measure.ts';
import { cpuSeconds } from './proc.ts';

const WARM_UP = 30;
const ENROLLMENTS = 100;

/** One Debian scepclient enrollment (GetCACaps, GetCACert, PKIOperation) in a fresh directory, with a key made once. */
function scepclient(url: string, key: string, challenge: string, n: number, caFingerprint?: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'bench-scepclient-'));
  copyFileSync(key, join(dir, 'key.pem'));
  const r = spawnSync(
    'scepclient',
    [
      ...['-server-url', url, '-challenge', challenge, '-private-key', 'key.pem', '-certificate', 'cert.pem', '-cn', `bench-${n}`],
      ...(caFingerprint ? ['-ca-fingerprint', caFingerprint] : []),
    ],
    { cwd: dir, encoding: 'utf8', timeout: 30_000 },
  );
  if (r.status !== 0) throw new Error(`scepclient against ${url}: ${r.stderr}${r.stdout}`);
}

async function waitForPort(port: number, child: ChildProcess, name: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode})`);
    const r = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}/scep?operation=GetCACaps`]);
    if (r.stdout?.toString() === '200') return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${name} did not answer on port ${port}`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGINT');
  await exited;
}

/** Server CPU per issuance (ms) over ENROLLMENTS scepclient enrollments after WARM_UP, read from /proc. */
async function cpuPerIssuance(
  child: ChildProcess,
  url: string,
  key: string,
  challenge: (n: number) => string,
  caFingerprint?: string,
): Promise<number> {
  for (let n = 0; n < WARM_UP; n++) scepclient(url, key, challenge(n), n, caFingerprint);
  const before = cpuSeconds(child.pid!);
  for (let n = WARM_UP; n < WARM_UP + ENROLLMENTS; n++) scepclient(url, key, challenge(n), n, caFingerprint);
  return ((cpuSeconds(child.pid!) - before) * 1000) / ENROLLMENTS;
}

/** `certmdm serve` with plain-HTTP SCEP (scepclient's DES enabled), an RSA-2048 root and the given issuing CA. */
async function certmdmIssuance(key: string, issuing: 'rsa-2048' | 'p-256'): Promise<number> {
  const data = join(mkdtempSync(join(tmpdir(), 'certmdm-bench-scep-peers-')), 'data');
  const flags = { data, 'root-algorithm': 'rsa-2048', 'issuing-algorithm': issuing, hostname: ['localhost'], listen: '127.0.0.1' };
  const app = await openApp(resolveConfig(flags, {}), { logger: createLogger('silent'), create: true });
  // scepclient is told which GetCACert certificate is the recipient (the RA), as for NDES: it cannot encrypt to a
  // P-256 CA certificate (test/pki/p256.test.ts), and so both runs do the same.
  const raFingerprint = createHash('sha256')
    .update((await ensurePki(app)).scepRa.certificate.der)
    .digest('hex');
  const challenges: string[] = [];
  for (let i = 0; i < WARM_UP + ENROLLMENTS; i++)
    challenges.push((await mintChallenge(app.store, app.clock, { ttlMs: 3_600_000, purpose: 'bench', createdBy: 'bench' })).challenge);
  await app.close();
  const port = await freePort();
  const scepPort = await freePort();
  const child = spawn(
    process.execPath,
    [
      ...(process.env.CERTMDM_BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${join(data, '..', 'profile')}`] : []),
      join(ROOT, 'bin', 'certmdm.mjs'),
      'serve',
      ...['--data', data, '--root-algorithm', 'rsa-2048', '--issuing-algorithm', issuing, '--hostname', 'localhost'],
      ...['--listen', '127.0.0.1', '--port', String(port), '--scep-http-port', String(scepPort), '--scep-ciphers', 'aes,des3,des'],
      ...['--lifecycle-interval-minutes', '0', '--log-level', 'warn'],
    ],
    { stdio: 'ignore' },
  );
  try {
    await waitForPort(scepPort, child, 'certmdm');
    return await cpuPerIssuance(child, `http://127.0.0.1:${scepPort}/scep`, key, (n) => challenges[n]!, raFingerprint);
  } finally {
    await stop(child);
  }
}

/** Debian's scepserver (micromdm scep) with an RSA-2048 CA in a fresh depot and one shared challenge. */
async function scepserverIssuance(key: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-scepserver-'));
  const depot = join(dir, 'depot');
  mkdirSync(depot);
  const init = spawnSync('scepserver', ['ca', '-init', '-depot', depot, '-keySize', '2048'], { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`scepserver ca -init: ${init.stderr}`);
  const port = await freePort();
  // scepserver takes a port, not an address; the bench reaches it on loopback only.
  const child = spawn('scepserver', ['-depot', depot, '-port', String(port), '-challenge', 'bench-secret', '-allowrenew', '0'], {
    stdio: 'ignore',
  });
  try {
    await waitForPort(port, child, 'scepserver');
    return await cpuPerIssuance(child, `http://127.0.0.1:${port}/scep`, key, () => 'bench-secret');
  } finally {
    await stop(child);
  }
}

/**
 * The floor of one scepclient enrollment on this machine for a Node server: its three requests (GetCACaps,
 * GetCACert, a PKIOperation POST), each on a new connection as scepclient makes them, answered by bare Fastify
 * (bench/floor-server.mjs over HTTP), in ms of server CPU.
 */
async function httpFloor(): Promise<number> {
  const child = spawn(process.execPath, [join(ROOT, 'bench', 'floor-server.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    child.once('exit', (code) => reject(new Error(`the floor server exited (${code})`)));
  });
  const body = join(mkdtempSync(join(tmpdir(), 'bench-scep-floor-')), 'pkimessage');
  writeFileSync(body, randomBytes(3000));
  const url = `http://127.0.0.1:${port}/scep`;
  const enrollment = () => {
    for (const args of [
      [`${url}?operation=GetCACaps`],
      [`${url}?operation=GetCACert`],
      ['--data-binary', `@${body}`, `${url}?operation=PKIOperation`],
    ]) {
      const r = spawnSync('curl', ['-sS', '-o', '/dev/null', ...args]);
      if (r.status !== 0) throw new Error(`curl against the floor server: ${r.stderr}`);
    }
  };
  try {
    for (let n = 0; n < WARM_UP; n++) enrollment();
    const before = cpuSeconds(child.pid!);
    for (let n = 0; n < ENROLLMENTS; n++) enrollment();
    return ((cpuSeconds(child.pid!) - before) * 1000) / ENROLLMENTS;
  } finally {
    await stop(child);
  }
}

/**
 * Server CPU per SCEP issuance against Debian's scepserver, the same scepclient driving both, each with an RSA-2048
 * CA; and certmdm with a P-256 issuing CA. The floor: an RSA CA needs three RSA-2048 private operations per
 * issuance (key transport, certificate, CertRep), a P-256 CA two and one ECDSA signature.
 */
export async function scepPeersBench(limits: { rsaSign: number }): Promise<BenchRow[]> {
  const key = join(mkdtempSync(join(tmpdir(), 'bench-scep-key-')), 'key.pem');
  const made = spawnSync('openssl', ['genrsa', '-traditional', '-out', key, '2048'], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`openssl genrsa: ${made.stderr}`);
  const scepserver = await scepserverIssuance(key);
  const http = await httpFloor();
  const rsa = await certmdmIssuance(key, 'rsa-2048');
  const ecdsa = await certmdmIssuance(key, 'p-256');
  const privateOp = 1000 / limits.rsaSign;
  const floor = http + 3 * privateOp;
  console.log(
    `SCEP issuance, server CPU with Debian scepclient: scepserver ${scepserver.toFixed(2)} ms, certmdm ${rsa.toFixed(2)} ms (RSA CA), ` +
      `${ecdsa.toFixed(2)} ms (P-256 CA); floor ${floor.toFixed(2)} ms = bare Fastify's three requests on new connections ` +
      `${http.toFixed(2)} ms + 3 RSA-2048 private operations ${(3 * privateOp).toFixed(2)} ms`,
  );
  return [
    {
      figure: 'SCEP issuance, server CPU, scepclient over HTTP, RSA-2048 CA (lower is better)',
      value: rsa,
      unit: 'ms',
      limitName: 'Debian scepserver, same client and CA size',
      limit: scepserver,
      target: { max: scepserver / 1.9, text: '≤ scepserver ÷ 1.9' },
    },
    {
      figure: 'SCEP issuance, server CPU, scepclient over HTTP, P-256 issuing CA (lower is better)',
      value: ecdsa,
      unit: 'ms',
      limitName: 'Debian scepserver, RSA-2048 CA',
      limit: scepserver,
      // The 2.0 ms against 3.0 ms for the RSA CA: two thirds of the RSA target.
      target: { max: scepserver / 1.9 / 1.5, text: '≤ scepserver ÷ 2.85' },
    },
    {
      figure: 'SCEP issuance, RSA-2048 CA, against its floor (lower is better)',
      value: rsa,
      unit: 'ms',
      limitName: "bare Fastify's 3 requests + 3 RSA-2048 private ops",
      limit: floor,
    },
  ];
}
