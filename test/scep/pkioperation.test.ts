import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { envelope, makeCsr, newRequester, pkiMessage, readCertRep, type Requester } from '../helpers/scep.ts';
import { run } from '../helpers/cli.ts';
import { scepFixture } from './fixture.ts';

describe('SCEP PKIOperation', () => {
  let f: Awaited<ReturnType<typeof scepFixture>>;
  let alice: Requester;
  before(async () => {
    f = await scepFixture();
    alice = newRequester();
  });
  after(() => f.close());

  /** A refusal must leave no certificate issued and the challenge unconsumed; the audit says why. */
  async function assertNothingChanged(challengeId: string | undefined, issuedBefore: number, reason: RegExp) {
    assert.equal((await f.identities()).length, issuedBefore, 'no certificate was issued');
    if (challengeId) {
      const challenge = await f.app.store.getChallenge(challengeId);
      assert.equal(challenge?.consumedAt, null, 'the challenge was not consumed');
    }
    const [event] = await f.app.store.listAudit({ action: 'scep.pkioperation', limit: 1 });
    assert.equal(event?.outcome, 'denied');
    assert.match(event?.reason ?? '', reason);
  }

  for (const cipher of ['aes128', 'aes256', 'des3'] as const) {
    for (const digest of ['sha256', 'sha1'] as const) {
      test(`PKCSReq with ${cipher} and ${digest} issues a client certificate`, async () => {
        const { challenge, record } = await f.challenge(3_600_000, `dev-${cipher}-${digest}`);
        const senderNonce = Buffer.alloc(16, 7);
        const body = pkiMessage(
          alice,
          envelope(
            makeCsr(alice, { cn: `dev-${cipher}-${digest}`, challenge, addext: ['keyUsage=critical,digitalSignature,keyEncipherment'] }),
            f.ra,
            cipher,
          ),
          { digest, transactionId: 'tx-1', senderNonce },
        );
        const response = await f.post(body);
        assert.equal(response.statusCode, 200);
        assert.equal(response.headers['content-type'], 'application/x-pki-message');
        const rep = readCertRep(response.rawPayload, alice, f.root);
        assert.equal(rep.status, '0');
        assert.equal(rep.transactionId, 'tx-1');
        assert.deepEqual(rep.recipientNonce, senderNonce);
        // The subject is the challenge's enrollment (O = --organization, CN = its reference), not the CSR's.
        assert.match(rep.certificates, new RegExp(`subject=O = certmdm, CN = dev-${cipher}-${digest}\n`));
        const issued = (await f.app.store.getChallenge(record.id))!;
        assert.ok(issued.consumedAt && issued.certificateId, 'the challenge is consumed by this issuance and linked to it');
        const cert = await f.app.store.getCertificate(issued.certificateId!);
        assert.equal(cert?.role, 'device-identity');
        const text = run('openssl', ['x509', '-inform', 'DER', '-noout', '-text'], { input: cert!.der as unknown as string }).stdout;
        assert.match(text, /Key Usage: critical\s+Digital Signature, Key Encipherment/);
        assert.match(text, /TLS Web Client Authentication\n/);
        assert.doesNotMatch(text, /TLS Web Server Authentication|CA:TRUE/);
      });
    }
  }

  test('PKIOperation also works by GET with a base64 message', async () => {
    const { challenge } = await f.challenge();
    const body = pkiMessage(alice, envelope(makeCsr(alice, { challenge }), f.ra));
    const response = await f.server.inject({
      method: 'GET',
      url: `/scep?operation=PKIOperation&message=${encodeURIComponent(body.toString('base64'))}`,
    });
    assert.equal(response.statusCode, 200);
    assert.equal(readCertRep(response.rawPayload, alice, f.root).status, '0');
  });

  test('garbage and truncated messages get HTTP 400 and change nothing', async () => {
    const { challenge, record } = await f.challenge();
    const before = (await f.identities()).length;
    const garbage = await f.post(Buffer.from('this is not DER at all'));
    assert.equal(garbage.statusCode, 400);
    await assertNothingChanged(record.id, before, /unreadable PKIMessage/);
    const valid = pkiMessage(alice, envelope(makeCsr(alice, { challenge }), f.ra));
    for (const cut of [10, valid.length / 2, valid.length - 1]) {
      const truncated = await f.post(valid.subarray(0, Math.floor(cut)));
      assert.equal(truncated.statusCode, 400);
      await assertNothingChanged(record.id, before, /unreadable PKIMessage/);
    }
  });

  const refusals: { name: string; failInfo: string; reason: RegExp; build: (challenge: string) => Buffer; challengeKept?: boolean }[] = [
    {
      name: 'a signature that does not match',
      failInfo: '1',
      reason: /signature does not verify|messageDigest/,
      build: (challenge) => {
        const body = pkiMessage(alice, envelope(makeCsr(alice, { challenge }), f.ra));
        body[body.length - 5]! ^= 0xff; // inside the RSA signature
        return body;
      },
    },
    {
      name: 'an unknown message type',
      failInfo: '2',
      reason: /unknown messageType 99/,
      build: (challenge) => pkiMessage(alice, envelope(makeCsr(alice, { challenge }), f.ra), { messageType: '99' }),
    },
    {
      name: 'CertPoll (nothing is ever pending)',
      failInfo: '2',
      reason: /CertPoll/,
      build: (challenge) => pkiMessage(alice, envelope(makeCsr(alice, { challenge }), f.ra), { messageType: '20' }),
    },
    {
      name: 'GetCert',
      failInfo: '4',
      reason: /GetCert/,
      build: (challenge) => pkiMessage(alice, envelope(makeCsr(alice, { challenge }), f.ra), { messageType: '21' }),
    },
    {
      name: 'a CSR whose key does not sign it',
      failInfo: '1',
      reason: /CSR is not signed by the key it certifies/,
      build: (challenge) => {
        const csr = makeCsr(alice, { challenge });
        csr[csr.length - 3]! ^= 0xff; // the CSR's own signature
        return pkiMessage(alice, envelope(csr, f.ra));
      },
    },
    {
      name: 'a PKCSReq signed with a key other than the CSR key',
      failInfo: '1',
      reason: /must be signed with the key of the CSR/,
      build: (challenge) => {
        const mallory = newRequester();
        return pkiMessage(alice, envelope(makeCsr(mallory, { challenge }), f.ra));
      },
    },
    {
      name: 'a wrong challenge',
      failInfo: '2',
      reason: /wrong challenge password/,
      build: (challenge) => pkiMessage(alice, envelope(makeCsr(alice, { challenge: challenge.slice(0, 16) + 'f'.repeat(40) }), f.ra)),
    },
    {
      name: 'no challenge at all',
      failInfo: '2',
      reason: /no challenge password/,
      build: () => pkiMessage(alice, envelope(makeCsr(alice), f.ra)),
    },
    {
      name: 'a CSR asking for a CA certificate',
      failInfo: '2',
      reason: /asks for a CA certificate/,
      build: (challenge) => pkiMessage(alice, envelope(makeCsr(alice, { challenge, addext: ['basicConstraints=critical,CA:TRUE'] }), f.ra)),
    },
    {
      name: 'a CSR asking for serverAuth',
      failInfo: '2',
      reason: /asks for serverAuth/,
      build: (challenge) =>
        pkiMessage(alice, envelope(makeCsr(alice, { challenge, addext: ['extendedKeyUsage=serverAuth,clientAuth'] }), f.ra)),
    },
    {
      name: 'a signingTime far from the server clock',
      failInfo: '3',
      reason: /signingTime .* too far/,
      build: (challenge) =>
        pkiMessage(alice, envelope(makeCsr(alice, { challenge }), f.ra), { signingTime: new Date(Date.now() - 86_400_000) }),
    },
    {
      name: 'an envelope that is not EnvelopedData',
      failInfo: '1',
      reason: /pkcsPKIEnvelope/,
      build: () => pkiMessage(alice, Buffer.from('not an envelope')),
    },
  ];

  for (const refusal of refusals) {
    test(`refused with failInfo ${refusal.failInfo}: ${refusal.name}`, async () => {
      const { challenge, record } = await f.challenge();
      const before = (await f.identities()).length;
      const response = await f.post(refusal.build(challenge));
      assert.equal(response.statusCode, 200);
      const rep = readCertRep(response.rawPayload, alice, f.root);
      assert.equal(rep.status, '2', 'pkiStatus FAILURE');
      assert.equal(rep.failInfo, refusal.failInfo);
      await assertNothingChanged(record.id, before, refusal.reason);
    });
  }

  test('an expired challenge is refused and stays unconsumed', async () => {
    const { challenge, record } = await f.challenge(60_000);
    f.advance(120_000);
    const before = (await f.identities()).length;
    const rep = readCertRep((await f.post(pkiMessage(alice, envelope(makeCsr(alice, { challenge }), f.ra)))).rawPayload, alice, f.root);
    assert.equal(rep.failInfo, '2');
    await assertNothingChanged(record.id, before, /challenge password expired/);
  });

  test('a reused challenge is refused', async () => {
    const { challenge } = await f.challenge();
    const first = readCertRep((await f.post(pkiMessage(alice, envelope(makeCsr(alice, { challenge }), f.ra)))).rawPayload, alice, f.root);
    assert.equal(first.status, '0');
    const before = (await f.identities()).length;
    const second = readCertRep((await f.post(pkiMessage(alice, envelope(makeCsr(alice, { challenge }), f.ra)))).rawPayload, alice, f.root);
    assert.equal(second.failInfo, '2');
    await assertNothingChanged(undefined, before, /already used/);
  });

  test('two concurrent requests with one challenge yield exactly one certificate', async () => {
    const { challenge, record } = await f.challenge();
    const bob = newRequester();
    const before = (await f.identities()).length;
    const bodies = [
      pkiMessage(alice, envelope(makeCsr(alice, { challenge, cn: 'racer-a' }), f.ra)),
      pkiMessage(bob, envelope(makeCsr(bob, { challenge, cn: 'racer-b' }), f.ra)),
    ];
    const responses = await Promise.all(bodies.map((b) => f.post(b)));
    const statuses = responses.map((r, i) => readCertRep(r.rawPayload, i === 0 ? alice : bob, f.root).status).sort();
    assert.deepEqual(statuses, ['0', '2']);
    assert.equal((await f.identities()).length, before + 1);
    assert.ok((await f.app.store.getChallenge(record.id))?.certificateId);
  });

  test('an oversized body is refused with 413 and audited', async () => {
    const big = await scepFixture({ 'scep-body-limit': '2048' });
    try {
      const { challenge, record } = await big.challenge();
      const body = pkiMessage(alice, envelope(makeCsr(alice, { challenge }), big.ra));
      assert.ok(body.length > 2048);
      const response = await big.post(body);
      assert.equal(response.statusCode, 413);
      assert.equal((await big.identities()).length, 0);
      assert.equal((await big.app.store.getChallenge(record.id))?.consumedAt, null);
      const [event] = await big.app.store.listAudit({ action: 'scep.pkioperation', limit: 1 });
      assert.equal(event?.outcome, 'denied');
      assert.match(event?.reason ?? '', /too large/i);
    } finally {
      await big.close();
    }
  });

  test('a disabled cipher is refused with badAlg', async () => {
    const aesOnly = await scepFixture({ 'scep-ciphers': ['aes'] });
    try {
      const caps = await aesOnly.server.inject({ method: 'GET', url: '/scep?operation=GetCACaps' });
      assert.doesNotMatch(caps.body, /DES3/);
      const { challenge, record } = await aesOnly.challenge();
      const rep = readCertRep(
        (await aesOnly.post(pkiMessage(alice, envelope(makeCsr(alice, { challenge }), aesOnly.ra, 'des3')))).rawPayload,
        alice,
        aesOnly.root,
      );
      assert.equal(rep.failInfo, '0');
      assert.equal((await aesOnly.app.store.getChallenge(record.id))?.consumedAt, null);
    } finally {
      await aesOnly.close();
    }
  });
});
