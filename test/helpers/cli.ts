import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createServer } from 'node:net';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(ROOT, 'bin', 'certmdm.mjs');

/**
 * Fast, loopback-only defaults for tests; the root key is RSA-2048 only to keep key generation quick. Last-seen times
 * are written with their message, so "stored state unchanged" assertions never see an earlier message's batch land
 * (batching has its own test, test/mdm/hot-path.test.ts).
 */
export const TEST_FLAGS = [
  '--root-algorithm',
  'rsa-2048',
  '--hostname',
  'localhost,127.0.0.1',
  '--listen',
  '127.0.0.1',
  '--last-seen-flush-seconds',
  '0',
];

export function tempDir(prefix = 'certmdm-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The environment without any CERTMDM_* the developer's shell may carry. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CERTMDM_')));
  return { ...env, ...extra };
}

/**
 * Runs the CLI. `bindPermissions`: as root, drop the capabilities that let root ignore permission bits (util-linux
 * setpriv), so a read-only directory is read-only for the run while everything root owns stays readable.
 */
export function runCli(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; bindPermissions?: boolean; input?: string } = {},
): SpawnSyncReturns<string> {
  const drop = options.bindPermissions && process.getuid?.() === 0;
  const caps = '-dac_override,-dac_read_search';
  const [command, prefix] = drop ? ['setpriv', ['--bounding-set', caps, '--inh-caps', caps, process.execPath]] : [process.execPath, []];
  return spawnSync(command, [...prefix, CLI, ...args], {
    encoding: 'utf8',
    env: cleanEnv(options.env),
    cwd: options.cwd ?? ROOT,
    timeout: 60_000,
    input: options.input,
  });
}

export interface RunningServer {
  port: number;
  /** The plain-HTTP SCEP listener's port, when --scep-http-port was given. */
  scepHttpPort?: number;
  stderr: () => string;
  stdout: () => string;
  stop: () => Promise<void>;
  /** Kills the process without letting it shut down (SIGKILL): a crashed instance. */
  crash: () => Promise<void>;
}

export async function startServer(dataDir: string, extraArgs: string[] = [], env: Record<string, string> = {}): Promise<RunningServer> {
  const child = spawn(process.execPath, [CLI, 'serve', '--data', dataDir, '--port', '0', ...TEST_FLAGS, ...extraArgs], {
    env: cleanEnv(env),
    cwd: ROOT,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${stderr}`)), 30_000);
    // A server that exits at start must not leave the poll running: it would keep the test process alive.
    child.on('exit', (code) => {
      clearInterval(poll);
      clearTimeout(timer);
      reject(new Error(`server exited ${code}:\n${stderr}`));
    });
    const poll = setInterval(() => {
      const line = stdout.split('\n').find((l) => l.includes('"msg":"certmdm listening"'));
      const match = line && /"port":(\d+)/.exec(line);
      const scepReady = !extraArgs.includes('--scep-http-port') || stdout.includes('"msg":"certmdm scep-http listening"');
      if (match && scepReady) {
        clearInterval(poll);
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    }, 50);
  });
  const scepLine = stdout.split('\n').find((l) => l.includes('"msg":"certmdm scep-http listening"'));
  return {
    port,
    scepHttpPort: scepLine ? Number(/"port":(\d+)/.exec(scepLine)?.[1]) : undefined,
    stderr: () => stderr,
    stdout: () => stdout,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
    crash: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

/** Every file under a directory with its mode and SHA-256, for "nothing on disk changed" assertions. */
export function snapshot(dir: string, options: { ignore?: RegExp } = {}): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      const st = statSync(path);
      if (options.ignore?.test(name)) continue;
      if (st.isDirectory()) walk(path);
      else out[path] = `${(st.mode & 0o777).toString(8)} ${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
    }
  };
  walk(dir);
  return out;
}

export function run(command: string, args: string[], options: { cwd?: string; input?: string | Buffer; env?: NodeJS.ProcessEnv } = {}) {
  return spawnSync(command, args, { encoding: 'utf8', timeout: 60_000, ...options });
}

/** PEM of the active certificates of a role, exported by the CLI into `dir`. */
export function exportRole(dataDir: string, role: string, dir: string = tempDir()): string {
  const file = join(dir, `${role}.pem`);
  const r = runCli(['certs', 'export', '--role', role, '--out', file, '--data', dataDir]);
  assert.equal(r.status, 0, r.stderr);
  return file;
}

/** A loopback port nothing listens on right now (for servers whose URL must be known before they start). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
