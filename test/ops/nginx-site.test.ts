import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { exportRole, freePort, ROOT, run, startServer, tempDir } from '../helpers/cli.ts';
import { plistBody } from '../helpers/device.ts';
import { curl } from '../helpers/mtls.ts';
import { localhostCertificate, startNginx } from '../helpers/nginx.ts';
import { challenge, scepclient } from '../helpers/peers.ts';

const SITE = join(ROOT, 'deploy', 'nginx', 'certmdm.conf');
const TOPIC = 'com.apple.mgmt.External.nginx-site';

test('deploy/nginx/certmdm.conf: nginx -t accepts it, and a device enrolls and checks in through it with its certificate', async (t) => {
  const dataDir = join(tempDir(), 'data');
  const certmdm = await startServer(dataDir, [
    ...['--scep-ciphers', 'aes,des3,des', '--push-topic', TOPIC],
    ...['--mdm-identity-sources', 'proxy', '--trusted-proxies', '127.0.0.1'],
  ]);
  t.after(() => certmdm.stop());
  const work = tempDir('nginx-site-');
  const root = exportRole(dataDir, 'root', work);
  const clientCa = join(work, 'client-ca.pem');
  writeFileSync(clientCa, readFileSync(root, 'utf8') + readFileSync(exportRole(dataDir, 'intermediate', work), 'utf8'));
  const front = localhostCertificate(work, 'front');
  const port = await freePort();

  // The shipped file with this machine's paths and ports: nothing else changed.
  const site = readFileSync(SITE, 'utf8')
    .replaceAll('/etc/nginx/certmdm/mdm.example.com.pem', front.cert)
    .replaceAll('/etc/nginx/certmdm/mdm.example.com.key', front.key)
    .replaceAll('/etc/nginx/certmdm/client-ca.pem', clientCa)
    .replaceAll('/etc/nginx/certmdm/root.pem', root)
    .replaceAll('/etc/nginx/snippets/certmdm-client-cert.conf', join(ROOT, 'deploy', 'nginx', 'certmdm-client-cert.conf'))
    .replace('server 127.0.0.1:8443;', `server 127.0.0.1:${certmdm.port};`)
    .replace('listen 443 ssl;', `listen 127.0.0.1:${port} ssl;`)
    .replace('server_name mdm.example.com;', 'server_name localhost;');
  const nginx = await startNginx(() => site, port);
  t.after(() => nginx.stop());
  const syntax = run('nginx', ['-t', '-p', nginx.dir, '-c', join(nginx.dir, 'nginx.conf')]);
  assert.equal(syntax.status, 0, syntax.stderr);
  assert.match(syntax.stderr, /syntax is ok[\s\S]*test is successful/);

  // Enrollment through nginx: scepclient over the public TLS, no client certificate.
  const base = `https://localhost:${port}`;
  const device = scepclient(`${base}/scep`, front.cert, challenge(dataDir, 'NGINX-DEVICE-1'), 'NGINX-DEVICE-1');
  assert.equal(device.status, 0, device.stderr + device.stdout);
  const key = join(device.dir, 'key.pem');
  const asDevice = ['--cacert', front.cert, '--cert', device.cert, '--key', key];

  // Check-ins with the identity, which nginx verifies and forwards in the one header.
  const authenticate = plistBody({ MessageType: 'Authenticate', UDID: 'NGINX-DEVICE-1', Topic: TOPIC, DeviceName: 'n' });
  assert.equal(curl(`${base}/mdm/checkin`, { body: authenticate, args: asDevice }).status, 200);
  const idle = plistBody({ UDID: 'NGINX-DEVICE-1', Status: 'Idle' });
  assert.equal(curl(`${base}/mdm/server`, { body: idle, contentType: 'application/x-apple-aspen-mdm', args: asDevice }).status, 200);

  // Without a certificate, a header naming the device's is not passed on: refused, never 401.
  const pem = readFileSync(device.cert, 'utf8');
  const spoofed = curl(`${base}/mdm/server`, {
    body: idle,
    contentType: 'application/x-apple-aspen-mdm',
    args: [
      '--cacert',
      front.cert,
      '-H',
      `X-Client-Cert: ${encodeURIComponent(pem)}`,
      '-H',
      `Client-Cert: :${Buffer.from(pem).toString('base64')}:`,
    ],
  });
  assert.equal(spoofed.status, 403, spoofed.body);

  // Bodies over certmdm's limits stop at nginx: 2 MiB for MDM, 256 KiB for SCEP.
  const big = Buffer.alloc(3 * 1024 * 1024, 0x20);
  assert.equal(curl(`${base}/mdm/checkin`, { body: big, args: asDevice }).status, 413);
  assert.equal(
    curl(`${base}/scep?operation=PKIOperation`, {
      method: 'POST',
      body: Buffer.alloc(300 * 1024),
      contentType: 'application/x-pki-message',
      args: ['--cacert', front.cert],
    }).status,
    413,
  );
});
