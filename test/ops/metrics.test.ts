import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort, run, runCli, tempDir } from '../helpers/cli.ts';
import { mtlsServer, scepIdentity } from '../helpers/mtls.ts';

const TOPIC = 'com.apple.mgmt.External.metrics-test';

/** The value of one series in Prometheus text format, or undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const got = Object.fromEntries([...(match[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(match[4]);
  }
  return undefined;
}

test('/metrics on its own loopback listener: promtool accepts it, and it says what the inventory and the fleet say', async (t) => {
  const metricsPort = await freePort();
  const { dataDir, server, say, authenticate, root } = await mtlsServer(TOPIC, ['--metrics-port', String(metricsPort)]);
  t.after(() => server.stop());
  assert.match(server.stderr(), new RegExp(`metrics +http://127\\.0\\.0\\.1:${metricsPort}/metrics`));

  // Two devices enroll and check in; a third identity claims the first device's UDID and is refused.
  const devices = ['METRICS-DEVICE-1', 'METRICS-DEVICE-2'];
  const identities = devices.map((udid) => scepIdentity(dataDir, server.port, root, udid));
  for (const [i, udid] of devices.entries()) {
    assert.equal(say(identities[i]!, authenticate(udid)).status, 200);
    assert.equal(say(identities[i]!, { UDID: udid, Status: 'Idle' }).status, 200);
  }
  const intruder = scepIdentity(dataDir, server.port, root, 'METRICS-INTRUDER');
  assert.equal(say(intruder, { UDID: devices[0], Status: 'Idle' }).status, 403);

  const scrape = run('curl', ['-sS', '-D', '-', `http://127.0.0.1:${metricsPort}/metrics`]);
  assert.equal(scrape.status, 0, scrape.stderr);
  const [head, text] = scrape.stdout.split('\r\n\r\n') as [string, string];
  assert.match(head, /content-type: text\/plain; version=0\.0\.4/i);
  const file = join(tempDir(), 'metrics.txt');
  writeFileSync(file, text);
  // promtool's lint: names, types, help, units (Debian prometheus).
  const lint = run('sh', ['-c', `promtool check metrics < ${file}`]);
  assert.equal(lint.status, 0, lint.stdout + lint.stderr);

  // Every server-side certificate with its real expiry; the push certificate absent (none imported).
  const inventory = JSON.parse(runCli(['certs', 'list', '--json', '--data', dataDir]).stdout) as {
    role: string;
    status: string;
    serial: string;
    notAfter: string;
    notBefore: string;
  }[];
  for (const role of ['root', 'intermediate', 'tls', 'profile-signing', 'scep-ra']) {
    const c = inventory.find((x) => x.role === role && x.status === 'active')!;
    const labels = { role, serial: c.serial };
    assert.equal(sample(text, 'certmdm_certificate_not_after_timestamp_seconds', labels), Date.parse(c.notAfter) / 1000, role);
    assert.equal(sample(text, 'certmdm_certificate_not_before_timestamp_seconds', labels), Date.parse(c.notBefore) / 1000, role);
    const renewal = sample(text, 'certmdm_certificate_renewal_timestamp_seconds', labels);
    assert.ok(renewal !== undefined && renewal < Date.parse(c.notAfter) / 1000, `${role}: a replacement is planned before it expires`);
  }
  assert.equal(sample(text, 'certmdm_certificate_not_after_timestamp_seconds', { role: 'push' }), undefined);

  // Device identities aggregated, never per device; both current.
  assert.equal(sample(text, 'certmdm_devices', { state: 'current' }), 2);
  for (const state of ['renewing', 'at_risk', 'rescued', 'lost']) assert.equal(sample(text, 'certmdm_devices', { state }), 0, state);
  assert.equal(sample(text, 'certmdm_device_identity_expiry_seconds_count'), 2);
  assert.equal(sample(text, 'certmdm_device_identity_expiry_seconds_bucket', { le: '86400' }), 0);
  assert.equal(sample(text, 'certmdm_device_identity_expiry_seconds_bucket', { le: '+Inf' }), 2);
  assert.ok(!text.includes('METRICS-DEVICE'), 'no series names a device');

  // Counters of this process.
  assert.equal(sample(text, 'certmdm_checkins_total', { message_type: 'Authenticate', outcome: 'ok' }), 2);
  assert.equal(sample(text, 'certmdm_command_reports_total', { status: 'Idle', outcome: 'ok' }), 2);
  assert.equal(sample(text, 'certmdm_command_reports_total', { status: 'Idle', outcome: 'refused' }), 1);
  assert.equal(sample(text, 'certmdm_identity_refusals_total', { reason: 'bound-to-another-enrollment' }) ?? 0, 0);
  assert.equal(sample(text, 'certmdm_identity_refusals_total', { reason: 'not-bound' }), 1);
  assert.equal(sample(text, 'certmdm_scep_issuances_total', { outcome: 'ok' }), 3);
  assert.equal(sample(text, 'certmdm_command_queue_depth', { status: 'queued' }), 0);
  assert.ok((sample(text, 'certmdm_lifecycle_last_run_timestamp_seconds') ?? 0) > 0, 'the lifecycle runner ran at start');
  assert.equal(sample(text, 'certmdm_lifecycle_interval_seconds'), 3600);
  assert.ok((sample(text, 'process_cpu_seconds_total') ?? 0) > 0);
  assert.ok(sample(text, 'nodejs_eventloop_lag_p99_seconds') !== undefined);

  // Only loopback listens, and only /metrics is there.
  assert.notEqual(run('curl', ['-sS', '-o', '/dev/null', `http://127.0.0.2:${metricsPort}/metrics`]).status, 0);
  assert.equal(run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${metricsPort}/v1/certs`]).stdout, '404');
});
