import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { exportRole, freePort, run, runCli, startServer, tempDir } from '../helpers/cli.ts';
import { localhostCertificate, startNginx } from '../helpers/nginx.ts';

const presentedMeta = (dataDir: string) =>
  run('python3', [
    '-c',
    "import sqlite3,sys; r=sqlite3.connect(sys.argv[1]).execute(\"SELECT value FROM meta WHERE key='presented_chain'\").fetchone(); print(r[0] if r else '')",
    join(dataDir, 'certmdm.db'),
  ]).stdout.trim();

test('certmdm probe: what devices are shown at the public URL, trusted or not, recorded for /metrics; bad targets refused', async (t) => {
  const dataDir = join(tempDir(), 'data');
  const metricsPort = await freePort();
  // The lifecycle runner probes too: off here, so what is recorded is the CLI's alone.
  const server = await startServer(dataDir, ['--metrics-port', String(metricsPort), '--lifecycle-interval-minutes', '0']);
  t.after(() => server.stop());
  const scrape = () => run('curl', ['-sS', `http://127.0.0.1:${metricsPort}/metrics`]).stdout;

  // certmdm's own listener: its TLS chain ends in certmdm's root, which its profiles install.
  const own = runCli(['probe', '--url', `https://localhost:${server.port}`, '--data', dataDir]);
  assert.equal(own.status, 0, own.stderr);
  assert.match(own.stdout, /trusted by devices: it ends in certmdm's root/);
  const tls = new X509Certificate(readFileSync(exportRole(dataDir, 'tls')));
  assert.match(own.stdout, new RegExp(`#${tls.serialNumber.toLowerCase()}`));
  await new Promise((r) => setTimeout(r, 1100)); // the metrics share one read of the store per second
  assert.match(scrape(), /^certmdm_presented_chain_trusted 1$/m);

  // Behind a proxy with a certificate devices do not hold: reported, recorded, exit 3.
  const work = tempDir('probe-');
  const front = localhostCertificate(work, 'front');
  const port = await freePort();
  const nginx = await startNginx(
    () =>
      `server { listen 127.0.0.1:${port} ssl; ssl_certificate ${front.cert}; ssl_certificate_key ${front.key}; location / { return 204; } }`,
    port,
  );
  t.after(() => nginx.stop());
  const proxied = runCli(['probe', '--url', `https://localhost:${port}`, '--data', dataDir, '--json']);
  assert.equal(proxied.status, 3, proxied.stderr);
  const report = JSON.parse(proxied.stdout) as { trusted: boolean; problem: string; chain: { serial: string; notAfter: string }[] };
  assert.equal(report.trusted, false);
  assert.match(report.problem, /devices would refuse it/);
  const frontCert = new X509Certificate(readFileSync(front.cert));
  assert.equal(report.chain[0]!.serial, frontCert.serialNumber.toLowerCase());
  await new Promise((r) => setTimeout(r, 1100));
  const metrics = scrape();
  assert.match(metrics, /^certmdm_presented_chain_trusted 0$/m);
  assert.ok(
    metrics.includes(
      `certmdm_certificate_not_after_timestamp_seconds{role="presented",subject_cn="localhost",serial="${frontCert.serialNumber.toLowerCase()}"} ${Date.parse(frontCert.validTo) / 1000}`,
    ),
    'the presented certificate is watched by its expiry',
  );

  // And in the plan, beside the certificates certmdm renews itself.
  const plan = runCli(['lifecycle', 'plan', '--data', dataDir]);
  assert.equal(plan.status, 0, plan.stderr);
  assert.match(
    plan.stdout,
    new RegExp(
      `presented +CN=localhost #${frontCert.serialNumber.toLowerCase().slice(0, 8)}.*shown to devices at https://localhost:${port}.*NOT TRUSTED`,
    ),
  );

  // Unreachable, and a certificate for another name: one line each, and the recorded report stays as it was.
  const recorded = presentedMeta(dataDir);
  const closed = await freePort();
  for (const [url, reason] of [
    [`https://127.0.0.1:${closed}`, /cannot reach https:\/\/127\.0\.0\.1:\d+: connection refused/],
    [`https://127.0.0.1:${port}`, /presents a certificate for localhost, not 127\.0\.0\.1/],
    ['http://localhost', /over https/],
  ] as const) {
    const r = runCli(['probe', '--url', url, '--data', dataDir]);
    assert.notEqual(r.status, 0);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, reason);
  }
  assert.equal(presentedMeta(dataDir), recorded, 'nothing recorded for a refused probe');
});
