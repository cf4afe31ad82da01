import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:http2';
import { join } from 'node:path';
import { ApnsClient } from '../src/push/apns.ts';
import { fakeApple, newTopic } from '../test/helpers/apple.ts';
import { freePort, run, tempDir } from '../test/helpers/cli.ts';
import { localhostCertificate, startNginx } from '../test/helpers/nginx.ts';
import type { BenchRow } from './measure.ts';

const PUSHES = 4000;

/**
 * Pushes per second to nginx standing in for APNs (HTTP/2, TLS, client certificate verified), over one connection:
 * one at a time, and at the default concurrency. The limit is a bare node:http2 client doing the same POSTs on its
 * own connection in the same run.
 */
export async function pushBench(): Promise<BenchRow[]> {
  if (run('nginx', ['-v']).status !== 0) {
    console.log('push bench skipped: nginx is not installed (the test setup installs it)');
    return [];
  }
  const apple = fakeApple();
  const topic = newTopic();
  const identity = apple.issueWithKey(`/C=US/UID=${topic}/CN=APSP:bench`);
  const work = tempDir('bench-apns-');
  localhostCertificate(work, 'apns');
  const port = await freePort();
  const nginx = await startNginx(
    () => `server {
    listen 127.0.0.1:${port} ssl http2;
    access_log off;
    http2_max_concurrent_streams 1000;
    keepalive_requests 1000000;
    ssl_certificate ${work}/apns.pem;
    ssl_certificate_key ${work}/apns.key;
    ssl_client_certificate ${apple.root};
    ssl_verify_client on;
    location /3/device/ { return 200; }
  }`,
    port,
  );
  const ca = [readFileSync(join(work, 'apns.pem'), 'utf8')];
  const certificate = Buffer.from(readFileSync(identity.cert, 'utf8').replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  const privateKey = createPrivateKey(readFileSync(identity.key));
  const token = Buffer.alloc(32, 7);
  try {
    const measure = async (concurrency: number, count: number) => {
      const client = new ApnsClient({
        url: `https://localhost:${port}`,
        certificate,
        privateKey,
        ca,
        concurrency,
        expirationSeconds: 86_400,
        retries: 0,
        backoffMs: 1,
      });
      await client.push({ token, pushMagic: 'warm-up', topic });
      const start = performance.now();
      const outcomes = await Promise.all(Array.from({ length: count }, () => client.push({ token, pushMagic: 'bench', topic })));
      const rate = (count * 1000) / (performance.now() - start);
      client.close();
      if (outcomes.some((o) => !o.ok)) throw new Error('a bench push failed');
      return rate;
    };
    // The limit: bare HTTP/2 POSTs with the same TLS identity and headers, 100 in flight, no certmdm code.
    const session = connect(`https://localhost:${port}`, { ca, cert: readFileSync(identity.cert), key: readFileSync(identity.key) });
    const post = () =>
      new Promise<void>((resolve, reject) => {
        const stream = session.request({
          ':method': 'POST',
          ':path': `/3/device/${token.toString('hex')}`,
          'apns-push-type': 'mdm',
          'apns-topic': topic,
        });
        stream.on('response', () => undefined);
        stream.on('data', () => undefined);
        stream.on('end', resolve);
        stream.on('error', reject);
        stream.end('{"mdm":"bench"}');
      });
    await post();
    const start = performance.now();
    for (let sent = 0; sent < PUSHES; sent += 100) await Promise.all(Array.from({ length: 100 }, post));
    const bare = (PUSHES * 1000) / (performance.now() - start);
    session.close();

    const sequential = await measure(1, 500);
    const concurrent = await measure(100, PUSHES);
    return [
      {
        figure: 'APNs pushes to nginx stand-in, one connection, 1 at a time',
        value: sequential,
        unit: 'pushes/s',
        limitName: 'bare node:http2, 100 in flight',
        limit: bare,
      },
      {
        figure: 'APNs pushes to nginx stand-in, one connection, 100 at a time',
        value: concurrent,
        unit: 'pushes/s',
        limitName: 'bare node:http2, 100 in flight',
        limit: bare,
      },
    ];
  } finally {
    nginx.stop();
  }
}
