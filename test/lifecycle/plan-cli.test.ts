import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { exportRole, run, runCli, startServer, tempDir, TEST_FLAGS } from '../helpers/cli.ts';
import { plistBody } from '../helpers/device.ts';
import { envelope, makeCsr, newRequester, pkiMessage, readCertRep } from '../helpers/scep.ts';
import { fakeApple, newTopic } from '../helpers/apple.ts';

const DAY = 86_400_000;

interface Reported {
  role: string;
  id: string;
  subject: string;
  serial: string;
  notAfter: string;
  deviceId?: string;
  dependants: { devices: number; profiles: string[] };
  action: { kind: string; at: string; dueNow: boolean } | null;
  note: string;
  warnings?: { days: number; at: string }[];
}
interface Report {
  at: string;
  expiries: Reported[];
  identities: { count: number; byMonth: { month: string; identities: number }[]; entries: Reported[] };
  due: { kind: string; deviceId?: string }[];
}

function planJson(dataDir: string, at?: string): Report {
  const r = runCli(['lifecycle', 'plan', '--json', ...(at ? ['--at', at] : []), '--data', dataDir]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Report;
}

/** A device enrolled the real way: SCEP PKIOperation to the running server, then Authenticate with mutual TLS. */
function enrollDevice(dataDir: string, port: number, udid: string): void {
  const work = tempDir('plan-device-');
  const root = exportRole(dataDir, 'root', work);
  const ra = exportRole(dataDir, 'scep-ra', work);
  const challenge = runCli(['scep', 'challenge', '--data', dataDir]).stdout.trim();
  const requester = newRequester();
  const message = pkiMessage(requester, envelope(makeCsr(requester, { challenge, cn: udid }), ra));
  const file = join(work, 'pkimessage.der');
  writeFileSync(file, message);
  const repFile = join(work, 'certrep.der');
  const posted = run('curl', [
    '-sS',
    '--cacert',
    root,
    '-H',
    'Content-Type: application/x-pki-message',
    '--data-binary',
    `@${file}`,
    '-o',
    repFile,
    `https://localhost:${port}/scep?operation=PKIOperation`,
  ]);
  assert.equal(posted.status, 0, posted.stderr);
  const rep = readCertRep(readFileSync(repFile), requester, root);
  assert.equal(rep.status, '0');
  const certPem = join(work, 'identity.pem');
  writeFileSync(certPem, rep.certificates);
  const authenticate = join(work, 'authenticate.plist');
  writeFileSync(authenticate, plistBody({ MessageType: 'Authenticate', UDID: udid, Topic: 'com.apple.mgmt.External.plan-test' }));
  const checkin = run('curl', [
    '-sS',
    '-X',
    'PUT',
    '--cacert',
    root,
    '--cert',
    certPem,
    '--key',
    requester.keyPem,
    '-H',
    'Content-Type: application/x-apple-aspen-mdm-checkin',
    '--data-binary',
    `@${authenticate}`,
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    `https://localhost:${port}/mdm/checkin`,
  ]);
  assert.equal(checkin.stdout, '200', checkin.stderr);
}

test('certmdm lifecycle plan lists every upcoming expiry with its dependants and the day the planner acts', async (t) => {
  const dataDir = join(tempDir(), 'data');
  const server = await startServer(dataDir);
  t.after(() => server.stop());
  enrollDevice(dataDir, server.port, 'PLAN-DEVICE-1');
  // The push certificate, from a CSR made here and signed by a stand-in for Apple.
  const work = tempDir('plan-push-');
  assert.equal(runCli(['push', 'csr', '--out', join(work, 'push.csr'), '--data', dataDir]).status, 0);
  const topic = newTopic();
  const pushPem = fakeApple().issue(join(work, 'push.csr'), `/C=US/UID=${topic}/CN=APSP:${topic.split('.').pop()}`);
  assert.equal(runCli(['push', 'import', pushPem, '--data', dataDir]).status, 0);
  await server.stop();

  const report = planJson(dataDir);
  const roles = report.expiries.map((e) => e.role);
  for (const role of ['root', 'intermediate', 'tls', 'profile-signing', 'scep-ra', 'push']) assert.ok(roles.includes(role), role);
  const notAfters = report.expiries.map((e) => e.notAfter);
  assert.deepEqual(notAfters, [...notAfters].sort(), 'soonest expiry first');
  // Subjects and serials are the inventory's.
  const inventory = JSON.parse(runCli(['certs', 'list', '--json', '--data', dataDir]).stdout) as {
    id: string;
    subject: string;
    serial: string;
  }[];
  for (const e of report.expiries) {
    const record = inventory.find((c) => c.id === e.id);
    assert.ok(record, e.id);
    assert.equal(e.subject, record.subject);
    assert.equal(e.serial, record.serial);
  }
  const of = (role: string) => report.expiries.find((e) => e.role === role)!;
  assert.equal(of('tls').dependants.devices, 1, 'the enrolled device connects through the TLS certificate');
  assert.equal(of('push').action, null);
  assert.match(of('push').note, /none — operator/);
  assert.equal(report.identities.count, 1);
  assert.equal(report.identities.entries[0]!.deviceId, 'PLAN-DEVICE-1');
  assert.equal(report.identities.entries[0]!.action?.kind, 'renew-identity');
  assert.deepEqual(report.due, []);

  // Each date is the planner's: `plan --at` a day before does not take the action; on the date it does.
  const checks = [...report.expiries, ...report.identities.entries].flatMap((e) => {
    if (e.action && !e.action.dueNow) return [{ e, kind: e.action.kind, at: e.action.at }];
    if (e.warnings?.[0]) return [{ e, kind: 'push-certificate-expiring', at: e.warnings[0].at }];
    return [];
  });
  assert.ok(checks.length >= 6);
  for (const { e, kind, at } of checks) {
    const takes = (when: string) =>
      planJson(dataDir, when).due.some((a) => a.kind === kind && (e.deviceId === undefined || a.deviceId === e.deviceId));
    assert.equal(takes(new Date(Date.parse(at) - DAY).toISOString()), false, `${kind} not a day before ${at}`);
    assert.equal(takes(at), true, `${kind} on ${at}`);
  }

  // The human table: every role, the planned action and its date, then what is due now.
  const human = runCli(['lifecycle', 'plan', '--data', dataDir]);
  assert.equal(human.status, 0, human.stderr);
  assert.match(human.stdout, /NOT AFTER\s+ROLE\s+CERTIFICATE\s+DEVICES\s+PROFILES\s+PLANNED ACTION\s+ON/);
  const tls = of('tls');
  assert.match(
    human.stdout,
    new RegExp(
      `${tls.notAfter.slice(0, 10)}\\s+tls\\s+.*#${tls.serial.slice(0, 8)}\\s+1\\s+-\\s+reissue-tls\\s+${tls.action!.at.slice(0, 10)}`,
    ),
  );
  assert.match(human.stdout, /push .*none — operator/);
  assert.match(human.stdout, /device-identity\s+PLAN-DEVICE-1 /);
  assert.match(human.stdout, /Due now:\nnothing is due/);
  assert.equal(of('root').dependants.devices, 1);
  const all = runCli(['lifecycle', 'plan', '--all', '--data', dataDir]);
  assert.equal(all.status, 0, all.stderr);
  assert.match(all.stdout, /device-identity\s+PLAN-DEVICE-1 /);
});

test('certmdm lifecycle plan as of a later date: overdue actions are planned now and listed as due', () => {
  const dataDir = join(tempDir(), 'data');
  assert.equal(runCli(['init', '--data', dataDir, ...TEST_FLAGS]).status, 0);
  assert.match(runCli(['lifecycle', 'plan', '--data', dataDir]).stdout, /nothing is due/);
  // The TLS certificate lives 397 days and is due with 25% left: on day 300 it is.
  const at = new Date(Date.now() + 300 * DAY).toISOString().slice(0, 10);
  const report = planJson(dataDir, at);
  assert.deepEqual(
    report.due.map((a) => a.kind),
    ['reissue-tls'],
  );
  assert.deepEqual(report.expiries.find((e) => e.role === 'tls')!.action, {
    kind: 'reissue-tls',
    at: new Date(at).toISOString(),
    dueNow: true,
  });
  const human = runCli(['lifecycle', 'plan', '--at', at, '--data', dataDir]).stdout;
  assert.match(human, /tls .* reissue-tls\s+now/);
  assert.match(human, /Due now:\n\S+\s+reissue-tls/);
  const bad = runCli(['lifecycle', 'plan', '--at', 'someday', '--data', dataDir]);
  assert.equal(bad.status, 2);
});
