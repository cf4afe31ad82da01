import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { AuditLog } from '../../src/admin/audit.ts';
import { generateKey } from '../../src/pki/algorithms.ts';
import { buildCertificate, certificateCacheFootprint, certificateParts, randomSerial, toPem } from '../../src/pki/certificate.ts';
import { Keyring } from '../../src/pki/keyring.ts';
import { MasterKey } from '../../src/pki/master-key.ts';
import { ensureServerPki, type PkiSettings } from '../../src/pki/server-pki.ts';
import { SqliteStore } from '../../src/store/sqlite/index.ts';
import { createLogger } from '../../src/log.ts';
import { run, tempDir } from '../helpers/cli.ts';

const settings: PkiSettings = {
  organization: 'Example Org',
  rootAlgorithm: 'rsa-2048',
  rootDays: 3650,
  intermediateDays: 1825,
  tlsDays: 397,
  tlsRenewBeforeDays: 30,
  signingDays: 730,
  hostnames: ['mdm.example.test', 'localhost', '127.0.0.1', '::1'],
};

async function makePki(overrides: Partial<PkiSettings> = {}, clock = () => new Date()) {
  const dir = tempDir();
  const store = SqliteStore.open(join(dir, 'db'));
  await store.migrate();
  const keyring = new Keyring(store, MasterKey.generate(), clock);
  const audit = new AuditLog(store, createLogger('silent'), clock);
  const pki = await ensureServerPki({ store, keyring, clock, audit }, { ...settings, ...overrides });
  const files = {
    root: join(dir, 'root.pem'),
    intermediate: join(dir, 'intermediate.pem'),
    tls: join(dir, 'tls.pem'),
    signing: join(dir, 'signing.pem'),
  };
  writeFileSync(files.root, toPem(pki.authority.root.der));
  writeFileSync(files.intermediate, toPem(pki.authority.intermediate.der));
  writeFileSync(files.tls, toPem(pki.tls.certificate.der));
  writeFileSync(files.signing, toPem(pki.profileSigning.certificate.der));
  return { dir, store, keyring, audit, pki, files, clock };
}

function text(file: string): string {
  const r = run('openssl', ['x509', '-in', file, '-noout', '-text']);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('openssl verifies the TLS and profile-signing certificates through the intermediate to the root', async () => {
  const { files } = await makePki();
  for (const leaf of [files.tls, files.signing]) {
    const r = run('openssl', ['verify', '-CAfile', files.root, '-untrusted', files.intermediate, leaf]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /: OK/);
  }
  const tlsPurpose = run('openssl', [
    'verify',
    '-purpose',
    'sslserver',
    '-CAfile',
    files.root,
    '-untrusted',
    files.intermediate,
    files.tls,
  ]);
  assert.equal(tlsPurpose.status, 0, tlsPurpose.stderr + tlsPurpose.stdout);
  // Without the intermediate the chain must not verify: the root does not sign end-entity certificates itself.
  const broken = run('openssl', ['verify', '-CAfile', files.root, files.tls]);
  assert.notEqual(broken.status, 0);
});

test('openssl shows the extensions a security engineer expects', async () => {
  const { files } = await makePki();
  const root = text(files.root);
  assert.match(root, /Basic Constraints: critical\s+CA:TRUE\n/);
  assert.match(root, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
  assert.match(root, /Subject Key Identifier/);
  assert.match(root, /Signature Algorithm: sha256WithRSAEncryption/);

  const intermediate = text(files.intermediate);
  assert.match(intermediate, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
  assert.match(intermediate, /Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
  assert.match(intermediate, /Authority Key Identifier/);

  const tls = text(files.tls);
  assert.match(tls, /Basic Constraints: critical\s+CA:FALSE/);
  assert.match(tls, /Key Usage: critical\s+Digital Signature, Key Encipherment/);
  assert.match(tls, /Extended Key Usage:\s+TLS Web Server Authentication\n/);
  assert.match(tls, /DNS:mdm\.example\.test, DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/);
  assert.match(tls, /Public-Key: \(2048 bit\)/);

  const signing = text(files.signing);
  assert.match(signing, /Basic Constraints: critical\s+CA:FALSE/);
  assert.doesNotMatch(signing, /TLS Web Server Authentication/);
});

test("AKI of each certificate is its issuer's SKI", async () => {
  const { pki } = await makePki();
  const ski = (der: Buffer) =>
    /Subject Key Identifier:\s*\n\s*([0-9A-F:]+)/.exec(
      run('openssl', ['x509', '-inform', 'DER', '-noout', '-text'], { input: der }).stdout,
    )?.[1];
  const aki = (der: Buffer) =>
    /Authority Key Identifier:\s*\n\s*(?:keyid:)?([0-9A-F:]+)/.exec(
      run('openssl', ['x509', '-inform', 'DER', '-noout', '-text'], { input: der }).stdout,
    )?.[1];
  assert.ok(ski(pki.authority.root.der));
  assert.equal(aki(pki.authority.intermediate.der), ski(pki.authority.root.der));
  assert.equal(aki(pki.tls.certificate.der), ski(pki.authority.intermediate.der));
});

test('TLS validity is the configured 397 days and never longer than 825', async () => {
  const { pki } = await makePki();
  const days = (pki.tls.certificate.notAfter.getTime() - pki.tls.certificate.notBefore.getTime()) / 86_400_000;
  assert.equal(days, 397);
  const long = await makePki({ tlsDays: 825 });
  assert.ok((long.pki.tls.certificate.notAfter.getTime() - long.pki.tls.certificate.notBefore.getTime()) / 86_400_000 <= 825);
});

test('no certificate outlives its issuer', async () => {
  const { pki } = await makePki({ rootDays: 100, intermediateDays: 1825, signingDays: 730 });
  assert.ok(pki.authority.intermediate.notAfter <= pki.authority.root.notAfter);
  assert.ok(pki.profileSigning.certificate.notAfter <= pki.authority.intermediate.notAfter);
});

test('serials are random, positive and carry at least 64 bits', async () => {
  const serials = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const s = Buffer.from(randomSerial());
    assert.ok(s.length * 8 >= 64 && (s[0]! & 0x80) === 0);
    serials.add(s.toString('hex'));
  }
  assert.equal(serials.size, 200);
  const { pki } = await makePki();
  const issued = [pki.authority.root, pki.authority.intermediate, pki.tls.certificate, pki.profileSigning.certificate];
  for (const c of issued) assert.ok(c.serialHex.replace(/^0+/, '').length * 4 >= 64, c.serialHex);
  assert.equal(new Set(issued.map((c) => c.serialHex)).size, issued.length);
});

test('a P-384 root signs with ECDSA-SHA384 and the chain still verifies', async () => {
  const { files } = await makePki({ rootAlgorithm: 'p-384' });
  assert.match(text(files.root), /ASN1 OID: secp384r1[\s\S]*Signature Algorithm: ecdsa-with-SHA384/);
  assert.match(text(files.intermediate), /Signature Algorithm: ecdsa-with-SHA384/);
  assert.match(text(files.tls), /Signature Algorithm: sha256WithRSAEncryption/, 'end entities stay RSA/SHA-256');
  const r = run('openssl', ['verify', '-CAfile', files.root, '-untrusted', files.intermediate, files.tls]);
  assert.equal(r.status, 0, r.stderr);
});

test('an RSA-4096 root is honoured', async () => {
  const { pki } = await makePki({ rootAlgorithm: 'rsa-4096' });
  assert.equal(new X509Certificate(pki.authority.root.der).publicKey.asymmetricKeyDetails?.modulusLength, 4096);
});

test('a second ensure reuses everything; changed hostnames supersede the TLS certificate only', async () => {
  const first = await makePki();
  const again = await ensureServerPki(first, settings);
  assert.equal(again.authority.root.id, first.pki.authority.root.id);
  assert.equal(again.tls.certificate.id, first.pki.tls.certificate.id);
  assert.equal(again.profileSigning.certificate.id, first.pki.profileSigning.certificate.id);

  const renamed = await ensureServerPki(first, { ...settings, hostnames: ['mdm2.example.test'] });
  assert.notEqual(renamed.tls.certificate.id, first.pki.tls.certificate.id);
  assert.equal(renamed.authority.root.id, first.pki.authority.root.id);
  const old = await first.store.getCertificate(first.pki.tls.certificate.id);
  assert.equal(old?.status, 'superseded');
  assert.equal(old?.supersededBy, renamed.tls.certificate.id);
  const audit = await first.store.listAudit({ action: 'pki.tls-issued' });
  assert.equal(audit[0]?.reason, 'hostnames changed');
});

test('the TLS certificate is re-issued when its renewal window opens', async () => {
  let now = new Date();
  const first = await makePki({}, () => now);
  now = new Date(first.pki.tls.certificate.notAfter.getTime() - 10 * 86_400_000);
  const later = await ensureServerPki({ ...first, clock: () => now }, settings);
  assert.notEqual(later.tls.certificate.id, first.pki.tls.certificate.id);
  assert.ok(later.tls.certificate.notAfter > first.pki.tls.certificate.notAfter);
});

test('generated RSA keys have the requested size', async () => {
  for (const size of [2048, 3072] as const) {
    const { publicKey } = await generateKey(`rsa-${size}`);
    assert.equal(publicKey.asymmetricKeyDetails?.modulusLength, size);
  }
});

test('the parse cache by content stays bounded whatever certificates it is shown', async () => {
  const { privateKey, publicKey } = await generateKey('rsa-2048');
  const der = buildCertificate(
    {
      subject: [['CN', 'cache']],
      publicKey,
      notBefore: new Date(),
      notAfter: new Date(Date.now() + 86_400_000),
      keyUsage: ['digitalSignature'],
    },
    { selfSigningKey: privateKey },
  );
  // 5000 distinct certificates (the signature's last bytes differ: parsing does not verify it), each in a large buffer.
  for (let i = 0; i < 5000; i++) {
    const body = Buffer.alloc(64 * 1024);
    der.copy(body);
    body.writeUInt32BE(i, der.length - 4);
    certificateParts(body.subarray(0, der.length));
  }
  const held = certificateCacheFootprint();
  assert.ok(held.entries <= 4096, `${held.entries} entries`);
  assert.ok(
    held.bytes <= held.entries * der.length,
    `each entry holds its own ${der.length} bytes, not the request around them (${held.bytes})`,
  );
  // A certificate larger than a device identity is parsed, not remembered.
  const before = certificateCacheFootprint();
  const big = buildCertificate(
    {
      subject: [['CN', 'x'.repeat(60)]],
      publicKey,
      notBefore: new Date(),
      notAfter: new Date(Date.now() + 86_400_000),
      keyUsage: ['digitalSignature'],
      subjectAltName: { dns: Array.from({ length: 400 }, (_, i) => `host-${i}.example.com`) },
    },
    { selfSigningKey: privateKey },
  );
  assert.ok(big.length > 8 * 1024);
  certificateParts(big);
  assert.deepEqual(certificateCacheFootprint(), before);
});
