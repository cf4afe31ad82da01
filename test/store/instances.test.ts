import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { run, runCli, startServer, tempDir, type RunningServer } from '../helpers/cli.ts';
import { startPostgres, type ThrowawayPostgres } from '../helpers/postgres.ts';
import { envelope, makeCsr, newRequester, pkiMessage, readCertRep } from '../helpers/scep.ts';
import { enrollTestDevice, mdmSignature, plistBody, type TestDevice } from '../helpers/device.ts';

function send(
  method: 'POST' | 'PUT',
  url: string,
  body: Buffer,
  caFile: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, ca: readFileSync(caFile), headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const post = (url: string, body: Buffer, caFile: string) =>
  send('POST', url, body, caFile, { 'content-type': 'application/x-pki-message' });
const TOPIC = 'com.apple.mgmt.External.instances-test';
const FLAGS = (store: string) => [
  '--store',
  store,
  '--lifecycle-interval-minutes',
  '0',
  '--scep-ciphers',
  'aes,des3,des',
  '--pki-poll-seconds',
  '1',
];

/**
 * Several `certmdm serve` processes on one PostgreSQL database (issue 14): what one instance decides, the others
 * honour on their next request, and a race between instances has one winner. Real processes; SCEP messages and
 * Mdm-Signature made by openssl, bodies by Python's plistlib.
 */
describe('two instances on one PostgreSQL database', () => {
  let cluster: ThrowawayPostgres;
  let store: string;
  const dirs = [join(tempDir(), 'a'), join(tempDir(), 'b')];
  const servers: RunningServer[] = [];
  let root: string;
  const cli = (args: string[], instance = 0) => {
    const r = runCli([...args, '--data', dirs[instance]!, '--store', store]);
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    cluster = await startPostgres();
    store = await cluster.createDatabase();
    // The first instance creates the CA and the master key; the second shares the database and that key.
    servers.push(await startServer(dirs[0]!, FLAGS(store)));
    mkdirSync(dirs[1]!, { mode: 0o700 });
    copyFileSync(join(dirs[0]!, 'master.key'), join(dirs[1]!, 'master.key'));
    servers.push(await startServer(dirs[1]!, FLAGS(store)));
    root = join(tempDir(), 'root.pem');
    cli(['certs', 'export', '--role', 'root', '--out', root]);
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    cluster?.stop();
  });

  test('both instances serve the one CA', () => {
    const fingerprints = dirs.map((_, i) =>
      (JSON.parse(cli(['certs', 'list', '--json'], i)) as { role: string; fingerprintSha256: string }[]).filter((c) => c.role === 'root'),
    );
    assert.equal(fingerprints[0]!.length, 1);
    assert.deepEqual(fingerprints[0], fingerprints[1]);
  });

  test('six concurrent SCEP requests with one challenge, spread over both instances: exactly one certificate', async () => {
    const challenge = cli(['scep', 'challenge']).trim();
    const ra = join(tempDir(), 'ra.pem');
    cli(['certs', 'export', '--role', 'scep-ra', '--out', ra]);
    const identities = () =>
      (JSON.parse(cli(['certs', 'list', '--json'])) as { role: string }[]).filter((c) => c.role === 'device-identity').length;
    const before = identities();
    // Six devices' PKCSReq, made by openssl ahead of time so that all six reach the instances at the same moment.
    const requests = Array.from({ length: 6 }, (_, i) => {
      const requester = newRequester();
      return { requester, body: pkiMessage(requester, envelope(makeCsr(requester, { challenge, cn: `race-${i}` }), ra)) };
    });
    const responses = await Promise.all(
      requests.map(({ body }, i) => post(`https://localhost:${servers[i % 2]!.port}/scep?operation=PKIOperation`, body, root)),
    );
    const statuses = responses.map((r, i) =>
      r.status === 200 ? readCertRep(r.body, requests[i]!.requester, root).status : `HTTP ${r.status}`,
    );
    assert.equal(statuses.filter((s) => s === '0').length, 1, `one SUCCESS among ${statuses.join(', ')}`);
    assert.equal(identities(), before + 1, 'one certificate in the inventory');
  });

  test('what one instance decides about a binding, the other honours on the next request', async () => {
    const ra = join(tempDir(), 'ra.pem');
    cli(['certs', 'export', '--role', 'scep-ra', '--out', ra]);
    const scep = {
      ra,
      root,
      challenge: async () => ({ challenge: cli(['scep', 'challenge']).trim() }),
      post: async (body: Buffer) => ({
        rawPayload: (await post(`https://localhost:${servers[0]!.port}/scep?operation=PKIOperation`, body, root)).body,
      }),
    };
    const speak = (instance: number, device: TestDevice, message: Record<string, unknown>, udid = device.udid) => {
      const body = plistBody({ UDID: udid, ...message });
      const path = 'MessageType' in message ? '/mdm/checkin' : '/mdm/server';
      return send('PUT', `https://localhost:${servers[instance]!.port}${path}`, body, root, {
        'content-type': 'application/x-apple-aspen-mdm',
        'mdm-signature': mdmSignature(body, device),
      });
    };
    const authenticate = { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: 'x', Model: 'm', ModelName: 'n' };
    const device = await enrollTestDevice(scep, 'INSTANCES-DEVICE-1');
    assert.equal((await speak(0, device, authenticate)).status, 200, 'enrolled on the first instance');
    assert.equal((await speak(1, device, { Status: 'Idle' })).status, 200, 'known to the second at once');

    // Another device's identity claims this device's UDID on the second instance: refused there, nothing moved.
    const intruder = await enrollTestDevice(scep, 'INSTANCES-INTRUDER');
    const takeover = await speak(1, intruder, authenticate, device.udid);
    assert.ok([403, 409].includes(takeover.status), `the takeover is refused (${takeover.status}: ${takeover.body})`);
    assert.equal((await speak(0, device, { Status: 'Idle' })).status, 200, 'the device keeps its binding on the first instance');

    // CheckOut on the second instance: the first refuses the device's next message.
    assert.equal((await speak(1, device, { MessageType: 'CheckOut', Topic: TOPIC })).status, 200);
    const after = await speak(0, device, { Status: 'Idle' });
    assert.notEqual(after.status, 200, 'a checked-out enrollment is served by no instance');
    assert.notEqual(after.status, 401, 'never 401: a real device would unenroll');
  });

  test('identities each instance remembers: a supersession or a revocation committed anywhere is refused by both at once', async () => {
    const ra = join(tempDir(), 'ra.pem');
    cli(['certs', 'export', '--role', 'scep-ra', '--out', ra]);
    const scepOn = (instance: number) => ({
      ra,
      root,
      challenge: async () => ({ challenge: cli(['scep', 'challenge']).trim() }),
      post: async (body: Buffer) => ({
        rawPayload: (await post(`https://localhost:${servers[instance]!.port}/scep?operation=PKIOperation`, body, root)).body,
      }),
    });
    const speak = (instance: number, device: TestDevice, message: Record<string, unknown>) => {
      const body = plistBody({ UDID: device.udid, ...message });
      return send(
        'PUT',
        `https://localhost:${servers[instance]!.port}${'MessageType' in message ? '/mdm/checkin' : '/mdm/server'}`,
        body,
        root,
        {
          'content-type': 'application/x-apple-aspen-mdm',
          'mdm-signature': mdmSignature(body, device),
        },
      );
    };
    const idle = { Status: 'Idle' };
    const authenticate = { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: 'x', Model: 'm', ModelName: 'n' };
    const device = await enrollTestDevice(scepOn(0), 'INSTANCES-CACHE-1');
    assert.equal((await speak(0, device, authenticate)).status, 200);
    // Both instances now remember the identity, its binding and the enrollment.
    for (const instance of [0, 1, 0, 1]) assert.equal((await speak(instance, device, idle)).status, 200);

    // The device renews on the first instance (a RenewalReq signed with its identity), the renewed identity
    // authenticates and speaks again there: the first identity is superseded.
    const next = newRequester();
    const renewalRequest = pkiMessage(next, envelope(makeCsr(next, { cn: device.udid }), ra), {
      messageType: '17',
      signerCertificate: device.certDer,
      signerKey: device.requester.key,
    });
    const rep = readCertRep(
      (await scepOn(0).post(renewalRequest)).rawPayload,
      { ...next, keyPem: device.requester.keyPem, selfSignedPem: device.certPem },
      root,
    );
    assert.equal(rep.status, '0', 'the current identity may renew itself');
    const renewedPem = join(next.dir, 'renewed.pem');
    writeFileSync(renewedPem, rep.certificates);
    const renewed: TestDevice = {
      udid: device.udid,
      requester: next,
      certPem: renewedPem,
      certDer: Buffer.from(new X509Certificate(rep.certificates).raw),
    };
    assert.equal((await speak(0, renewed, authenticate)).status, 200);
    assert.equal((await speak(0, renewed, idle)).status, 200, 'the renewed identity in use: the first one is retired');
    // The second instance had the first identity as the enrollment's current one: it refuses it on the very next message.
    const stale = await speak(1, device, idle);
    assert.equal(stale.status, 403, `the superseded identity is refused by the other instance at once (${stale.body})`);
    assert.equal((await speak(1, renewed, idle)).status, 200);

    // A revocation committed directly in the database (as any instance or tool would): refused by both at once.
    const db = new pg.Client({ connectionString: store });
    await db.connect();
    try {
      const revoked = await db.query("UPDATE certificates SET status = 'revoked' WHERE fingerprint_sha256 = $1", [
        createHash('sha256').update(renewed.certDer).digest('hex'),
      ]);
      assert.equal(revoked.rowCount, 1);
    } finally {
      await db.end();
    }
    for (const instance of [1, 0]) {
      const refused = await speak(instance, renewed, idle);
      assert.equal(refused.status, 403, `instance ${instance} refuses the revoked identity on its next request (${refused.body})`);
      assert.match(refused.body.toString(), /revoked/);
    }
  });

  test('a TLS certificate re-issued through one instance reaches the other without a restart', async () => {
    const presented = (port: number) => {
      const r = run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost'], { input: '' });
      const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout)?.[0];
      assert.ok(pem, r.stderr);
      return new X509Certificate(pem);
    };
    const before = presented(servers[1]!.port);
    assert.ok(!before.subjectAltName?.includes('mdm2.test'));
    // The first instance restarts with another hostname: its start re-issues the TLS certificate for it.
    await servers[0]!.stop();
    servers[0] = await startServer(dirs[0]!, [...FLAGS(store), '--hostname', 'localhost,127.0.0.1,mdm2.test']);
    assert.ok(presented(servers[0]!.port).subjectAltName?.includes('DNS:mdm2.test'));
    const started = Date.now();
    for (;;) {
      const now = presented(servers[1]!.port);
      if (now.subjectAltName?.includes('DNS:mdm2.test')) {
        assert.notEqual(now.fingerprint256, before.fingerprint256);
        break;
      }
      assert.ok(Date.now() - started < 15_000, 'the second instance swapped in the new TLS certificate within its poll interval');
      await new Promise((r) => setTimeout(r, 200));
    }
    // The log line follows the swap (and the pipe): waited for, not assumed.
    for (let i = 0; i < 100 && !/server certificates changed by another instance/.test(servers[1]!.stdout()); i++)
      await new Promise((r) => setTimeout(r, 50));
    assert.match(servers[1]!.stdout(), /server certificates changed by another instance/);
  });
});
