import { generateKeyPairSync } from 'node:crypto';
import { request, Agent } from 'node:https';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePki, openApp } from '../src/app/context.ts';
import { resolveConfig } from '../src/config.ts';
import { createServices } from '../src/app/services.ts';
import { buildHttpServer } from '../src/http/server.ts';
import { createLogger } from '../src/log.ts';
import { buildCertificate, encodeName, toPem } from '../src/pki/certificate.ts';
import { buildCsr } from '../src/pki/csr.ts';
import { mintChallenge } from '../src/scep/challenges.ts';
import { buildPkiRequest, readCertRep } from '../src/scep/client.ts';
import type { BenchRow } from './measure.ts';

/**
 * SCEP issuance: a full PKIOperation (verify, RSA key transport, CSR check, challenge, issue, store, encrypt and sign
 * the CertRep), in-process and over HTTPS. Requests are prepared beforehand: the client's work is not the server's.
 */
export async function scepBench(limits: { rsaSign: number }): Promise<BenchRow[]> {
  const config = resolveConfig(
    {
      data: join(mkdtempSync(join(tmpdir(), 'certmdm-bench-scep-')), 'data'),
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
  const { scep } = services;
  const ra = pki.scepRa.certificate.der;

  // A handful of device keys, each with many requests under fresh challenges.
  const devices = Array.from({ length: 4 }, (_, i) => {
    const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const subject = encodeName([['CN', `bench-device-${i}`]]);
    const selfSigned = buildCertificate(
      {
        subject: [['CN', `bench-device-${i}`]],
        publicKey: keys.publicKey,
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + 86_400_000),
        keyUsage: ['digitalSignature'],
      },
      { selfSigningKey: keys.privateKey },
    );
    return { keys, subject, requester: { signerCertificate: selfSigned, signerKey: keys.privateKey } };
  });
  const prepare = async (n: number) =>
    Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const device = devices[i % devices.length]!;
        const { challenge } = await mintChallenge(app.store, app.clock, { ttlMs: 3_600_000, purpose: 'bench', createdBy: 'bench' });
        const csr = buildCsr({
          subject: device.subject,
          publicKey: device.keys.publicKey,
          privateKey: device.keys.privateKey,
          challengePassword: challenge,
        });
        return { device, ...buildPkiRequest({ requester: device.requester, csr, raCertificate: ra }) };
      }),
    );

  const check = (body: Buffer, r: Awaited<ReturnType<typeof prepare>>[number]) => {
    const rep = readCertRep(body, {
      requester: r.device.requester,
      raCertificate: ra,
      senderNonce: r.senderNonce,
      transactionId: r.transactionId,
    });
    if (rep.status !== 'success') throw new Error(`bench issuance failed: ${JSON.stringify(rep)}`);
  };

  const inProcessRequests = await prepare(300);
  const profiler = process.env.CERTMDM_BENCH_PROFILE ? await import('./profile.ts') : undefined;
  await profiler?.start();
  let start = performance.now();
  const inProcessBodies: Buffer[] = [];
  for (const r of inProcessRequests) inProcessBodies.push((await scep.pkiOperation(r.message, '127.0.0.1')).body as Buffer);
  const inProcess = (inProcessRequests.length * 1000) / (performance.now() - start);
  await profiler?.stop('scep-in-process');
  inProcessRequests.forEach((r, i) => check(inProcessBodies[i]!, r));

  const server = await buildHttpServer({ ...app, logger: createLogger('silent') }, pki, services);
  await server.listen({ host: '127.0.0.1', port: 0 });
  const port = (server.server.address() as { port: number }).port;
  const agent = new Agent({ keepAlive: true, maxSockets: 4, ca: toPem(pki.authority.root.der) });
  const post = (body: Buffer) =>
    new Promise<Buffer>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          servername: 'localhost',
          port,
          path: '/scep?operation=PKIOperation',
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/x-pki-message' },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(Buffer.concat(chunks)));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const httpRequests = await prepare(300);
  const httpBodies: Buffer[] = new Array(httpRequests.length);
  start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < httpRequests.length) {
        const i = next++;
        httpBodies[i] = await post(httpRequests[i]!.message);
      }
    }),
  );
  const overHttp = (httpRequests.length * 1000) / (performance.now() - start);
  httpRequests.forEach((r, i) => check(httpBodies[i]!, r));
  agent.destroy();
  await server.close();
  await app.close();

  const limit = limits.rsaSign / 3;
  return [
    {
      figure: 'SCEP PKCSReq → CertRep, in-process',
      value: inProcess,
      unit: 'issuances/s',
      limitName: 'raw RSA-2048 private ops ÷ 3',
      limit,
    },
    {
      figure: 'SCEP PKCSReq → CertRep, HTTPS, 4 connections',
      value: overHttp,
      unit: 'issuances/s',
      limitName: 'raw RSA-2048 private ops ÷ 3',
      limit,
    },
  ];
}
