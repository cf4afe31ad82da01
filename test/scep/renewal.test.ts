import assert from 'node:assert/strict';
import { createHash, createPrivateKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bindingPolicy } from '../../src/mdm/binding.ts';
import { toPem } from '../../src/pki/certificate.ts';
import { envelope, makeCsr, newRequester, pkiMessage, readCertRep, type Requester } from '../helpers/scep.ts';
import { scepFixture } from './fixture.ts';

describe('SCEP RenewalReq', () => {
  let f: Awaited<ReturnType<typeof scepFixture>>;
  let device: Requester;
  let current: Buffer;
  /** An identity issued under a plain challenge that never authenticated: it serves no enrollment yet. */
  let unbound: { requester: Requester; der: Buffer };

  async function issue(requester: Requester, ref: string): Promise<Buffer> {
    const { challenge } = await f.challenge(3_600_000, ref);
    const rep = await f.post(pkiMessage(requester, envelope(makeCsr(requester, { challenge, cn: ref }), f.ra)));
    assert.equal(readCertRep(rep.rawPayload, requester, f.root).status, '0');
    const [event] = await f.app.store.listAudit({ action: 'scep.pkioperation', limit: 1 });
    return (await f.app.store.getCertificateByFingerprint(String(event!.detail!.certificate)))!.der;
  }

  before(async () => {
    f = await scepFixture({ 'identity-days': '30' });
    device = newRequester();
    current = await issue(device, 'renewing-device');
    const record = (await f.app.store.getCertificateByFingerprint(fingerprintOf(current)))!;
    await f.app.store.authenticateEnrollment({
      id: 'RENEW-UDID',
      kind: 'device',
      certificateId: record.id,
      topic: 't',
      info: {},
      now: f.now(),
      decide: bindingPolicy({ permissiveReenrollment: false }),
    });
    const stranger = newRequester();
    unbound = { requester: stranger, der: await issue(stranger, 'never-enrolled') };
  });
  after(() => f.close());

  const fingerprintOf = (der: Buffer) => createHash('sha256').update(der).digest('hex');

  /** The device's next key signs the new CSR; the request is signed with the current identity. */
  function renewal(signer: Buffer, signerKeyPem: string, next: Requester, cn = 'renewing-device') {
    const csr = makeCsr(next, { cn });
    return pkiMessage(next, envelope(csr, f.ra), {
      messageType: '17',
      signerCertificate: signer,
      signerKey: createPrivateKey(readFileSync(signerKeyPem)),
    });
  }

  const as = (requester: Requester, der: Buffer, name: string): Requester => {
    const pem = join(requester.dir, `${name}.pem`);
    writeFileSync(pem, toPem(der));
    return { ...requester, selfSigned: der, selfSignedPem: pem };
  };

  test("signed by an enrolled device's current identity: a new certificate for its enrollment and subject, no challenge", async () => {
    const next = newRequester();
    // The CSR asks for another subject: the renewal keeps the signer's.
    const rep = readCertRep(
      (await f.post(renewal(current, device.keyPem, next, 'someone-else'))).rawPayload,
      as(device, current, 'current'),
      f.root,
    );
    assert.equal(rep.status, '0');
    assert.match(rep.certificates, /subject=O = certmdm, CN = renewing-device\n/);
    assert.doesNotMatch(rep.certificates, /someone-else/);
    const [event] = await f.app.store.listAudit({ action: 'scep.pkioperation', limit: 1 });
    assert.ok(event?.detail?.renewalOf, 'the audit links the renewal to the certificate it renews');
    const issued = (await f.app.store.getCertificateByFingerprint(String(event!.detail!.certificate)))!;
    assert.equal(issued.servesEnrollment, 'RENEW-UDID', "the renewal may serve the signer's enrollment only");
    assert.equal(issued.renewalOf, (await f.app.store.getCertificateByFingerprint(fingerprintOf(current)))!.id);
  });

  test('a second RenewalReq by the same identity: refused, nothing issued (one renewal per identity)', async () => {
    const before = (await f.identities()).length;
    const rep = readCertRep(
      (await f.post(renewal(current, device.keyPem, newRequester()))).rawPayload,
      as(device, current, 'current'),
      f.root,
    );
    assert.equal(rep.status, '2');
    assert.equal((await f.identities()).length, before);
    const [event] = await f.app.store.listAudit({ action: 'scep.pkioperation', limit: 1 });
    assert.match(event?.reason ?? '', /one renewal per identity/);
  });

  test('signed by an identity that never enrolled: badCertId, nothing issued', async () => {
    const before = (await f.identities()).length;
    const { requester, der } = unbound;
    const rep = readCertRep(
      (await f.post(renewal(der, requester.keyPem, newRequester(), 'never-enrolled'))).rawPayload,
      as(requester, der, 'unbound'),
      f.root,
    );
    assert.equal(rep.failInfo, '4');
    assert.equal((await f.identities()).length, before);
    const [event] = await f.app.store.listAudit({ action: 'scep.pkioperation', limit: 1 });
    assert.match(event?.reason ?? '', /not an enrolled device's current identity/);
  });

  test('signed by a self-signed certificate: badCertId, nothing issued', async () => {
    const stranger = newRequester();
    const before = (await f.identities()).length;
    const rep = readCertRep((await f.post(renewal(stranger.selfSigned, stranger.keyPem, stranger))).rawPayload, stranger, f.root);
    assert.equal(rep.failInfo, '4');
    assert.equal((await f.identities()).length, before);
  });

  test('signed by an expired identity: badCertId', async () => {
    f.advance(31 * 86_400_000);
    const next = newRequester();
    const before = (await f.identities()).length;
    const rep = readCertRep((await f.post(renewal(current, device.keyPem, next))).rawPayload, as(device, current, 'current'), f.root);
    assert.equal(rep.failInfo, '4');
    assert.equal((await f.identities()).length, before);
    const [event] = await f.app.store.listAudit({ action: 'scep.pkioperation', limit: 1 });
    assert.match(event?.reason ?? '', /outside its validity/);
  });
});
