import { generateKeyPairSync } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ensurePki, openApp } from '../src/app/context.ts';
import { createServices } from '../src/app/services.ts';
import { resolveConfig } from '../src/config.ts';
import { buildHttpServer, buildScepHttpServer } from '../src/http/server.ts';
import { createLogger } from '../src/log.ts';
import { buildCertificate, encodeName, toPem } from '../src/pki/certificate.ts';
import { buildCsr } from '../src/pki/csr.ts';
import { buildPkiRequest } from '../src/scep/client.ts';
import { berBomb } from '../test/helpers/malformed.ts';
import type { BenchRow } from './measure.ts';

/**
 * `/healthz` latency on the HTTPS listener while the plain-HTTP SCEP port is flooded, beside the idle latency
 * measured in the same run. The server runs on this thread; the prober and the attackers run in worker threads
 * (their own event loops), so what is measured is the server's loop, not the clients'.
 */

const PROBER = `
const { workerData, parentPort } = require('node:worker_threads');
const https = require('node:https');
const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: workerData.ca });
const get = () => new Promise((resolve, reject) => {
  const started = performance.now();
  const req = https.get({ host: '127.0.0.1', servername: 'localhost', port: workerData.port, path: '/healthz', agent }, (res) => {
    res.resume();
    res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - started) : reject(new Error('healthz ' + res.statusCode))));
  });
  req.on('error', reject);
});
(async () => {
  const latencies = [];
  const until = performance.now() + workerData.ms;
  while (performance.now() < until) latencies.push(await get());
  agent.destroy();
  parentPort.postMessage(latencies);
})();
`;

// Keeps `connections` requests in flight against the plain-HTTP SCEP port until stdin closes (a bounded loop). It
// runs as a separate process at the lowest priority: a real attacker's CPU is not the server's, so the simulated
// one should take as little of this machine as it can.
const ATTACKER = `
const http = require('node:http');
const fs = require('node:fs');
const workerData = JSON.parse(process.argv[1]);
workerData.bodies = workerData.files.map((f) => fs.readFileSync(f));
const parentPort = { on: (_e, fn) => process.stdin.on('end', fn), postMessage: (m) => process.stdout.write(JSON.stringify(m)) };
process.stdin.resume();
const agent = new http.Agent({ keepAlive: true, maxSockets: workerData.connections });
let stop = false;
let sent = 0;
const statuses = {};
parentPort.on('message', () => (stop = true));
const post = (body) => new Promise((resolve) => {
  const req = http.request({ host: '127.0.0.1', port: workerData.port, path: '/scep?operation=PKIOperation', method: 'POST', agent,
    headers: { 'content-type': 'application/x-pki-message' } }, (res) => {
    statuses[res.statusCode] = (statuses[res.statusCode] || 0) + 1;
    res.resume();
    res.on('end', resolve);
  });
  req.on('error', resolve);
  req.end(body);
});
(async () => {
  await Promise.all(Array.from({ length: workerData.connections }, async (_, i) => {
    while (!stop) { await post(workerData.bodies[(sent++ + i) % workerData.bodies.length]); }
  }));
  agent.destroy();
  parentPort.postMessage({ sent, statuses });
})();
`;

function runAttacker(data: { port: number; connections: number; bodies: Buffer[] }) {
  const dir = mkdtempSync(join(tmpdir(), 'certmdm-bench-attack-'));
  const files = data.bodies.map((body, i) => {
    const file = join(dir, `body-${i}`);
    writeFileSync(file, body);
    return file;
  });
  const child = spawn(
    'nice',
    ['-n', '19', process.execPath, '-e', ATTACKER, JSON.stringify({ port: data.port, connections: data.connections, files })],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const result = new Promise<{ sent: number; statuses: Record<string, number> }>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', () => resolve(JSON.parse(out || '{"sent":0,"statuses":{}}')));
  });
  return { stop: () => child.stdin.end(), result };
}

function runWorker<T>(source: string, data: unknown): { worker: Worker; result: Promise<T> } {
  const worker = new Worker(source, { eval: true, workerData: data });
  const result = new Promise<T>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return { worker, result };
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

export async function healthzBench(options: { probeMs?: number } = {}): Promise<BenchRow[]> {
  const probeMs = options.probeMs ?? 4000;
  const config = resolveConfig(
    {
      data: join(mkdtempSync(join(tmpdir(), 'certmdm-bench-healthz-')), 'data'),
      'root-algorithm': 'rsa-2048',
      hostname: ['localhost', '127.0.0.1'],
      listen: '127.0.0.1',
      port: '0',
    },
    {},
  );
  const app = await openApp(config, { logger: createLogger('silent'), create: true });
  const pki = await ensurePki(app);
  const services = createServices(app, pki);
  const https = await buildHttpServer({ ...app, logger: createLogger('silent') }, pki, services);
  await https.listen({ host: '127.0.0.1', port: 0 });
  const scepHttp = await buildScepHttpServer({ ...app, logger: createLogger('silent') }, services.scep);
  await scepHttp.listen({ host: '127.0.0.1', port: 0 });
  const httpsPort = (https.server.address() as { port: number }).port;
  const scepPort = (scepHttp.server.address() as { port: number }).port;
  const ca = toPem(pki.authority.root.der);

  // Signed, encrypted PKCSReqs with a wrong challenge: each costs the server an RSA decryption and a signed FAILURE.
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const selfSigned = buildCertificate(
    {
      subject: [['CN', 'flood']],
      publicKey: keys.publicKey,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
      keyUsage: ['digitalSignature'],
    },
    { selfSigningKey: keys.privateKey },
  );
  const csr = buildCsr({
    subject: encodeName([['CN', 'flood']]),
    publicKey: keys.publicKey,
    privateKey: keys.privateKey,
    challengePassword: 'f'.repeat(56),
  });
  const signedFlood = Array.from(
    { length: 16 },
    () =>
      buildPkiRequest({
        requester: { signerCertificate: selfSigned, signerKey: keys.privateKey },
        csr,
        raCertificate: pki.scepRa.certificate.der,
      }).message,
  );

  const probe = async () => await runWorker<number[]>(PROBER, { port: httpsPort, ca, ms: probeMs }).result;
  const underAttack = async (bodies: Buffer[], connections: number) => {
    const attack = runAttacker({ port: scepPort, connections, bodies });
    await new Promise((resolve) => setTimeout(resolve, 500)); // let the flood build up
    const latencies = await probe();
    attack.stop();
    const { sent, statuses } = await attack.result;
    return { latencies, sent, statuses };
  };

  const idle = await probe();
  const bomb = await underAttack([berBomb()], 8);
  const flood = await underAttack(signedFlood, 64);
  await https.close();
  await scepHttp.close();
  await app.close();

  const idleP99 = percentile(idle, 99);
  if (process.env.CERTMDM_BENCH_DEBUG)
    for (const [name, l] of [
      ['idle', idle],
      ['bomb', bomb.latencies],
      ['flood', flood.latencies],
    ] as const)
      console.log(name, l.length, [50, 90, 99, 99.9, 100].map((p) => percentile(l, p).toFixed(2)).join(' '));
  const row = (figure: string, run: { latencies: number[]; sent: number; statuses: Record<string, number> }): BenchRow => ({
    figure: `${figure} (${run.sent} sent: ${Object.entries(run.statuses)
      .map(([s, n]) => `${n}×${s}`)
      .join(', ')})`,
    value: percentile(run.latencies, 99),
    unit: 'ms p99',
    limitName: `idle /healthz p99, p50 ${percentile(idle, 50).toFixed(2)} ms`,
    limit: idleP99,
    // Responsive: a flood may cost a health check a few PKIOperations' worth of waiting, never the seconds it used to.
    target: { max: 50, text: '≤ 50 ms' },
  });
  return [
    row('/healthz under 8 parallel 256 KiB BER-bomb PKIOperations on the plain-HTTP SCEP port', bomb),
    row('/healthz under 64 parallel signed PKCSReq floods (RSA decrypt + signed FAILURE each)', flood),
  ];
}
