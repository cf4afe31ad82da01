import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { exportRole, freePort, run, runCli, startServer, tempDir } from '../helpers/cli.ts';
import { plistBody } from '../helpers/device.ts';
import { scepIdentity } from '../helpers/mtls.ts';
import { localhostCertificate, startNginx } from '../helpers/nginx.ts';

const TOPIC = 'com.apple.mgmt.External.peers-test';

function put(url: string, body: Buffer, dir: string, args: string[]) {
  const file = join(dir, `body-${Math.random().toString(16).slice(2)}.plist`);
  writeFileSync(file, body);
  const r = run('curl', [
    '-sS',
    '-X',
    'PUT',
    '-H',
    'Content-Type: application/x-apple-aspen-mdm-checkin',
    '--data-binary',
    `@${file}`,
    '-w',
    '\n%{http_code}',
    ...args,
    url,
  ]);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  return { status: Number(lines.pop()), body: lines.join('\n') };
}

test('mutual TLS: curl presents the SCEP-issued identity to certmdm; without it the request is refused', async (t) => {
  const dataDir = join(tempDir(), 'data');
  const server = await startServer(dataDir, ['--scep-ciphers', 'aes,des3,des', '--mdm-identity-sources', 'mtls']);
  t.after(() => server.stop());
  const root = exportRole(dataDir, 'root', tempDir());
  const udid = 'MTLS-DEVICE-1';
  const id = scepIdentity(dataDir, server.port, root, udid);
  const url = `https://localhost:${server.port}/mdm/checkin`;
  const auth = plistBody({
    MessageType: 'Authenticate',
    UDID: udid,
    Topic: TOPIC,
    DeviceName: 'mTLS Mac',
    Model: 'Mac14,2',
    ModelName: 'MacBook Air',
  });
  const ok = put(url, auth, id.dir, ['--cacert', root, '--cert', id.cert, '--key', id.key]);
  assert.equal(ok.status, 200, ok.body);
  const idle = put(url.replace('checkin', 'server'), plistBody({ UDID: udid, Status: 'Idle' }), id.dir, [
    '--cacert',
    root,
    '--cert',
    id.cert,
    '--key',
    id.key,
  ]);
  assert.equal(idle.status, 200);
  const anonymous = put(url, auth, id.dir, ['--cacert', root]);
  assert.equal(anonymous.status, 403);
  assert.match(anonymous.body, /no client identity/);
  // openssl s_client completes the handshake with the identity (certmdm asks for a certificate naming its CAs).
  const sclient = run(
    'openssl',
    ['s_client', '-connect', `127.0.0.1:${server.port}`, '-cert', id.cert, '-key', id.key, '-CAfile', root, '-verify_return_error'],
    { input: '' },
  );
  assert.equal(sclient.status, 0, sclient.stderr);
  assert.match(sclient.stdout, /Acceptable client certificate CA names[\s\S]*certmdm Intermediate CA/);
  const devices = run('curl', [
    '-sS',
    '--cacert',
    root,
    '-H',
    `Authorization: Bearer ${/^\s+(cmdm_\S+)$/m.exec(server.stderr())![1]}`,
    `https://localhost:${server.port}/v1/devices`,
  ]);
  assert.equal((JSON.parse(devices.stdout).devices as { id: string }[])[0]?.id, udid);
});

test('nginx terminates TLS, verifies the client certificate and passes it on; the same header from elsewhere is refused', async (t) => {
  const dataDir = join(tempDir(), 'data');
  // nginx connects from 127.0.0.3 (proxy_bind): only that address is a trusted proxy.
  const server = await startServer(dataDir, [
    '--scep-ciphers',
    'aes,des3,des',
    '--mdm-identity-sources',
    'proxy',
    '--trusted-proxies',
    '127.0.0.3',
  ]);
  t.after(() => server.stop());
  const work = tempDir('nginx-');
  const root = exportRole(dataDir, 'root', work);
  const intermediate = exportRole(dataDir, 'intermediate', work);
  writeFileSync(join(work, 'client-ca.pem'), readFileSync(root, 'utf8') + readFileSync(intermediate, 'utf8'));
  localhostCertificate(work, 'nginx');
  const port = await freePort();
  const nginx = await startNginx(
    () => `server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${work}/nginx.pem;
    ssl_certificate_key ${work}/nginx.key;
    ssl_client_certificate ${work}/client-ca.pem;
    ssl_verify_client on;
    ssl_verify_depth 2;
    location / {
      proxy_pass https://127.0.0.1:${server.port};
      proxy_bind 127.0.0.3;
      proxy_ssl_verify off;
      proxy_set_header X-Client-Cert $ssl_client_escaped_cert;
    }
  }`,
    port,
  );
  t.after(() => nginx.stop());

  const udid = 'PROXY-DEVICE-1';
  const id = scepIdentity(dataDir, server.port, root, udid);
  const auth = plistBody({
    MessageType: 'Authenticate',
    UDID: udid,
    Topic: TOPIC,
    DeviceName: 'proxied',
    Model: 'iPad13,1',
    ModelName: 'iPad',
  });
  const viaNginx = put(`https://localhost:${port}/mdm/checkin`, auth, id.dir, [
    '--cacert',
    join(work, 'nginx.pem'),
    '--cert',
    id.cert,
    '--key',
    id.key,
  ]);
  assert.equal(viaNginx.status, 200, viaNginx.body + nginx.log('error').slice(-2000));

  const noCert = put(`https://localhost:${port}/mdm/checkin`, auth, id.dir, ['--cacert', join(work, 'nginx.pem')]);
  assert.equal(noCert.status, 400, 'nginx itself refuses a connection without a client certificate');

  // The same header sent straight to certmdm from 127.0.0.1, not the trusted proxy: refused and audited.
  const pem = encodeURIComponent(readFileSync(id.cert, 'utf8'));
  const forged = put(`https://localhost:${server.port}/mdm/checkin`, auth, id.dir, ['--cacert', root, '-H', `X-Client-Cert: ${pem}`]);
  assert.equal(forged.status, 403);
  assert.match(forged.body, /not a trusted proxy/);
  const audit = JSON.parse(runCli(['audit', 'list', '--json', '--data', dataDir, '--limit', '5']).stdout) as {
    action: string;
    outcome: string;
    reason: string;
  }[];
  assert.ok(audit.some((e) => e.action === 'mdm.identity' && e.outcome === 'denied' && /not a trusted proxy/.test(e.reason)));
});
