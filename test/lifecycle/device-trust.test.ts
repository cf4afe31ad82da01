import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { buildCertificate, readCertificate, toPem } from '../../src/pki/certificate.ts';
import { CertificateCache, evaluateServerTrust } from '../../src/lifecycle/simulation/trust.ts';

const day = (n: number) => new Date(Date.UTC(2030, 0, 1) + n * 86_400_000);
const key = () => generateKeyPairSync('rsa', { modulusLength: 2048 });

/** root(0..1000) → intermediate(0..400) → TLS leaf(0..100) for mdm.example.test; a second root the device may hold. */
function chain() {
  const [rootKey, otherKey, intermediateKey, leafKey] = [key(), key(), key(), key()];
  const ca = (
    cn: string,
    k: ReturnType<typeof key>,
    from: number,
    to: number,
    issuer?: { certificate: Buffer; privateKey: typeof k.privateKey },
  ) =>
    buildCertificate(
      {
        subject: [['CN', cn]],
        publicKey: k.publicKey,
        notBefore: day(from),
        notAfter: day(to),
        ca: {},
        keyUsage: ['keyCertSign', 'cRLSign'],
      },
      issuer ?? { selfSigningKey: k.privateKey },
    );
  const root = ca('Root', rootKey, 0, 1000);
  const other = ca('Other root', otherKey, 0, 1000);
  const intermediate = ca('Intermediate', intermediateKey, 0, 400, { certificate: root, privateKey: rootKey.privateKey });
  const leaf = buildCertificate(
    {
      subject: [['CN', 'mdm.example.test']],
      publicKey: leafKey.publicKey,
      notBefore: day(0),
      notAfter: day(100),
      keyUsage: ['digitalSignature', 'keyEncipherment'],
      extendedKeyUsage: ['1.3.6.1.5.5.7.3.1'],
      subjectAltName: { dns: ['mdm.example.test'] },
    },
    { certificate: intermediate, privateKey: intermediateKey.privateKey },
  );
  return { root, other, intermediate, leaf };
}

const dir = mkdtempSync(join(tmpdir(), 'certmdm-trust-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** openssl's verdict for the same question: the chain verified against only these anchors, at that time, for that host. */
function opensslTrusts(presented: Buffer[], anchors: Buffer[], at: Date, hostname: string): boolean {
  const file = (name: string, ders: Buffer[]) => {
    const path = join(dir, name);
    writeFileSync(path, ders.map((d) => toPem(d)).join(''));
    return path;
  };
  const args = [
    'verify',
    '-attime',
    String(Math.floor(at.getTime() / 1000)),
    '-verify_hostname',
    hostname,
    '-CAfile',
    file('anchors.pem', anchors),
  ];
  if (presented.length > 1) args.push('-untrusted', file('untrusted.pem', presented.slice(1)));
  const r = spawnSync('openssl', [...args, file('leaf.pem', presented.slice(0, 1))], { encoding: 'utf8' });
  return r.status === 0;
}

test('a simulated device trusts a server chain exactly when openssl verify does, at the simulated time, with only its own anchors', () => {
  const { root, other, intermediate, leaf } = chain();
  const fp = (der: Buffer) => readCertificate(der).fingerprintSha256;
  const cache = new CertificateCache();
  const cases: { name: string; presented: Buffer[]; anchors: Buffer[]; now: Date; host?: string; trusted: boolean; kind?: string }[] = [
    { name: 'valid chain to an installed root', presented: [leaf, intermediate], anchors: [root], now: day(50), trusted: true },
    { name: 'the root is not installed', presented: [leaf, intermediate], anchors: [other], now: day(50), trusted: false, kind: 'root' },
    { name: 'TLS certificate expired', presented: [leaf, intermediate], anchors: [root], now: day(150), trusted: false, kind: 'tls' },
    { name: 'intermediate missing from the chain', presented: [leaf], anchors: [root], now: day(50), trusted: false, kind: 'root' },
    {
      name: 'wrong host',
      presented: [leaf, intermediate],
      anchors: [root],
      now: day(50),
      host: 'evil.example.test',
      trusted: false,
      kind: 'tls',
    },
    { name: 'not yet valid', presented: [leaf, intermediate], anchors: [root], now: day(-5), trusted: false, kind: 'tls' },
  ];
  for (const c of cases) {
    const host = c.host ?? 'mdm.example.test';
    const verdict = evaluateServerTrust(
      { presented: c.presented, anchors: new Map(c.anchors.map((a) => [fp(a), a])), hostname: host, now: c.now },
      cache,
    );
    assert.equal(verdict.trusted, c.trusted, c.name);
    assert.equal(opensslTrusts(c.presented, c.anchors, c.now, host), c.trusted, `openssl agrees: ${c.name}`);
    if (!verdict.trusted) assert.equal(verdict.kind, c.kind, c.name);
  }
});

test('a chain is trusted on its last valid day and refused from the day its TLS certificate expires, dated then', () => {
  const { root, intermediate, leaf } = chain();
  const cache = new CertificateCache();
  const anchors = new Map([[readCertificate(root).fingerprintSha256, root]]);
  // A leaf that outlives its intermediate cannot be issued by certmdm, but a device must still judge one correctly.
  const verdict = evaluateServerTrust({ presented: [leaf, intermediate], anchors, hostname: 'mdm.example.test', now: day(99) }, cache);
  assert.equal(verdict.trusted, true);
  const late = evaluateServerTrust({ presented: [leaf, intermediate], anchors, hostname: 'mdm.example.test', now: day(100) }, cache);
  assert.deepEqual(late.trusted ? null : [late.kind, late.at], ['tls', day(100)]);
});

test('with ServerURL pinning, a chain to an installed but unpinned root is refused', () => {
  const { root, other, intermediate, leaf } = chain();
  const fp = (der: Buffer) => readCertificate(der).fingerprintSha256;
  const cache = new CertificateCache();
  const anchors = new Map([root, other].map((a) => [fp(a), a]));
  const input = { presented: [leaf, intermediate], anchors, hostname: 'mdm.example.test', now: day(10) };
  assert.equal(evaluateServerTrust({ ...input, pinned: new Set([fp(root)]) }, cache).trusted, true);
  const refused = evaluateServerTrust({ ...input, pinned: new Set([fp(other)]) }, cache);
  assert.equal(refused.trusted, false);
  assert.match(refused.trusted ? '' : refused.reason, /does not pin/);
});
