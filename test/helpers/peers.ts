import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { run, runCli, tempDir } from './cli.ts';

/**
 * A private D-Bus session bus and certmonger daemon whose state lives in `dir`, so tests never touch the
 * machine's own certmonger configuration. Stopped by the returned function.
 */
export async function startCertmonger(dir: string): Promise<{ env: NodeJS.ProcessEnv; stop: () => void }> {
  const bus = run('dbus-daemon', ['--session', '--fork', '--print-address=1', '--print-pid=1']);
  if (bus.status !== 0) throw new Error(`dbus-daemon failed: ${bus.stderr}`);
  const [address, pid] = bus.stdout.trim().split('\n');
  const state: Record<string, string> = {};
  for (const name of ['CAS', 'REQUESTS', 'LOCAL_CA', 'CONFIG', 'TMP']) {
    const sub = join(dir, name.toLowerCase());
    mkdirSync(sub, { recursive: true, mode: 0o700 });
    state[`CERTMONGER_${name}${name === 'TMP' ? 'DIR' : '_DIR'}`] = sub;
  }
  const env = { ...process.env, DBUS_SESSION_BUS_ADDRESS: address!, ...state };
  const daemon: ChildProcess = spawn('certmonger', ['-s', '-n'], { env, stdio: 'ignore' });
  // Wait until the daemon answers on the bus.
  for (let i = 0; i < 50; i++) {
    if (run('getcert', ['list-cas', '-s'], { env }).status === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    env,
    stop: () => {
      daemon.kill();
      try {
        process.kill(Number(pid));
      } catch {
        /* already gone */
      }
    },
  };
}

/** A one-time challenge; its enrollment reference becomes the issued identity's CN, whatever the CSR asks. */
export function challenge(dataDir: string, enrollment?: string): string {
  const r = runCli(['scep', 'challenge', '--data', dataDir, ...(enrollment ? ['--enrollment', enrollment] : [])]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

export function identityCount(dataDir: string): number {
  const r = runCli(['certs', 'list', '--json', '--data', dataDir]);
  return (JSON.parse(r.stdout) as { role: string }[]).filter((c) => c.role === 'device-identity').length;
}

export function lastScepAudit(dataDir: string) {
  const r = runCli(['audit', 'list', '--json', '--data', dataDir]);
  return (JSON.parse(r.stdout) as { action: string; outcome: string; reason: string | null; detail: Record<string, unknown> }[]).find(
    (e) => e.action === 'scep.pkioperation',
  );
}

/** One scepclient enrollment in a fresh directory (it re-uses csr.pem from its working directory otherwise). */
export function scepclient(url: string, root: string, challengePassword: string, cn: string, options: { caFingerprint?: string } = {}) {
  const dir = tempDir('scepclient-');
  const r = run(
    'scepclient',
    [
      '-server-url',
      url,
      '-challenge',
      challengePassword,
      '-private-key',
      join(dir, 'key.pem'),
      '-certificate',
      join(dir, 'cert.pem'),
      '-cn',
      cn,
      // The recipient among GetCACert's certificates (else scepclient encrypts to every one of them).
      ...(options.caFingerprint ? ['-ca-fingerprint', options.caFingerprint] : []),
    ],
    {
      cwd: dir,
      env: { ...process.env, SSL_CERT_FILE: root },
    },
  );
  return { ...r, dir, cert: join(dir, 'cert.pem') };
}

/**
 * certmonger's daemon enrolls once through scep-submit: a CA named 'certmdm' at `url` (added on first use), an
 * RSA-2048 key it is given, the certificate written next to it in `dir`.
 */
export function certmongerEnroll(env: NodeJS.ProcessEnv, url: string, dir: string, cn: string, challengePassword: string) {
  const add = run('getcert', ['add-scep-ca', '-s', '-c', 'certmdm', '-u', url], { env });
  if (add.status !== 0 && !/already exists/.test(add.stdout + add.stderr))
    throw new Error(`getcert add-scep-ca: ${add.stdout}${add.stderr}`);
  const key = join(dir, `${cn}.key.pem`);
  const cert = join(dir, `${cn}.pem`);
  run('openssl', ['genrsa', '-traditional', '-out', key, '2048']);
  const request = run(
    'getcert',
    ['request', '-s', '-c', 'certmdm', '-k', key, '-f', cert, '-N', `CN=${cn}`, '-L', challengePassword, '-w', '-v'],
    {
      env,
    },
  );
  return { request, key, cert };
}
