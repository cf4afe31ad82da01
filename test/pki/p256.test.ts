import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { appleMdmSignature } from '../../src/mdm/sign-message.ts';
import { serializePlist } from '../../src/plist/serialize.ts';
import type { PlistDict } from '../../src/plist/types.ts';
import { exportRole, run, startServer, tempDir } from '../helpers/cli.ts';
import { curl } from '../helpers/mtls.ts';
import { certmongerEnroll, challenge, lastScepAudit, scepclient, startCertmonger } from '../helpers/peers.ts';

/** openssl's text form of a PEM certificate. */
const text = (file: string) => run('openssl', ['x509', '-in', file, '-noout', '-text']).stdout;

/** A signed check-in sent by curl (a real TLS client) to the server's HTTPS listener; the HTTP status. */
function curlCheckIn(port: number, root: string, certificate: Buffer, keyFile: string, message: PlistDict): number {
  const body = serializePlist(message);
  const signature = appleMdmSignature(body, certificate, createPrivateKey(readFileSync(keyFile)));
  return curl(`https://localhost:${port}/mdm/checkin`, { body, args: ['--cacert', root, '-H', `Mdm-Signature: ${signature}`] }).status;
}

test('--issuing-algorithm p-256 and --tls-algorithm p-256: an ECDSA chain that openssl, curl, scepclient and certmonger accept', async (t) => {
  const dataDir = join(tempDir(), 'data');
  const server = await startServer(dataDir, [
    '--issuing-algorithm',
    'p-256',
    '--tls-algorithm',
    'p-256',
    '--scep-http-port',
    '0',
    // scepclient always encrypts with single DES (see test/scep/peers.test.ts).
    '--scep-ciphers',
    'aes,des3,des',
    '--push-topic',
    'com.apple.mgmt.External.p256',
  ]);
  t.after(() => server.stop());
  const dir = tempDir();
  const root = exportRole(dataDir, 'root', dir);
  const intermediate = exportRole(dataDir, 'intermediate', dir);

  // The intermediate holds a P-256 key and signs every leaf with ECDSA-SHA256; the SCEP RA keeps an RSA key, which
  // SCEP's key transport needs, and the TLS certificate has a P-256 key.
  assert.match(text(intermediate), /Public Key Algorithm: id-ecPublicKey[\s\S]*NIST CURVE: P-256/);
  for (const role of ['tls', 'profile-signing', 'scep-ra']) {
    const leaf = exportRole(dataDir, role, dir);
    assert.match(text(leaf), /Signature Algorithm: ecdsa-with-SHA256/, role);
    const verified = run('openssl', ['verify', '-CAfile', root, '-untrusted', intermediate, leaf]);
    assert.equal(verified.status, 0, `${role}: ${verified.stderr}`);
  }
  assert.match(text(exportRole(dataDir, 'scep-ra', dir)), /Public Key Algorithm: rsaEncryption/);
  assert.match(text(exportRole(dataDir, 'tls', dir)), /Public Key Algorithm: id-ecPublicKey[\s\S]*NIST CURVE: P-256/);

  // openssl's TLS client sees the P-256 certificate and verifies the chain the listener sends.
  const handshake = run(
    'openssl',
    ['s_client', '-connect', `127.0.0.1:${server.port}`, '-servername', 'localhost', '-CAfile', root, '-verify_return_error', '-brief'],
    { input: '' },
  );
  assert.equal(handshake.status, 0, handshake.stderr);
  assert.match(handshake.stderr, /^Signature type: ECDSA$/m);
  assert.match(handshake.stderr, /Verification: OK/);

  // Debian's scepclient enrolls over that TLS (Go's client), and the EC-signed identity verifies for client auth.
  // Unlike certmonger, scepclient encrypts its request to every certificate GetCACert returns unless it is told the
  // recipient, and it cannot encrypt to the P-256 intermediate (a Go panic, not a refusal): it is given the RA's
  // fingerprint, as for Microsoft NDES. This is why RSA stays the default (README: ECDSA issuing CA).
  const raFingerprint = new X509Certificate(readFileSync(exportRole(dataDir, 'scep-ra', dir))).fingerprint256
    .replaceAll(':', '')
    .toLowerCase();
  const enrolled = scepclient(`https://localhost:${server.port}/scep`, root, challenge(dataDir, 'p256-device'), 'p256-device', {
    caFingerprint: raFingerprint,
  });
  assert.equal(enrolled.status, 0, enrolled.stderr + enrolled.stdout);
  assert.match(text(enrolled.cert), /Signature Algorithm: ecdsa-with-SHA256/);
  const verify = run('openssl', ['verify', '-purpose', 'sslclient', '-CAfile', root, '-untrusted', intermediate, enrolled.cert]);
  assert.equal(verify.status, 0, verify.stderr + verify.stdout);
  assert.equal(lastScepAudit(dataDir)?.outcome, 'ok');

  // certmonger's daemon enrolls too, over plain-HTTP SCEP, and its certificate verifies.
  const cm = await startCertmonger(join(dir, 'certmonger'));
  t.after(() => cm.stop());
  const monger = certmongerEnroll(
    cm.env,
    `http://127.0.0.1:${server.scepHttpPort}/scep`,
    dir,
    'p256-certmonger',
    challenge(dataDir, 'p256-certmonger'),
  );
  assert.equal(monger.request.status, 0, monger.request.stdout + monger.request.stderr);
  assert.match(text(monger.cert), /Signature Algorithm: ecdsa-with-SHA256/);
  assert.equal(run('openssl', ['verify', '-CAfile', root, '-untrusted', intermediate, monger.cert]).status, 0);

  // The scepclient identity speaks MDM: curl sends its signed Authenticate and TokenUpdate over the P-256 TLS.
  const identity = Buffer.from(new X509Certificate(readFileSync(enrolled.cert)).raw);
  const key = join(enrolled.dir, 'key.pem');
  const udid = 'p256-device';
  const authenticate = { MessageType: 'Authenticate', UDID: udid, Topic: 'com.apple.mgmt.External.p256', DeviceName: 'P-256 test' };
  assert.equal(curlCheckIn(server.port, root, identity, key, authenticate), 200);
  const tokenUpdate = {
    MessageType: 'TokenUpdate',
    UDID: udid,
    Topic: 'com.apple.mgmt.External.p256',
    Token: Buffer.alloc(32, 7),
    PushMagic: 'p256-magic',
  };
  assert.equal(curlCheckIn(server.port, root, identity, key, tokenUpdate), 200);
  // And another device's identity does not speak for it: the binding holds on this chain too.
  const other = scepclient(`https://localhost:${server.port}/scep`, root, challenge(dataDir, 'p256-other'), 'p256-other', {
    caFingerprint: raFingerprint,
  });
  assert.equal(other.status, 0, other.stderr);
  const otherIdentity = Buffer.from(new X509Certificate(readFileSync(other.cert)).raw);
  assert.equal(curlCheckIn(server.port, root, otherIdentity, join(other.dir, 'key.pem'), tokenUpdate), 403);
});
