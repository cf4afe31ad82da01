import { createPrivateKey, createPublicKey, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildCertificate, toPem } from '../../src/pki/certificate.ts';
import { tempDir } from './cli.ts';
import { keyAndCsr, selfSigned, signCsr } from './openssl.ts';

/**
 * A stand-in for Apple's side, made by openssl: a root, an intermediate (the "WWDR" one vendors chain to), a vendor
 * certificate, and push certificates issued for CSRs, with the subject Apple gives them (UID = topic, CN = APSP:…).
 */
export function fakeApple() {
  const dir = tempDir('fake-apple-');
  const p = (name: string) => join(dir, name);
  selfSigned({
    key: p('root.key'),
    cert: p('root.pem'),
    subject: '/C=US/O=Test Apple/CN=Test Apple Root CA',
    days: 30,
    extensions: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'],
  });
  keyAndCsr({ key: p('wwdr.key'), csr: p('wwdr.csr'), subject: '/C=US/O=Test Apple/CN=Test Apple WWDR CA' });
  writeFileSync(p('ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
  signCsr({
    csr: p('wwdr.csr'),
    caCert: p('root.pem'),
    caKey: p('root.key'),
    serial: 2,
    days: 30,
    extfile: p('ca.ext'),
    out: p('wwdr.pem'),
  });
  keyAndCsr({ key: p('vendor.key'), csr: p('vendor.csr'), subject: '/C=US/O=Test MDM Vendor/CN=MDM Vendor: Test' });
  signCsr({ csr: p('vendor.csr'), caCert: p('wwdr.pem'), caKey: p('wwdr.key'), serial: 3, days: 30, out: p('vendor.pem') });
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
      signCsr({ csr: csrPem, caCert: p('root.pem'), caKey: p('root.key'), serial: serial++, days, subject, out });
      return out;
    },
    /** A push certificate for a fresh openssl key, with the key beside it. */
    issueWithKey(subject: string): { cert: string; key: string } {
      const key = p(`key-${serial}.pem`);
      const csr = p(`csr-${serial}.pem`);
      keyAndCsr({ key, csr, subject: '/CN=unused' });
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
