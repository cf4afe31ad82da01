import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { appleMdmSignature } from '../../src/mdm/sign-message.ts';
import { buildCertificate, encodeName } from '../../src/pki/certificate.ts';
import * as cms from '../../src/pki/cms.ts';
import { buildCsr } from '../../src/pki/csr.ts';
import { parsePlistDict } from '../../src/plist/parse.ts';
import { serializePlist } from '../../src/plist/serialize.ts';
import type { PlistDict } from '../../src/plist/types.ts';
import { buildPkiRequest, readCertRep } from '../../src/scep/client.ts';
import { freePort, runCli, startServer, tempDir, type RunningServer } from '../helpers/cli.ts';
import { startFrontNginx } from '../helpers/nginx.ts';
import { startPostgres } from '../helpers/postgres.ts';

/**
 * Issue 14: 200 devices check in through nginx (TLS termination, round robin) to two certmdm instances on one
 * PostgreSQL database, while commands are enqueued through both; one instance is killed with SIGKILL mid-run. Every
 * command reaches every device, its result is stored once, and no device is handed a command it already answered.
 */
const DEVICES = 200;
const COMMANDS = 6;
const CONCURRENT = 16;
const TOPIC = 'com.apple.mgmt.External.nginx-instances';

interface Device {
  udid: string;
  key: KeyObject;
  certificate: Buffer;
  received: string[];
  answered: Set<string>;
  redeliveredAfterAnswer: string[];
}

test('200 devices through nginx to two instances, commands enqueued through both, one instance killed mid-run', async () => {
  const cluster = await startPostgres();
  after(() => cluster.stop());
  const store = await cluster.createDatabase();
  const dirs = [join(tempDir(), 'a'), join(tempDir(), 'b')];
  const flags = ['--store', store, '--lifecycle-interval-minutes', '0', '--mdm-identity-sources', 'signature'];
  const servers: RunningServer[] = [await startServer(dirs[0]!, flags)];
  const token = /^\s+(cmdm_\S+)$/m.exec(servers[0]!.stderr())![1]!;
  mkdirSync(dirs[1]!, { mode: 0o700 });
  copyFileSync(join(dirs[0]!, 'master.key'), join(dirs[1]!, 'master.key'));
  servers.push(await startServer(dirs[1]!, flags));
  after(() => Promise.all(servers.map((s) => s.stop())));
  const rootFile = join(tempDir(), 'root.pem');
  assert.equal(runCli(['certs', 'export', '--role', 'root', '--out', rootFile, '--data', dirs[0]!, '--store', store]).status, 0);
  const root = readFileSync(rootFile);

  // nginx terminates TLS for the devices and spreads requests over both instances (verifying their certificates).
  const port = await freePort();
  const nginx = await startFrontNginx(
    port,
    servers.map((s) => s.port),
    rootFile,
    {
      upstreamParams: 'max_fails=1 fail_timeout=30s',
      directives: ['proxy_next_upstream error timeout'],
    },
  );
  after(() => nginx.stop());

  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENT * 2 });
  const frontCa = Buffer.from(nginx.certificate);
  const call = (
    url: string,
    method: string,
    body: Buffer | undefined,
    headers: Record<string, string>,
    ca: Buffer,
  ): Promise<{ status: number; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const req = request(url, { method, headers, ca, agent, servername: 'localhost' }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  /** Through nginx, as a device retries: a transport error or a gateway error is tried again. */
  const viaNginx = async (path: string, body: Buffer, headers: Record<string, string>) => {
    for (let attempt = 1; ; attempt++) {
      const r = await call(`https://localhost:${port}${path}`, 'PUT', body, headers, frontCa).catch(() => ({
        status: 0,
        body: Buffer.alloc(0),
      }));
      if ((r.status !== 0 && r.status < 500) || attempt === 20) return r;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const admin = async (instance: number, method: 'GET' | 'POST', path: string, json?: unknown) => {
    const r = await call(
      `https://localhost:${servers[instance]!.port}/v1${path}`,
      method,
      json === undefined ? undefined : Buffer.from(JSON.stringify(json)),
      { authorization: `Bearer ${token}`, ...(json === undefined ? {} : { 'content-type': 'application/json' }) },
      root,
    );
    return { status: r.status, json: JSON.parse(r.body.toString() || 'null') };
  };

  // Enrollment: a challenge from either instance, SCEP and Authenticate through nginx. Keys from a small pool.
  const keys = Array.from({ length: 8 }, () => generateKeyPairSync('rsa', { modulusLength: 2048 }));
  const caCert = await call(`https://localhost:${port}/scep?operation=GetCACert`, 'GET', undefined, {}, frontCa);
  const ra = cms.parseSignedData(caCert.body).certificates.find((c) => !new X509Certificate(c).ca)!;
  const devices: Device[] = [];
  for (let i = 0; i < DEVICES; i++) {
    const { privateKey, publicKey } = keys[i % keys.length]!;
    const udid = `NGINX-${String(i).padStart(4, '0')}`;
    const { challenge } = (await admin(i % 2, 'POST', '/scep/challenges', {})).json as { challenge: string };
    const requester = {
      signerCertificate: buildCertificate(
        {
          subject: [['CN', udid]],
          publicKey,
          notBefore: new Date(Date.now() - 60_000),
          notAfter: new Date(Date.now() + 3_600_000),
          keyUsage: ['digitalSignature'],
        },
        { selfSigningKey: privateKey },
      ),
      signerKey: privateKey,
    };
    const csr = buildCsr({ subject: encodeName([['CN', udid]]), publicKey, privateKey, challengePassword: challenge });
    const pki = buildPkiRequest({ requester, csr, raCertificate: ra });
    const rep = await call(
      `https://localhost:${port}/scep?operation=PKIOperation`,
      'POST',
      pki.message,
      { 'content-type': 'application/x-pki-message' },
      frontCa,
    );
    const result = readCertRep(rep.body, { requester, raCertificate: ra, ...pki });
    assert.equal(result.status, 'success', `device ${i} enrolled`);
    devices.push({
      udid,
      key: privateKey,
      certificate: result.certificates[0]!,
      received: [],
      answered: new Set(),
      redeliveredAfterAnswer: [],
    });
  }
  const speak = (d: Device, message: PlistDict) => {
    const body = serializePlist({ UDID: d.udid, ...message });
    const checkin = 'MessageType' in message;
    return viaNginx(checkin ? '/mdm/checkin' : '/mdm/server', body, {
      'content-type': checkin ? 'application/x-apple-aspen-mdm-checkin' : 'application/x-apple-aspen-mdm',
      'mdm-signature': appleMdmSignature(body, d.certificate, d.key),
    });
  };
  for (const d of devices) {
    assert.equal(
      (await speak(d, { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: d.udid, Model: 'iPhone15,2', ModelName: 'iPhone' })).status,
      200,
    );
    assert.equal(
      (await speak(d, { MessageType: 'TokenUpdate', Topic: TOPIC, Token: Buffer.alloc(32, 1), PushMagic: `magic-${d.udid}` })).status,
      200,
    );
  }

  // Commands enqueued through both instances, each for every device.
  const enqueued: string[] = [];
  const enqueue = async (instance: number) => {
    const r = await admin(instance, 'POST', '/commands', {
      devices: devices.map((d) => d.udid),
      command: { RequestType: 'SecurityInfo' },
      push: false,
    });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    enqueued.push(r.json.command_uuid as string);
  };
  for (let n = 0; n < COMMANDS / 2; n++) await enqueue(n % 2);

  // Sessions: Idle, then each command handed out is answered, until the queue is empty. Halfway, the first instance
  // is killed; the remaining commands are enqueued through the second while devices keep checking in.
  const sessionStarts: number[] = [];
  const session = async (d: Device) => {
    sessionStarts.push(Date.now());
    let r = await speak(d, { Status: 'Idle' });
    while (r.status === 200 && r.body.length > 0) {
      const command = parsePlistDict(r.body);
      const uuid = command.CommandUUID as string;
      if (d.answered.has(uuid)) d.redeliveredAfterAnswer.push(uuid);
      d.received.push(uuid);
      r = await speak(d, { Status: 'Acknowledged', CommandUUID: uuid });
      if (r.status === 200) d.answered.add(uuid);
    }
    assert.equal(r.status, 200, `${d.udid}: ${r.status} ${r.body.toString()}`);
  };
  const round = async (list: Device[]) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENT }, async () => {
        while (next < list.length) await session(list[next++]!);
      }),
    );
  };
  let killedAt = 0;
  await Promise.all([
    round(devices),
    (async () => {
      await new Promise((r) => setTimeout(r, 1500));
      killedAt = Date.now();
      await servers[0]!.crash();
    })(),
  ]);
  const [before, afterKill] = [sessionStarts.filter((t) => t < killedAt).length, sessionStarts.filter((t) => t >= killedAt).length];
  assert.ok(before > 0 && afterKill > 0, `the instance died mid-run (${before} sessions before, ${afterKill} after)`);
  for (let n = COMMANDS / 2; n < COMMANDS; n++) await enqueue(1); // the first instance is gone: through the second
  await round(devices);
  await round(devices); // a device that had nothing left sees nothing new

  for (const d of devices) {
    assert.deepEqual(d.redeliveredAfterAnswer, [], `${d.udid}: no command handed out again after its answer was stored`);
    assert.deepEqual([...d.answered].sort(), [...enqueued].sort(), `${d.udid}: every command answered`);
  }
  // The queue as the surviving instance stores it: every command acknowledged once, with its result.
  for (const d of devices.filter((_, i) => i % 20 === 0)) {
    const queue = (await admin(1, 'GET', `/devices/${d.udid}/commands`)).json.commands as {
      command_uuid: string;
      status: string;
      result: string | null;
    }[];
    assert.deepEqual(queue.map((q) => q.command_uuid).sort(), [...enqueued].sort());
    assert.ok(
      queue.every((q) => q.status === 'acknowledged' && q.result?.includes('Acknowledged')),
      JSON.stringify(queue),
    );
  }
  const deliveries = devices.reduce((n, d) => n + d.received.length, 0);
  console.log(
    `killed with ${before} sessions begun and ${afterKill} to come; ${DEVICES} devices, ${enqueued.length} commands each: ${deliveries} deliveries for ${DEVICES * enqueued.length} commands (re-sent after a lost answer: ${deliveries - DEVICES * enqueued.length})`,
  );
});
