import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { toPem } from '../../src/pki/certificate.ts';
import { envelope, makeCsr, newRequester, pkiMessage, readCertRep, type Requester } from '../helpers/scep.ts';
import { scepFixture } from './fixture.ts';

describe('SCEP RenewalReq', () => {
  let f: Awaited<ReturnType<typeof scepFixture>>;
  let device: Requester;
  let current: Buffer;
  before(async () => {
    f = await scepFixture({ 'identity-days': '30' });
    device = newRequester();
    const { challenge } = await f.challenge();
    const rep = await f.post(pkiMessage(device, envelope(makeCsr(device, { challenge, cn: 'renewing-device' }), f.ra)));
    assert.equal(readCertRep(rep.rawPayload, device, f.root).status, '0');
    current = (await f.identities())[0]!.der;
  });
  after(() => f.close());

  /** The device's next key signs the new CSR; the request is signed with the current identity. */
  function renewal(signer: Buffer, signerKeyPem: string, next: Requester) {
    const csr = makeCsr(next, { cn: 'renewing-device' });
    return pkiMessage(next, envelope(csr, f.ra), {
      messageType: '17',
      signerCertificate: signer,
      signerKey: createPrivateKey(readFileSync(signerKeyPem)),
    });
  }

  test('signed by a current identity from this CA: a new certificate, no challenge needed', async () => {
    const next = newRequester();
    // The response is encrypted to the signer certificate, so the device decrypts it with its current key.
    const asCurrent: Requester = { ...device, selfSigned: current, selfSignedPem: join(device.dir, 'current.pem') };
    writeFileSync(asCurrent.selfSignedPem, toPem(current));
    const rep = readCertRep((await f.post(renewal(current, device.keyPem, next))).rawPayload, asCurrent, f.root);
    assert.equal(rep.status, '0');
    assert.match(rep.certificates, /CN = renewing-device/);
    assert.equal((await f.identities()).length, 2);
    const [event] = await f.app.store.listAudit({ action: 'scep.pkioperation', limit: 1 });
    assert.ok(event?.detail?.renewalOf, 'the audit links the renewal to the certificate it renews');
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
    const asCurrent: Requester = { ...device, selfSigned: current, selfSignedPem: join(device.dir, 'current.pem') };
    const rep = readCertRep((await f.post(renewal(current, device.keyPem, next))).rawPayload, asCurrent, f.root);
    assert.equal(rep.failInfo, '4');
    assert.equal((await f.identities()).length, before);
    const [event] = await f.app.store.listAudit({ action: 'scep.pkioperation', limit: 1 });
    assert.match(event?.reason ?? '', /outside its validity/);
  });
});
