import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildCertificate, toPem } from '../../src/pki/certificate.ts';
import { run, tempDir } from './cli.ts';

function openssl(args: string[]) {
  const r = run('openssl', args);
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
  return r;
}

/**
 * A stand-in for Apple's side, made by openssl: a root, an intermediate (the "WWDR" one vendors chain to), a vendor
 * certificate, and push certificates issued for CSRs, with the subject Apple gives them (UID = topic, CN = APSP:…).
 */
export function fakeApple() {
  const dir = tempDir('fake-apple-');
  const p = (name: string) => join(dir, name);
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    p('root.key'),
    '-out',
    p('root.pem'),
    '-subj',
    '/C=US/O=Test Apple/CN=Test Apple Root CA',
    '-days',
    '30',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  openssl([
    'req',
    '-new',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    p('wwdr.key'),
    '-out',
    p('wwdr.csr'),
    '-subj',
    '/C=US/O=Test Apple/CN=Test Apple WWDR CA',
  ]);
  writeFileSync(p('ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
  openssl([
    'x509',
    '-req',
    '-in',
    p('wwdr.csr'),
    '-CA',
    p('root.pem'),
    '-CAkey',
    p('root.key'),
    '-set_serial',
    '2',
    '-days',
    '30',
    '-extfile',
    p('ca.ext'),
    '-out',
    p('wwdr.pem'),
  ]);
  openssl([
    'req',
    '-new',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    p('vendor.key'),
    '-out',
    p('vendor.csr'),
    '-subj',
    '/C=US/O=Test MDM Vendor/CN=MDM Vendor: Test',
  ]);
  openssl([
    'x509',
    '-req',
    '-in',
    p('vendor.csr'),
    '-CA',
    p('wwdr.pem'),
    '-CAkey',
    p('wwdr.key'),
    '-set_serial',
    '3',
    '-days',
    '30',
    '-out',
    p('vendor.pem'),
  ]);
  writeFileSync(p('chain.pem'), readFileSync(p('wwdr.pem'), 'utf8') + readFileSync(p('root.pem'), 'utf8'));
  let serial = 100;
  return {
    dir,
    root: p('root.pem'),
    vendorCert: p('vendor.pem'),
    vendorKey: p('vendor.key'),
    chain: p('chain.pem'),
    /** Apple's answer to a CSR: a push certificate for `topic` (or any subject given). */
    issue(csrPem: string, subject: string, days = 365): string {
      const out = p(`push-${serial}.pem`);
      openssl([
        'x509',
        '-req',
        '-in',
        csrPem,
        '-CA',
        p('root.pem'),
        '-CAkey',
        p('root.key'),
        '-set_serial',
        String(serial++),
        '-days',
        String(days),
        '-subj',
        subject,
        '-out',
        out,
      ]);
      return out;
    },
    /** A push certificate for a fresh openssl key, with the key beside it. */
    issueWithKey(subject: string): { cert: string; key: string } {
      const key = p(`key-${serial}.pem`);
      const csr = p(`csr-${serial}.pem`);
      openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=unused']);
      return { cert: this.issue(csr, subject), key };
    },
    /** An already expired push certificate (openssl cannot make one; the CA key signs it here). */
    issueExpired(keyPem: string, topic: string): string {
      const key = createPrivateKey(readFileSync(keyPem));
      const der = buildCertificate(
        {
          subject: [
            ['C', 'US'],
            ['UID', topic],
            ['CN', `APSP:${topic}`],
          ],
          publicKey: createPublicKey(key),
          notBefore: new Date(Date.now() - 40 * 86_400_000),
          notAfter: new Date(Date.now() - 86_400_000),
          keyUsage: ['digitalSignature'],
        },
        {
          certificate: Buffer.from(readFileSync(p('root.pem'), 'utf8').replace(/-----[A-Z ]+-----|\s/g, ''), 'base64'),
          privateKey: createPrivateKey(readFileSync(p('root.key'))),
        },
      );
      const out = p(`expired-${serial++}.pem`);
      writeFileSync(out, toPem(der));
      return out;
    },
  };
}

export function newTopic(): string {
  return `com.apple.mgmt.External.${randomUUID()}`;
}
