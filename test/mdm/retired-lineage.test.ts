import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import { curl, mtlsServer, scepIdentity, type PeerIdentity } from '../helpers/mtls.ts';
import { openSigned, plistlibPlain } from '../helpers/profile.ts';
import { envelope, makeCsr, newRequester, pkiMessage, readCertRep, type Requester } from '../helpers/scep.ts';

const TOPIC = 'com.apple.mgmt.External.lineage-test';

/**
 * Whoever held a device's key once keeps nothing once another identity has taken the enrollment over. Before the
 * fix, the old key's holder minted an identity by RenewalReq (signed with the key while it was current, kept
 * unused), and after the enrollment was started over — CheckOut and a fresh enrollment of the same UDID, or the
 * admin's re-enrollment link for the wiped device — authenticated with it: 200, the new owner's queue delivered to
 * it and the new owner locked out (403). Through the real `certmdm serve` with mutual TLS, scepclient and openssl.
 */
test('an identity minted from a replaced identity does not take the enrollment back', async (t) => {
  const { dataDir, server, root, ra, base, state, admin, say, authenticate } = await mtlsServer(TOPIC);
  t.after(() => server.stop());
  /** A SCEP RenewalReq signed by `signer`'s key and certificate; the CertRep is encrypted to the signer. */
  const renewalBy = (signer: PeerIdentity): PeerIdentity => {
    const next = newRequester();
    const response = curl(`${base}/scep?operation=PKIOperation`, {
      method: 'POST',
      body: pkiMessage(next, envelope(makeCsr(next), ra), {
        messageType: '17',
        signerCertificate: signer.der,
        signerKey: createPrivateKey(readFileSync(signer.key)),
      }),
      contentType: 'application/x-pki-message',
      args: ['--cacert', root],
    });
    const asSigner: Requester = { ...next, keyPem: signer.key, selfSignedPem: signer.cert };
    const rep = readCertRep(response.raw, asSigner, root);
    assert.equal(rep.status, '0', 'the current identity may renew itself');
    const cert = join(next.dir, 'renewed.pem');
    writeFileSync(cert, rep.certificates);
    const der = Buffer.from(/-----BEGIN CERTIFICATE-----([\s\S]+?)-----END/.exec(rep.certificates)![1]!.replace(/\s+/g, ''), 'base64');
    return { key: next.keyPem, cert, der, dir: next.dir };
  };
  const lastAudit = () =>
    (JSON.parse(runCli(['audit', 'list', '--json', '--data', dataDir, '--limit', '1']).stdout) as Record<string, any>[])[0]!;
  const refused = (response: { status: number; body: string }, reason: string, before: Record<string, string>) => {
    assert.equal(response.status, 403, response.body);
    const event = lastAudit();
    assert.equal(event.outcome, 'denied');
    assert.equal(event.detail.refusal, reason);
    assert.match(String(event.detail.certificate), /^[0-9a-f]{64}$/);
    assert.deepEqual(state(), before, `stored state unchanged after a refusal (${reason})`);
  };
  const served = (identity: PeerIdentity, udid: string, commandUuid: string) => {
    const idle = say(identity, { UDID: udid, Status: 'Idle' });
    assert.equal(idle.status, 200, idle.body);
    assert.equal(plistlibPlain(idle.raw).CommandUUID, commandUuid, "the new owner's command goes to the new owner");
  };

  // 1. CheckOut, then a fresh enrollment of the same UDID by a new owner.
  const X = 'LINEAGE-X-0001';
  const first = scepIdentity(dataDir, server.port, root, X);
  assert.equal(say(first, authenticate(X)).status, 200);
  const kept = renewalBy(first); // minted while `first` was current, never used
  assert.equal(say(first, { MessageType: 'CheckOut', UDID: X }).status, 200);
  const owner = scepIdentity(dataDir, server.port, root, X);
  assert.equal(say(owner, authenticate(X)).status, 200, 'a checked-out UDID may be enrolled afresh');
  const queued = admin('POST', '/v1/commands', { devices: [X], command: { RequestType: 'ProfileList' }, push: false });
  assert.equal(queued.status, 201, queued.body);
  let before = state();
  refused(say(kept, authenticate(X)), 'identity-retired', before);
  refused(say(kept, { UDID: X, Status: 'Idle' }), 'not-bound', before);
  served(owner, X, JSON.parse(queued.body).command_uuid as string);

  // 2. The admin's re-enrollment link replaces an identity whose holder minted a renewal after the link's identity.
  const Y = 'LINEAGE-Y-0001';
  const evicted = scepIdentity(dataDir, server.port, root, Y);
  assert.equal(say(evicted, authenticate(Y)).status, 200);
  const escrowed = Buffer.from('escrowed-bootstrap-token').toString('base64');
  assert.equal(say(evicted, { MessageType: 'SetBootstrapToken', UDID: Y, BootstrapToken: { $data: escrowed } }).status, 200);
  const link = admin('POST', '/v1/enrollment-links', { device: Y });
  assert.equal(link.status, 201, link.body);
  const profile = curl(`${base}${new URL(JSON.parse(link.body).url as string).pathname}`, { args: ['--cacert', root] });
  assert.equal(profile.status, 200);
  const scep = (openSigned(profile.raw, root).profile.PayloadContent as Record<string, any>[]).find(
    (p) => p.PayloadType === 'com.apple.security.scep',
  )!;
  const reenrolled = scepIdentity(dataDir, server.port, root, Y, scep.PayloadContent.Challenge as string);
  const minted = renewalBy(evicted); // the old key is still current until the re-enrolled identity authenticates
  assert.equal(say(reenrolled, authenticate(Y)).status, 200, 'the re-enrollment link takes the enrollment over');
  // Until the re-enrolled identity is seen again the replaced one is kept, to finish its session: not to end the
  // enrollment (before the fix its CheckOut left the re-enrolled device refused as not enrolled) or reach its tokens.
  before = state();
  for (const message of [
    { MessageType: 'GetBootstrapToken', UDID: Y },
    { MessageType: 'SetBootstrapToken', UDID: Y, BootstrapToken: { $data: 'AAAA' } },
    { MessageType: 'CheckOut', UDID: Y },
  ]) {
    const response = say(evicted, message);
    assert.ok(!response.body.includes(escrowed), 'the escrowed token is not handed to the replaced identity');
    refused(response, 'identity-retired', before);
  }
  const held = say(reenrolled, { MessageType: 'GetBootstrapToken', UDID: Y });
  assert.equal(held.status, 200, held.body);
  assert.equal(plistlibPlain(held.raw).BootstrapToken, escrowed);
  const queuedY = admin('POST', '/v1/commands', { devices: [Y], command: { RequestType: 'ProfileList' }, push: false });
  assert.equal(queuedY.status, 201, queuedY.body);
  before = state();
  refused(say(minted, authenticate(Y)), 'identity-retired', before);
  refused(say(minted, { UDID: Y, Status: 'Idle' }), 'not-bound', before);
  served(reenrolled, Y, JSON.parse(queuedY.body).command_uuid as string);
});
