import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** Debian's PostgreSQL server binaries (package postgresql): the newest major version installed. */
function serverBin(name: string): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', name))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) throw new Error(`PostgreSQL's ${name} is not installed (Debian package postgresql; scripts/setup-and-test.sh installs it)`);
  return join(root, newest, 'bin', name);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

export interface ThrowawayPostgres {
  /** A new, empty database on the cluster; its connection string. */
  createDatabase(): Promise<string>;
  /** The connection string of an existing database. */
  url(database: string): string;
  port: number;
  /** The cluster's data directory (postmaster.pid names the server process). */
  dataDir: string;
  stop(): void;
}

/**
 * A throw-away PostgreSQL cluster in a temporary directory, listening on loopback only, run by an unprivileged user
 * (Debian's `postgres` account when the tests run as root; the current user otherwise). Never the system cluster:
 * its own data directory, port and socket directory. Durability is off (it is thrown away). Stop it with `stop()`.
 */
export async function startPostgres(): Promise<ThrowawayPostgres> {
  const root = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'certmdm-pg-'));
  const as = (command: string, args: string[]) => {
    const r = root
      ? spawnSync('runuser', ['-u', 'postgres', '--', command, ...args], { encoding: 'utf8' })
      : spawnSync(command, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${command} failed: ${r.stderr || r.stdout}`);
    return r;
  };
  if (root) {
    const owner = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const group = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (owner.status !== 0)
      throw new Error('running as root, and there is no postgres user to run the test cluster as (install Debian postgresql)');
    chownSync(dir, Number(owner.stdout), Number(group.stdout));
  }
  chmodSync(dir, 0o700);
  const data = join(dir, 'data');
  as(serverBin('initdb'), ['-D', data, '-A', 'trust', '-U', 'certmdm', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  const port = await freePort();
  const options = [
    `-h 127.0.0.1`,
    `-p ${port}`,
    `-k ${dir}`,
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    '-c max_connections=200',
  ];
  try {
    as(serverBin('pg_ctl'), ['-D', data, '-l', join(dir, 'server.log'), '-o', options.join(' '), '-w', '-t', '60', 'start']);
  } catch (err) {
    const log = existsSync(join(dir, 'server.log')) ? readFileSync(join(dir, 'server.log'), 'utf8') : '';
    throw new Error(`${(err as Error).message}\n${log}`);
  }
  const url = (database: string) => `postgres://certmdm@127.0.0.1:${port}/${database}`;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    spawnSync(
      ...((root
        ? ['runuser', ['-u', 'postgres', '--', serverBin('pg_ctl'), '-D', data, '-m', 'immediate', 'stop']]
        : [serverBin('pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']]) as [string, string[]]),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stop);
  return {
    port,
    dataDir: data,
    url,
    stop,
    async createDatabase() {
      const name = `t_${randomBytes(6).toString('hex')}`;
      const admin = new pg.Client({ connectionString: url('postgres') });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return url(name);
    },
  };
}
