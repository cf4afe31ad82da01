import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { createServer } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import { curl, mtlsServer, scepIdentity, type PeerIdentity } from '../helpers/mtls.ts';
import { openSigned, plistlibPlain } from '../helpers/profile.ts';
import { envelope, makeCsr, newRequester, pkiMessage, readCertRep, type Requester } from '../helpers/scep.ts';

const TOPIC = 'com.apple.mgmt.External.takeover-test';

/**
 * Issue "identity hardening", item 1 and 2, through the real `certmdm serve` over HTTPS with mutual TLS: the
 * reproduced takeover (a second identity claiming an enrolled UDID), RenewalReq as an identity mint, and a retired
 * identity coming back. Every refusal is 403, named in the audit, announced on the webhook, and changes nothing.
 */
test('no device is taken over by anyone holding less than its key', async (t) => {
  const events: Record<string, any>[] = [];
  const hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const event = JSON.parse(body) as Record<string, any>;
      // A delivery retried after a timeout may arrive twice: one event per event_id, as a receiver should keep.
      if (!events.some((e) => e.event_id === event.event_id)) events.push(event);
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  t.after(() => hook.close());

  const { dataDir, server, root, ra, base, state, admin, say, authenticate } = await mtlsServer(TOPIC, [
    '--webhook-url',
    `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`,
  ]);
  t.after(() => server.stop());
  const lastRefusal = () => {
    const audit = JSON.parse(runCli(['audit', 'list', '--json', '--data', dataDir, '--limit', '1']).stdout) as Record<string, any>[];
    return audit[0]!;
  };
  const announced = async (reason: string, udid: string) => {
    for (let i = 0; i < 750 && !events.some((e) => e.topic === 'mdm.IdentityRefused' && e.identity_refused_event.reason === reason); i++)
      await new Promise((r) => setTimeout(r, 20));
    const event = events.find((e) => e.topic === 'mdm.IdentityRefused' && e.identity_refused_event.reason === reason);
    assert.ok(event, `mdm.IdentityRefused (${reason}) on the webhook`);
    assert.equal(event.identity_refused_event.udid, udid);
  };
  /** A refusal: 403 (never 401), audited with its named reason and the presented certificate, nothing stored changed. */
  const refused = (response: { status: number; body: string }, reason: string, before: Record<string, string>) => {
    assert.equal(response.status, 403, response.body);
    const event = lastRefusal();
    assert.equal(event.outcome, 'denied');
    assert.equal(event.detail.refusal, reason);
    assert.match(String(event.detail.certificate), /^[0-9a-f]{64}$/);
    assert.deepEqual(state(), before, `stored state unchanged after a refusal (${reason})`);
  };

  // The victim enrolls, hands over its push token and has a command waiting.
  const VICTIM = 'VICTIM-0000-AAAA';
  const victim = scepIdentity(dataDir, server.port, root, VICTIM);
  assert.equal(say(victim, authenticate(VICTIM)).status, 200);
  const token64 = Buffer.from('victim-push-token').toString('base64');
  assert.equal(
    say(victim, { MessageType: 'TokenUpdate', UDID: VICTIM, Topic: TOPIC, Token: { $data: token64 }, PushMagic: 'victim-magic' }).status,
    200,
  );
  const queued = admin('POST', '/v1/commands', { devices: [VICTIM], command: { RequestType: 'ProfileList' } });
  assert.equal(queued.status, 201, queued.body);
  const commandUuid = JSON.parse(queued.body).command_uuid as string;

  // 1. A second identity from any plain challenge or enrollment link claims the victim's UDID.
  const attacker = scepIdentity(dataDir, server.port, root, VICTIM);
  let before = state();
  refused(say(attacker, authenticate(VICTIM)), 'enrollment-exists', before);
  await announced('enrollment-exists', VICTIM);
  refused(
    say(attacker, { MessageType: 'TokenUpdate', UDID: VICTIM, Topic: TOPIC, Token: { $data: 'AAAA' }, PushMagic: 'evil' }),
    'not-bound',
    before,
  );
  refused(say(attacker, { UDID: VICTIM, Status: 'Idle' }), 'not-bound', before);
  refused(say(attacker, { UDID: VICTIM, Status: 'Acknowledged', CommandUUID: commandUuid }), 'not-bound', before);

  // 2. The attacker enrolls its own device, then mints a second identity by RenewalReq and claims the victim with it.
  const ATTACKER = 'ATTACKER-0000-BBBB';
  assert.equal(say(attacker, authenticate(ATTACKER)).status, 200);
  const asAttacker: Requester = {
    dir: attacker.dir,
    keyPem: attacker.key,
    key: createPrivateKey(readFileSync(attacker.key)),
    selfSigned: attacker.der,
    selfSignedPem: attacker.cert,
  };
  const renewal = (next: Requester) =>
    curl(`${base}/scep?operation=PKIOperation`, {
      method: 'POST',
      body: pkiMessage(next, envelope(makeCsr(next, { cn: VICTIM }), ra), {
        messageType: '17',
        signerCertificate: attacker.der,
        signerKey: asAttacker.key,
      }),
      contentType: 'application/x-pki-message',
      args: ['--cacert', root],
    });
  const next = newRequester();
  const rep = readCertRep(renewal(next).raw, asAttacker, root);
  assert.equal(rep.status, '0', 'the attacker may renew its own identity');
  assert.doesNotMatch(rep.certificates, new RegExp(`CN = ${VICTIM}`), "the renewal keeps the signer's subject, not the CSR's");
  writeFileSync(join(next.dir, 'renewed.pem'), rep.certificates);
  const renewed: PeerIdentity = { key: next.keyPem, cert: join(next.dir, 'renewed.pem'), der: Buffer.alloc(0), dir: next.dir };
  before = state();
  refused(say(renewed, authenticate(VICTIM)), 'minted-for-another-enrollment', before);
  await announced('minted-for-another-enrollment', VICTIM);
  const again = readCertRep(renewal(newRequester()).raw, asAttacker, root);
  assert.equal(again.status, '2', 'one renewal per identity');

  // 3. The victim is wiped: the admin's re-enrollment link mints an identity for exactly that enrollment.
  const link = admin('POST', '/v1/enrollment-links', { device: VICTIM });
  assert.equal(link.status, 201, link.body);
  // The link names the public URL (port 8443 by default); this server listens on a free port.
  const linkPath = new URL(JSON.parse(link.body).url as string).pathname;
  const profile = curl(`${base}${linkPath}`, { args: ['--cacert', root] });
  assert.equal(profile.status, 200);
  const payloads = openSigned(profile.raw, root).profile.PayloadContent as Record<string, any>[];
  const scep = payloads.find((p) => p.PayloadType === 'com.apple.security.scep')!;
  const reenrolled = scepIdentity(dataDir, server.port, root, VICTIM, scep.PayloadContent.Challenge as string);
  assert.equal(say(reenrolled, authenticate(VICTIM)).status, 200, 'the re-enrollment link takes the enrollment over');

  // 4. The replaced identity may not come back: not by Authenticate, and not after it is superseded.
  before = state();
  refused(say(victim, authenticate(VICTIM)), 'identity-retired', before);
  const offered = say(reenrolled, { UDID: VICTIM, Status: 'Idle' });
  assert.equal(offered.status, 200);
  assert.equal(plistlibPlain(offered.raw).CommandUUID, commandUuid, "the victim's queue survived every attempt");
  before = state();
  refused(say(victim, { UDID: VICTIM, Status: 'Idle' }), 'identity-retired', before);
  refused(say(victim, authenticate(VICTIM)), 'identity-retired', before);
});
