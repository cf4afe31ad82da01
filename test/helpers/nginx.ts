import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, tempDir } from './cli.ts';
import { selfSigned } from './openssl.ts';

/**
 * Debian's nginx, run unprivileged-style in its own directory (all temp paths, logs and pid inside it), with the
 * given `server { ... }` blocks. Resolves once it answers TLS on `probePort`.
 */
export async function startNginx(
  servers: (dir: string) => string,
  probePort: number,
): Promise<{ dir: string; stop: () => void; log: (name: 'error' | 'access') => string }> {
  const dir = tempDir('nginx-');
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi', 'logs']) mkdirSync(join(dir, d));
  writeFileSync(
    join(dir, 'nginx.conf'),
    `user root;
worker_processes 1;
error_log ${dir}/logs/error.log info;
events { worker_connections 256; }
http {
  access_log ${dir}/logs/access.log;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  ${servers(dir)}
}
`,
  );
  const nginx = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', `daemon off; pid ${dir}/nginx.pid;`], { stdio: 'ignore' });
  for (let i = 0; i < 50 && run('curl', ['-sk', '-o', '/dev/null', `https://127.0.0.1:${probePort}/`]).status !== 0; i++)
    await new Promise((r) => setTimeout(r, 100));
  return {
    dir,
    stop: () => nginx.kill(),
    log: (name) => readFileSync(join(dir, 'logs', `${name}.log`), 'utf8'),
  };
}

/** A self-signed TLS certificate for `localhost`, made by openssl, for a stand-in server. */
export function localhostCertificate(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  selfSigned({ key, cert, subject: '/CN=localhost', days: 2, extensions: ['subjectAltName=DNS:localhost'] });
  return { cert, key };
}
