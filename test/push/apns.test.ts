import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApnsClient } from '../../src/push/apns.ts';
import { fakeApple, newTopic } from '../helpers/apple.ts';
import { freePort, tempDir } from '../helpers/cli.ts';
import { enrollTestDevice, type TestDevice } from '../helpers/device.ts';
import { localhostCertificate, startNginx } from '../helpers/nginx.ts';
import { selfSigned } from '../helpers/openssl.ts';
import { mdmFixture } from '../mdm/fixture.ts';

const GONE = Buffer.alloc(32, 0xaa);
const BAD = Buffer.alloc(32, 0xbb);
const BUSY = Buffer.alloc(32, 0xcc);

function pemDer(file: string): Buffer {
  return Buffer.from(readFileSync(file, 'utf8').replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
}

describe('APNs push through nginx (HTTP/2, TLS, client certificates) standing in for Apple', () => {
  const received: { url: string; headers: IncomingHttpHeaders; body: string }[] = [];
  let f: Awaited<ReturnType<typeof mdmFixture>>;
  let nginx: Awaited<ReturnType<typeof startNginx>>;
  let apple: ReturnType<typeof fakeApple>;
  let topic: string;
  let device: TestDevice;
  let serverCa: string;
  let port: number;
  let busyAnswers = 0;
  const upstream = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      // The BUSY token is throttled twice (429, then 503) before it is accepted: the client must retry.
      if (req.url?.endsWith(BUSY.toString('hex')) && busyAnswers < 2) {
        busyAnswers++;
        res.statusCode = busyAnswers === 1 ? 429 : 503;
        res.setHeader('content-type', 'application/json');
        return res.end(JSON.stringify({ reason: busyAnswers === 1 ? 'TooManyRequests' : 'ServiceUnavailable' }));
      }
      received.push({ url: req.url ?? '', headers: req.headers, body });
      res.setHeader('apns-id', `id-${received.length}`);
      res.end();
    });
  });

  before(async () => {
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const upstreamPort = (upstream.address() as { port: number }).port;
    apple = fakeApple();
    const work = tempDir('apns-');
    localhostCertificate(work, 'apns');
    serverCa = join(work, 'apns.pem');
    port = await freePort();
    nginx = await startNginx(
      () => `server {
    listen 127.0.0.1:${port} ssl http2;
    ssl_certificate ${work}/apns.pem;
    ssl_certificate_key ${work}/apns.key;
    ssl_client_certificate ${apple.root};
    ssl_verify_client on;
    location = /3/device/${GONE.toString('hex')} { default_type application/json; return 410 '{"reason":"Unregistered","timestamp":1700000000000}'; }
    location = /3/device/${BAD.toString('hex')} { default_type application/json; return 400 '{"reason":"BadDeviceToken"}'; }
    location /3/device/ { proxy_pass http://127.0.0.1:${upstreamPort}; }
  }`,
      port,
    );
    f = await mdmFixture({ 'apns-url': `https://localhost:${port}`, 'apns-ca-file': serverCa });
    topic = newTopic();
    const issued = apple.issueWithKey(`/C=US/UID=${topic}/CN=APSP:test`);
    const imported = await f.admin('POST', '/v1/push/certificate', {
      certificate: readFileSync(issued.cert).toString('base64'),
      key: readFileSync(issued.key).toString('base64'),
    });
    assert.equal(imported.statusCode, 201, imported.body);
    device = await enrollTestDevice(f);
    assert.equal(
      (await f.speak(device, { MessageType: 'Authenticate', Topic: topic, DeviceName: 'x', Model: 'm', ModelName: 'n' })).statusCode,
      200,
    );
    assert.equal(
      (
        await f.speak(device, {
          MessageType: 'TokenUpdate',
          Topic: topic,
          Token: { $data: Buffer.alloc(32, 1).toString('base64') },
          PushMagic: 'magic-1',
        })
      ).statusCode,
      200,
    );
  });
  after(async () => {
    nginx?.stop();
    upstream.close();
    await f?.close();
  });

  test('enrollment profiles take their Topic from the imported push certificate', async () => {
    assert.equal(await f.profiles.topic(), topic);
  });

  test('enqueueing pushes: path, headers and body arrive at the stand-in', async () => {
    const before = Date.now();
    const r = await f.admin('POST', '/v1/commands', { devices: [device.udid], command: { RequestType: 'ProfileList' } });
    assert.equal(r.statusCode, 201, r.body);
    assert.equal(r.json().push[device.udid].ok, true);
    const push = received.at(-1)!;
    assert.equal(push.url, `/3/device/${Buffer.alloc(32, 1).toString('hex')}`);
    assert.equal(push.headers['apns-push-type'], 'mdm');
    assert.equal(push.headers['apns-topic'], topic);
    assert.equal(push.headers['apns-priority'], '10');
    const expiration = Number(push.headers['apns-expiration']) * 1000;
    assert.ok(expiration > before + 29 * 86_400_000 && expiration < before + 31 * 86_400_000);
    assert.deepEqual(JSON.parse(push.body), { mdm: 'magic-1' });
    assert.match(nginx.log('access'), /"POST \/3\/device\/[0-9a-f]{64} HTTP\/2\.0" 200/);

    const quiet = await f.admin('POST', '/v1/commands', { devices: [device.udid], command: { RequestType: 'SecurityInfo' }, push: false });
    assert.equal(quiet.json().push, null);
    const byHand = await f.admin('GET', `/v1/push/${device.udid}`);
    assert.deepEqual(byHand.json(), { status: { [device.udid]: { push_result: `id-${received.length}` } } });
  });

  test('410 Unregistered marks the token stale until the next TokenUpdate; 400 is mapped to a clear reason', async () => {
    const stale = await enrollTestDevice(f);
    await f.speak(stale, { MessageType: 'Authenticate', Topic: topic, DeviceName: 'x', Model: 'm', ModelName: 'n' });
    await f.speak(stale, { MessageType: 'TokenUpdate', Topic: topic, Token: { $data: GONE.toString('base64') }, PushMagic: 'm2' });
    const gone = (await f.admin('GET', `/v1/push/${stale.udid}`)).json().status[stale.udid];
    assert.match(gone.push_error, /^Unregistered: the device token is no longer active/);
    assert.ok((await f.app.store.getEnrollment(stale.udid))?.pushTokenInvalidAt);
    const count = received.length;
    const skipped = (await f.admin('GET', `/v1/push/${stale.udid}`)).json().status[stale.udid];
    assert.match(skipped.push_error, /^NotPushable: APNs reported the push token unregistered/);
    await f.speak(stale, {
      MessageType: 'TokenUpdate',
      Topic: topic,
      Token: { $data: Buffer.alloc(32, 2).toString('base64') },
      PushMagic: 'm3',
    });
    assert.equal((await f.app.store.getEnrollment(stale.udid))?.pushTokenInvalidAt, null);
    assert.ok((await f.admin('GET', `/v1/push/${stale.udid}`)).json().status[stale.udid].push_result);
    assert.equal(received.length, count + 1);

    await f.speak(stale, { MessageType: 'TokenUpdate', Topic: topic, Token: { $data: BAD.toString('base64') }, PushMagic: 'm4' });
    const bad = (await f.admin('GET', `/v1/push/${stale.udid}`)).json().status[stale.udid];
    assert.equal(bad.push_error, 'BadDeviceToken: the device token is not valid for this environment');
  });

  test('429 and 5xx are retried with backoff until APNs accepts', async () => {
    const client = new ApnsClient({
      url: `https://localhost:${port}`,
      certificate: (await f.app.store.listCertificates({ role: 'push', status: 'active' }))[0]!.der,
      privateKey: await f.app.keyring.open((await f.app.store.listCertificates({ role: 'push', status: 'active' }))[0]!.keyId!),
      ca: [readFileSync(serverCa, 'utf8')],
      concurrency: 4,
      expirationSeconds: 60,
      retries: 3,
      backoffMs: 5,
    });
    const outcome = await client.push({ token: BUSY, pushMagic: 'busy', topic });
    client.close();
    assert.equal(outcome.ok, true);
    assert.equal(outcome.attempts, 3);
    assert.equal(busyAnswers, 2);
  });

  test('an expired or foreign client certificate is refused by the TLS layer of the stand-in', async () => {
    const count = received.length;
    const key = apple.issueWithKey(`/C=US/UID=${topic}/CN=x`).key;
    const expired = apple.issueExpired(key, topic);
    const stranger = tempDir('stranger-');
    selfSigned({ key: join(stranger, 'k.pem'), cert: join(stranger, 'c.pem'), subject: `/UID=${topic}/CN=stranger`, days: 2 });
    for (const [certificate, keyFile] of [
      [pemDer(expired), key],
      [pemDer(join(stranger, 'c.pem')), join(stranger, 'k.pem')],
    ] as const) {
      const client = new ApnsClient({
        url: `https://localhost:${port}`,
        certificate,
        privateKey: createPrivateKey(readFileSync(keyFile)),
        ca: [readFileSync(serverCa, 'utf8')],
        concurrency: 1,
        expirationSeconds: 60,
        retries: 0,
        backoffMs: 1,
      });
      const outcome = await client.push({ token: Buffer.alloc(32, 1), pushMagic: 'x', topic });
      client.close();
      assert.equal(outcome.ok, false);
      assert.equal(!outcome.ok && outcome.status, 400);
    }
    assert.equal(received.length, count, 'nothing reached the upstream');
    assert.match(nginx.log('error'), /client SSL certificate verify error: \(10:certificate has expired\)/);
    assert.match(nginx.log('error'), /client SSL certificate verify error: \((18|20|21):/);
  });
});
