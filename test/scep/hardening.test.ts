import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PKI_OPERATION_GATE } from '../../src/http/concurrency-gate.ts';
import * as cms from '../../src/pki/cms.ts';
import * as der from '../../src/pki/der.ts';
import { OID } from '../../src/pki/oids.ts';
import { envelope, makeCsr, newRequester, pkiMessage, readCertRep, type Requester } from '../helpers/scep.ts';
import { berBomb, MALFORMED_VALIDITY, withValidity } from '../helpers/malformed.ts';
import { mdmFixture } from '../mdm/fixture.ts';

describe('SCEP refusals of malformed input through the real server', () => {
  let f: Awaited<ReturnType<typeof mdmFixture>>;
  let alice: Requester;
  before(async () => {
    f = await mdmFixture();
    alice = newRequester();
  });
  after(() => f.close());

  /** Nothing stored changed, the challenge (if any) is unconsumed, and the refusal is the newest audit row. */
  async function refusedWithoutChange(
    send: () => Promise<{ statusCode: number; body: string; rawPayload: Buffer; headers: Record<string, unknown> }>,
    reason: RegExp,
    challengeId?: string,
  ) {
    const before = f.state();
    const auditBefore = (await f.app.store.listAudit({ limit: 1000 })).length;
    const response = await send();
    assert.notEqual(response.statusCode, 500, response.body);
    assert.deepEqual(f.state(), before, 'stored state unchanged');
    if (challengeId) assert.equal((await f.app.store.getChallenge(challengeId))?.consumedAt, null, 'the challenge is not consumed');
    const events = await f.app.store.listAudit({ limit: 1000 });
    assert.equal(events.length, auditBefore + 1, 'exactly one audit row');
    assert.equal(events[0]?.action, 'scep.pkioperation');
    assert.equal(events[0]?.outcome, 'denied');
    assert.match(events[0]?.reason ?? '', reason);
    return response;
  }

  test('a 256 KiB PKIOperation of nested indefinite OCTET STRINGs: 400 after a bounded number of element reads', async () => {
    const bomb = berBomb();
    assert.ok(bomb.length > 255 * 1024 && bomb.length <= 256 * 1024);
    const start = der.readerWork.elements;
    const response = await refusedWithoutChange(() => f.post(bomb), /unreadable PKIMessage: .*(nesting too deep|segments)/);
    assert.equal(response.statusCode, 400);
    assert.equal(response.body, 'malformed SCEP PKIMessage\n', 'no internals in the body');
    const read = der.readerWork.elements - start;
    assert.ok(read <= der.MAX_DEPTH + 8, `the server read ${read} elements of a ${bomb.length}-byte message`);
  });

  test('a correctly signed and encrypted CSR with a malformed extension value: CertRep FAILURE badRequest', async () => {
    const { challenge, record } = await f.challenge();
    const csr = makeCsr(alice, { challenge, addext: ['subjectAltName=DER:30053003'] }); // SEQUENCE of 5 bytes holding 2
    const response = await refusedWithoutChange(
      () => f.post(pkiMessage(alice, envelope(csr, f.ra))),
      /malformed (extension|certification request)/,
      record.id,
    );
    assert.equal(response.statusCode, 200);
    const rep = readCertRep(response.rawPayload, alice, f.root);
    assert.equal(rep.status, '2', 'pkiStatus FAILURE');
    assert.equal(rep.failInfo, '2', 'failInfo badRequest');
  });

  test('a signer certificate with a malformed Validity next to a signingTime: HTTP 400, audited', async () => {
    const { challenge, record } = await f.challenge();
    // Signed by alice's key, with signingTime; the certificate carried is hers re-signed with a broken Validity (the
    // SignerInfo names it by issuer and serial, which are unchanged).
    const message = cms.buildSignedData({
      content: envelope(makeCsr(alice, { challenge }), f.ra),
      signerCertificate: alice.selfSigned,
      signerKey: alice.key,
      digest: 'sha256',
      certificates: [withValidity(alice.selfSigned, alice.key, MALFORMED_VALIDITY)],
      attributes: [
        cms.encodeAttribute(OID.scepMessageType, der.printable('19')),
        cms.encodeAttribute(OID.scepTransactionId, der.printable('tx-validity')),
        cms.encodeAttribute(OID.scepSenderNonce, der.octets(Buffer.alloc(16, 1))),
        cms.encodeAttribute(OID.signingTime, der.time(f.now())),
      ],
    });
    const response = await refusedWithoutChange(() => f.post(message), /unreadable PKIMessage: .*UTCTime or GeneralizedTime/, record.id);
    assert.equal(response.statusCode, 400, 'a SignedData carrying a malformed certificate is malformed CMS, as openssl reads it');
    assert.equal(response.body, 'malformed SCEP PKIMessage\n', 'no internals in the body');
  });

  test('beyond two PKIOperations in flight and 64 waiting, the next is refused with an audited 503 and changes nothing', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const holders = Array.from({ length: PKI_OPERATION_GATE.limit + PKI_OPERATION_GATE.queueLimit }, () =>
      PKI_OPERATION_GATE.run(() => held),
    );
    assert.equal(PKI_OPERATION_GATE.waiting, PKI_OPERATION_GATE.queueLimit);
    const { challenge, record } = await f.challenge();
    const message = pkiMessage(alice, envelope(makeCsr(alice, { challenge }), f.ra));
    const busy = await refusedWithoutChange(() => f.post(message), /busy/, record.id);
    assert.equal(busy.statusCode, 503);
    assert.equal(busy.headers['retry-after'], '1');
    release();
    await Promise.all(holders);
    assert.equal(PKI_OPERATION_GATE.running, 0);
    const served = await f.post(message);
    assert.equal(readCertRep(served.rawPayload, alice, f.root).status, '0', 'once the flood drains, the same request is served');
  });
});
