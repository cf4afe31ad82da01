import assert from 'node:assert/strict';
import { run } from './cli.ts';

/** Runs openssl, asserting that it succeeded. */
export function openssl(args: string[]) {
  const r = run('openssl', args);
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
  return r;
}

/** A fresh RSA-2048 key and a self-signed certificate for it (`openssl req -x509`); `extensions` go to -addext. */
export function selfSigned(o: { key: string; cert: string; subject: string; days: number; extensions?: string[] }): void {
  openssl([
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', o.key, '-out', o.cert, '-subj', o.subject,
    '-days', String(o.days), ...(o.extensions ?? []).flatMap((e) => ['-addext', e]),
  ]); // prettier-ignore
}

/** A fresh RSA-2048 key and a CSR for it. */
export function keyAndCsr(o: { key: string; csr: string; subject: string }): void {
  openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', o.key, '-out', o.csr, '-subj', o.subject]);
}

/** A CA's certificate for a CSR (`openssl x509 -req`), optionally with another subject or an extensions file. */
export function signCsr(o: {
  csr: string;
  caCert: string;
  caKey: string;
  serial: number;
  days: number;
  out: string;
  subject?: string;
  extfile?: string;
}): void {
  openssl([
    'x509', '-req', '-in', o.csr, '-CA', o.caCert, '-CAkey', o.caKey, '-set_serial', String(o.serial), '-days', String(o.days),
    ...(o.subject ? ['-subj', o.subject] : []), ...(o.extfile ? ['-extfile', o.extfile] : []), '-out', o.out,
  ]); // prettier-ignore
}
