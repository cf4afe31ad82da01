import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportRole, run, runCli, startServer, tempDir } from './cli.ts';
import { plistBody } from './device.ts';
import { scepclient } from './peers.ts';
import { storedState } from './state.ts';

export interface PeerIdentity {
  key: string;
  cert: string;
  der: Buffer;
  dir: string;
}

/**
 * A device identity from the running server through Debian's scepclient, under `challenge` (a plain one minted by
 * the CLI when not given). The CN it asks for is only a request: the server decides the subject.
 */
export function scepIdentity(dataDir: string, port: number, root: string, cn: string, challenge?: string): PeerIdentity {
  const secret = challenge ?? runCli(['scep', 'challenge', '--data', dataDir]).stdout.trim();
  const r = scepclient(`https://localhost:${port}/scep`, root, secret, cn);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const der = Buffer.from(new X509Certificate(readFileSync(r.cert)).raw);
  return { key: join(r.dir, 'key.pem'), cert: r.cert, der, dir: r.dir };
}

/** An HTTP request by curl (the body from a file, so bytes pass untouched); the status and body come back. */
export function curl(url: string, options: { method?: string; body?: Buffer; contentType?: string; args?: string[] } = {}) {
  const dir = tempDir('curl-');
  const args = ['-sS', '-X', options.method ?? (options.body ? 'PUT' : 'GET'), '-o', join(dir, 'out'), '-w', '%{http_code}'];
  if (options.body) {
    writeFileSync(join(dir, 'body'), options.body);
    args.push(
      '--data-binary',
      `@${join(dir, 'body')}`,
      '-H',
      `Content-Type: ${options.contentType ?? 'application/x-apple-aspen-mdm-checkin'}`,
    );
  }
  const r = run('curl', [...args, ...(options.args ?? []), url]);
  assert.equal(r.status, 0, r.stderr);
  const raw = readFileSync(join(dir, 'out'));
  return { status: Number(r.stdout), raw, body: raw.toString('latin1') };
}

/** A check-in or report over mutual TLS, as a device with `identity` makes it. */
export function putAs(url: string, identity: PeerIdentity, root: string, body: Buffer, contentType?: string) {
  return curl(url, { body, contentType, args: ['--cacert', root, '--cert', identity.cert, '--key', identity.key] });
}

/**
 * A running `certmdm serve` that identifies devices by mutual TLS, with what a test speaks to it through: the admin
 * API (the first token, from its log), check-ins as a device holding `identity`, and its stored state.
 */
export async function mtlsServer(topic: string, extraArgs: string[] = []) {
  const dataDir = join(tempDir(), 'data');
  const server = await startServer(dataDir, [
    '--scep-ciphers',
    'aes,des3,des',
    '--mdm-identity-sources',
    'mtls',
    '--push-topic',
    topic,
    ...extraArgs,
  ]);
  const token = /^\s+(cmdm_\S+)$/m.exec(server.stderr())![1]!;
  const work = tempDir('mtls-server-');
  const root = exportRole(dataDir, 'root', work);
  const base = `https://localhost:${server.port}`;
  return {
    dataDir,
    server,
    root,
    ra: exportRole(dataDir, 'scep-ra', work),
    base,
    state: () => storedState(join(dataDir, 'certmdm.db')),
    admin: (method: string, path: string, body: unknown) =>
      curl(`${base}${path}`, {
        method,
        body: Buffer.from(JSON.stringify(body)),
        contentType: 'application/json',
        args: ['--cacert', root, '-H', `Authorization: Bearer ${token}`],
      }),
    say: (identity: PeerIdentity, message: Record<string, unknown>) =>
      putAs(
        `${base}/mdm/${message.MessageType ? 'checkin' : 'server'}`,
        identity,
        root,
        plistBody(message),
        message.MessageType ? undefined : 'application/x-apple-aspen-mdm',
      ),
    authenticate: (udid: string) => ({ MessageType: 'Authenticate', UDID: udid, Topic: topic, DeviceName: udid, Model: 'iPhone15,2' }),
  };
}
