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

/**
 * nginx in front of certmdm instances, as deployed: TLS terminated with a self-signed `localhost` certificate (returned
 * as PEM for clients), round robin over the instances with their certificates verified against `rootFile`, upstream
 * keep-alive. `upstreamParams` go on each upstream server line, `directives` into the location.
 */
export async function startFrontNginx(
  port: number,
  upstreams: number[],
  rootFile: string,
  options: { upstreamParams?: string; directives?: string[] } = {},
): Promise<{ stop: () => void; certificate: string }> {
  const work = tempDir('nginx-front-');
  const front = localhostCertificate(work, 'front');
  const nginx = await startNginx(
    () => `
  upstream certmdm { ${upstreams.map((p) => `server 127.0.0.1:${p} ${options.upstreamParams ?? ''};`).join(' ')} keepalive 32; }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${front.cert};
    ssl_certificate_key ${front.key};
    client_max_body_size 1m;
    location / {
      proxy_pass https://certmdm;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_ssl_trusted_certificate ${rootFile};
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
      ${(options.directives ?? []).map((d) => `${d};`).join('\n      ')}
    }
  }`,
    port,
  );
  return { stop: nginx.stop, certificate: readFileSync(front.cert, 'utf8') };
}
