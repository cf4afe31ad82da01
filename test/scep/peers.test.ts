import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { exportRole, run, startServer, tempDir } from '../helpers/cli.ts';
import { certmongerEnroll, challenge, identityCount, lastScepAudit, scepclient, startCertmonger } from '../helpers/peers.ts';

test('GetCACaps and GetCACert: openssl reads the RA + CA chain', async (t) => {
  const dataDir = join(tempDir(), 'data');
  const server = await startServer(dataDir);
  t.after(() => server.stop());
  const dir = tempDir();
  const root = exportRole(dataDir, 'root', dir);
  const caps = run('curl', ['-sS', '--cacert', root, `https://localhost:${server.port}/scep?operation=GetCACaps`]);
  assert.deepEqual(caps.stdout.trim().split('\n').sort(), [
    'AES',
    'DES3',
    'POSTPKIOperation',
    'Renewal',
    'SCEPStandard',
    'SHA-1',
    'SHA-256',
  ]);

  const p7 = join(dir, 'ca.p7b');
  const get = run('curl', [
    '-sS',
    '--cacert',
    root,
    '-o',
    p7,
    '-w',
    '%{content_type}',
    `https://localhost:${server.port}/scep?operation=GetCACert`,
  ]);
  assert.equal(get.stdout, 'application/x-x509-ca-ra-cert');
  const printed = run('openssl', ['pkcs7', '-inform', 'DER', '-in', p7, '-print_certs', '-noout']);
  assert.equal(printed.status, 0, printed.stderr);
  assert.match(printed.stdout, /subject=O = certmdm, CN = certmdm SCEP RA/);
  assert.match(printed.stdout, /subject=O = certmdm, CN = certmdm Intermediate CA/);
  assert.match(printed.stdout, /subject=O = certmdm, CN = certmdm Root CA/);
  const ra = exportRole(dataDir, 'scep-ra', dir);
  const verified = run('openssl', ['verify', '-CAfile', root, '-untrusted', exportRole(dataDir, 'intermediate', dir), ra]);
  assert.equal(verified.status, 0, verified.stderr);
});

test('scepclient (micromdm scep 2.1.0) enrolls with a valid challenge and is refused with a wrong or reused one', async (t) => {
  const dataDir = join(tempDir(), 'data');
  // scepclient always encrypts with single DES whatever GetCACaps says; it is enabled here, as an operator must.
  const server = await startServer(dataDir, ['--scep-ciphers', 'aes,des3,des']);
  t.after(() => server.stop());
  const dir = tempDir();
  const root = exportRole(dataDir, 'root', dir);
  const intermediate = exportRole(dataDir, 'intermediate', dir);
  const url = `https://localhost:${server.port}/scep`;

  const good = challenge(dataDir, 'device-1');
  const enrolled = scepclient(url, root, good, 'device-1');
  assert.equal(enrolled.status, 0, enrolled.stderr + enrolled.stdout);
  const verify = run('openssl', ['verify', '-purpose', 'sslclient', '-CAfile', root, '-untrusted', intermediate, enrolled.cert]);
  assert.equal(verify.status, 0, verify.stderr + verify.stdout);
  const text = run('openssl', ['x509', '-in', enrolled.cert, '-noout', '-text']).stdout;
  // scepclient asks for C = US, O = scep-client, OU = MDM, CN = device-1: the subject is the enrollment's instead.
  assert.match(text, /Subject: O = certmdm, CN = device-1\n/);
  assert.match(text, /Basic Constraints: critical\s+CA:FALSE/);
  assert.match(text, /Extended Key Usage:\s+TLS Web Client Authentication\n/);
  assert.equal(identityCount(dataDir), 1);
  const audit = lastScepAudit(dataDir);
  assert.equal(audit?.outcome, 'ok');
  assert.ok(audit?.detail.challengeId, 'the issuance is linked to its challenge');

  const reused = scepclient(url, root, good, 'device-2');
  assert.notEqual(reused.status, 0, 'a reused challenge is refused');
  assert.match(reused.stdout + reused.stderr, /failInfo: badRequest/);
  assert.equal(lastScepAudit(dataDir)?.reason, 'challenge password already used');

  const wrong = scepclient(url, root, good.slice(0, 16) + '0'.repeat(40), 'device-3');
  assert.notEqual(wrong.status, 0, 'a wrong challenge is refused');
  assert.match(wrong.stdout + wrong.stderr, /failInfo: badRequest/);
  assert.equal(lastScepAudit(dataDir)?.reason, 'wrong challenge password');
  assert.equal(identityCount(dataDir), 1, 'refusals issued nothing');
});

test('scepclient is refused with badAlg while single DES is not enabled', async (t) => {
  const dataDir = join(tempDir(), 'data');
  const server = await startServer(dataDir);
  t.after(() => server.stop());
  const root = exportRole(dataDir, 'root', tempDir());
  const c = challenge(dataDir);
  const r = scepclient(`https://localhost:${server.port}/scep`, root, c, 'device-1');
  assert.notEqual(r.status, 0);
  assert.match(r.stdout + r.stderr, /failInfo: badAlg/);
  assert.match(lastScepAudit(dataDir)?.reason ?? '', /content cipher des-cbc is not enabled/);
  // The challenge survived the refusal and still works once DES is allowed.
  await server.stop();
  const again = await startServer(dataDir, ['--scep-ciphers', 'aes,des']);
  t.after(() => again.stop());
  const ok = scepclient(`https://localhost:${again.port}/scep`, root, c, 'device-1');
  assert.equal(ok.status, 0, ok.stderr + ok.stdout);
});

for (const [label, ciphers, expected] of [
  ['AES', 'aes,des3', /^aes-256-cbc$/],
  ['DES3', 'des3', /^des-ede3-cbc$/],
] as const) {
  test(`certmonger's daemon enrolls through scep-submit with ${label}`, async (t) => {
    const dataDir = join(tempDir(), 'data');
    const server = await startServer(dataDir, ['--scep-http-port', '0', '--scep-ciphers', ciphers]);
    t.after(() => server.stop());
    const scepPort = server.scepHttpPort;
    assert.ok(scepPort, 'plain-HTTP SCEP listener is up');
    const work = tempDir('certmonger-');
    const root = exportRole(dataDir, 'root', work);
    const intermediate = exportRole(dataDir, 'intermediate', work);
    const url = `http://127.0.0.1:${scepPort}/scep`;

    // Standalone scep-submit: capabilities and CA certificates.
    const caps = run('/usr/lib/certmonger/scep-submit', ['-u', url, '-c']);
    assert.equal(caps.status, 0, caps.stdout + caps.stderr);
    assert.match(caps.stdout, /POSTPKIOperation/);
    const cacerts = run('/usr/lib/certmonger/scep-submit', ['-u', url, '-C']);
    assert.equal(cacerts.status, 0, cacerts.stdout + cacerts.stderr);
    assert.match(cacerts.stdout, /BEGIN CERTIFICATE/);

    const cm = await startCertmonger(work);
    t.after(() => cm.stop());
    const { request, cert } = certmongerEnroll(cm.env, url, work, 'certmonger-device', challenge(dataDir, 'certmonger-device'));
    assert.equal(request.status, 0, request.stdout + request.stderr + run('getcert', ['list', '-s'], { env: cm.env }).stdout);
    const verify = run('openssl', ['verify', '-CAfile', root, '-untrusted', intermediate, cert]);
    assert.equal(verify.status, 0, verify.stderr + verify.stdout);
    assert.match(run('openssl', ['x509', '-in', cert, '-noout', '-subject']).stdout, /CN = certmonger-device/);
    const audit = lastScepAudit(dataDir);
    assert.equal(audit?.outcome, 'ok');
    assert.match(String(audit?.detail.cipher), expected);
  });
}
