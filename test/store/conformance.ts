import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { bindingPolicy } from '../../src/mdm/binding.ts';
import {
  BindingRefused,
  ConflictError,
  deviceChannel,
  type CertificateRecord,
  type ChallengeRecord,
  type NewCertificate,
  type ProfileRecord,
  type Store,
} from '../../src/store/types.ts';

/**
 * The storage contract. Every backend runs this same suite; a backend that passes it can stand in for any other.
 */
export function storeConformance(backend: string, open: () => Promise<Store>): void {
  const day = 86_400_000;
  const decide = bindingPolicy({ permissiveReenrollment: false });
  const certificate = (overrides: Partial<CertificateRecord> = {}): CertificateRecord => ({
    id: `crt_${randomUUID()}`,
    role: 'device-identity',
    subject: 'CN=test',
    issuerId: null,
    serialHex: randomBytes(16).toString('hex'),
    fingerprintSha256: randomBytes(32).toString('hex'),
    notBefore: new Date(Date.UTC(2026, 0, 1)),
    notAfter: new Date(Date.UTC(2027, 0, 1)),
    status: 'active',
    keyId: null,
    der: randomBytes(64),
    createdAt: new Date(Date.UTC(2026, 0, 1, 12)),
    supersededBy: null,
    servesEnrollment: null,
    renewalOf: null,
    ...overrides,
  });

  const newChallenge = (overrides: Partial<ChallengeRecord> = {}): ChallengeRecord => ({
    id: randomBytes(8).toString('hex'),
    secretHash: randomBytes(32),
    purpose: 'scep',
    enrollmentRef: null,
    enrollmentId: null,
    createdBy: 'cli',
    createdAt: new Date(Date.UTC(2026, 0, 1)),
    expiresAt: new Date(Date.UTC(2026, 0, 2)),
    consumedAt: null,
    certificateId: null,
    ...overrides,
  });

  const withStore = (name: string, fn: (store: Store) => Promise<void>) =>
    test(`${backend}: ${name}`, async () => {
      const store = await open();
      try {
        await store.migrate();
        await fn(store);
      } finally {
        await store.close();
      }
    });

  withStore('migrations are numbered and idempotent', async (store) => {
    const version = await store.schemaVersion();
    assert.ok(version >= 1);
    await store.migrate();
    assert.equal(await store.schemaVersion(), version);
  });

  withStore('meta values are set once', async (store) => {
    assert.equal(await store.getMeta('k'), undefined);
    assert.equal(await store.setMetaIfAbsent('k', 'v1'), true);
    assert.equal(await store.setMetaIfAbsent('k', 'v2'), false);
    assert.equal(await store.getMeta('k'), 'v1');
  });

  withStore('certificates round-trip with their sealed key and dependants', async (store) => {
    const key = { id: `key_${randomUUID()}`, algorithm: 'rsa-2048', sealed: randomBytes(100), createdAt: new Date(Date.UTC(2026, 1, 1)) };
    const root = certificate({ role: 'root', keyId: key.id });
    await store.insertCertificates([{ certificate: root, key, dependants: [{ kind: 'service', ref: 'https-listener' }] }]);
    const back = await store.getCertificate(root.id);
    assert.deepEqual(back, root);
    assert.deepEqual(await store.getCertificateByFingerprint(root.fingerprintSha256.toUpperCase()), root);
    assert.deepEqual(await store.getSealedKey(key.id), key);
    assert.deepEqual(await store.listDependants(root.id), [{ certificateId: root.id, kind: 'service', ref: 'https-listener' }]);
    const child = certificate({ issuerId: root.id });
    await store.insertCertificates([{ certificate: child }]);
    assert.deepEqual(
      (await store.listIssuedBy(root.id)).map((c) => c.id),
      [child.id],
    );
  });

  withStore('a batch insert is all or nothing', async (store) => {
    const first = certificate();
    const duplicate = certificate({ fingerprintSha256: first.fingerprintSha256 });
    await assert.rejects(store.insertCertificates([{ certificate: first }, { certificate: duplicate }]));
    assert.equal(await store.getCertificate(first.id), undefined);
    assert.deepEqual(await store.listCertificates(), []);
  });

  withStore('a certificate cannot name an issuer that does not exist', async (store) => {
    await assert.rejects(store.insertCertificates([{ certificate: certificate({ issuerId: 'crt_missing' }) }]));
    assert.deepEqual(await store.listCertificates(), []);
  });

  withStore('listing is soonest expiry first and filters by role and status', async (store) => {
    const base = Date.UTC(2027, 0, 1);
    const late = certificate({ role: 'tls', notAfter: new Date(base + 30 * day) });
    const soon = certificate({ role: 'tls', notAfter: new Date(base + 1 * day) });
    const other = certificate({ role: 'root', notAfter: new Date(base + 10 * day) });
    await store.insertCertificates([{ certificate: late }, { certificate: soon }, { certificate: other }]);
    assert.deepEqual(
      (await store.listCertificates()).map((c) => c.id),
      [soon.id, other.id, late.id],
    );
    assert.deepEqual(
      (await store.listCertificates({ role: 'tls' })).map((c) => c.id),
      [soon.id, late.id],
    );
    assert.equal(await store.setCertificateStatus(soon.id, 'active', 'revoked'), true);
    assert.equal(await store.setCertificateStatus(soon.id, 'active', 'revoked'), false, 'status change is conditional');
    assert.deepEqual(
      (await store.listCertificates({ role: 'tls', status: 'active' })).map((c) => c.id),
      [late.id],
    );
  });

  withStore('replacement supersedes atomically and refuses a stale predecessor', async (store) => {
    const old = certificate({ role: 'tls' });
    await store.insertCertificates([{ certificate: old }]);
    const next: NewCertificate = { certificate: certificate({ role: 'tls' }) };
    await store.replaceCertificates(next, [old.id]);
    const after = await store.getCertificate(old.id);
    assert.equal(after?.status, 'superseded');
    assert.equal(after?.supersededBy, next.certificate.id);

    const racer: NewCertificate = { certificate: certificate({ role: 'tls' }) };
    await assert.rejects(store.replaceCertificates(racer, [old.id]), ConflictError);
    assert.equal(await store.getCertificate(racer.certificate.id), undefined, 'the losing replacement left nothing behind');
  });

  withStore('a challenge is consumed once, atomically with the certificate it produced', async (store) => {
    const at = new Date(Date.UTC(2026, 0, 1));
    const challenge = newChallenge({ enrollmentRef: 'profile:1', createdAt: at, expiresAt: new Date(at.getTime() + day) });
    await store.insertChallenge(challenge);
    assert.deepEqual(await store.getChallenge(challenge.id), challenge);
    const first = { certificate: certificate() };
    await store.insertCertificateConsumingChallenge(first, challenge.id, new Date(at.getTime() + 1000));
    const consumed = await store.getChallenge(challenge.id);
    assert.equal(consumed?.certificateId, first.certificate.id);
    assert.deepEqual(consumed?.consumedAt, new Date(at.getTime() + 1000));
    const second = { certificate: certificate() };
    await assert.rejects(store.insertCertificateConsumingChallenge(second, challenge.id, new Date(at.getTime() + 2000)), ConflictError);
    assert.equal(await store.getCertificate(second.certificate.id), undefined, 'the loser left no certificate');
  });

  withStore('an expired challenge cannot be consumed', async (store) => {
    const at = new Date(Date.UTC(2026, 0, 1));
    const challenge = newChallenge({ createdAt: at, expiresAt: new Date(at.getTime() + 1000) });
    await store.insertChallenge(challenge);
    const entry = { certificate: certificate() };
    await assert.rejects(store.insertCertificateConsumingChallenge(entry, challenge.id, new Date(at.getTime() + 1000)), ConflictError);
    assert.equal(await store.getCertificate(entry.certificate.id), undefined);
    assert.equal((await store.getChallenge(challenge.id))?.consumedAt, null);
  });

  withStore('enrollments: a certificate binds to one enrollment; renewal keeps the old identity until promoted', async (store) => {
    const a = certificate();
    const b = certificate({ servesEnrollment: 'UDID-1' });
    await store.insertCertificates([{ certificate: a }, { certificate: b }]);
    const at = new Date(Date.UTC(2026, 0, 1));
    assert.deepEqual(
      await store.authenticateEnrollment({
        id: 'UDID-1',
        kind: 'device',
        certificateId: a.id,
        topic: 't',
        info: { DeviceName: 'x' },
        now: at,
        decide,
      }),
      { fresh: true, renewedFrom: null },
    );
    await assert.rejects(
      store.authenticateEnrollment({ id: 'UDID-2', kind: 'device', certificateId: a.id, topic: 't', info: {}, now: at, decide }),
      (err: unknown) => err instanceof BindingRefused && err.reason === 'bound-to-another-enrollment',
    );
    assert.equal(await store.getEnrollment('UDID-2'), undefined, 'the refused Authenticate left nothing');
    assert.equal(await store.getBinding(a.id), 'UDID-1');
    assert.deepEqual(
      await store.authenticateEnrollment({ id: 'UDID-1', kind: 'device', certificateId: b.id, topic: 't', info: {}, now: at, decide }),
      { fresh: false, renewedFrom: a.id },
    );
    const renewing = await store.getEnrollment('UDID-1');
    assert.equal(renewing?.identityCertificateId, b.id);
    assert.equal(renewing?.previousIdentityCertificateId, a.id);
    assert.equal(await store.promoteIdentity('UDID-1'), a.id);
    assert.equal((await store.getCertificate(a.id))?.status, 'superseded');
    assert.equal((await store.getCertificate(a.id))?.supersededBy, b.id);
    assert.equal((await store.getEnrollment('UDID-1'))?.previousIdentityCertificateId, null);
    await store.updateEnrollment('UDID-1', { pushToken: Buffer.from([1, 2]), pushMagic: 'm' });
    assert.deepEqual((await store.getEnrollment('UDID-1'))?.pushToken, Buffer.from([1, 2]));
  });

  withStore('enrolled devices in one read: identity validity, installed anchors from every source, renewal state', async (store) => {
    const at = new Date(Date.UTC(2026, 0, 1));
    const [rootA, rootB] = [certificate({ role: 'root' }), certificate({ role: 'root' })];
    const scepIdentity = certificate();
    const pkcs12Identity = certificate({ notAfter: new Date(Date.UTC(2026, 6, 1)) });
    const gone = certificate();
    await store.insertCertificates([rootA, rootB, gone].map((c) => ({ certificate: c })));
    const profile = (
      id: string,
      kind: 'enrollment' | 'trust',
      certificates: ProfileRecord['certificates'],
      challengeId: string | null = null,
    ) => ({
      id,
      kind,
      payloadIdentifier: `com.example.${kind}`,
      payloadUuid: randomUUID(),
      enrollmentRef: null,
      identityKind: null,
      challengeId,
      signerCertificateId: null,
      createdBy: 'test',
      createdAt: at,
      effectiveExpiry: new Date(at.getTime() + 100 * day),
      certificates,
    });
    // SCEP: the profile's challenge was consumed by the identity's issuance.
    const challenge = newChallenge({
      purpose: 'enrollment-profile',
      createdBy: 'test',
      createdAt: at,
      expiresAt: new Date(at.getTime() + day),
    });
    await store.insertProfile({
      profile: profile('p-scep', 'enrollment', [{ certificateId: rootA.id, role: 'anchor' }], challenge.id),
      challenge,
    });
    await store.insertCertificateConsumingChallenge({ certificate: scepIdentity }, challenge.id, at);
    // PKCS#12: the identity is in the profile.
    await store.insertProfile({
      profile: profile('p-p12', 'enrollment', [
        { certificateId: rootA.id, role: 'anchor' },
        { certificateId: pkcs12Identity.id, role: 'identity' },
      ]),
      certificates: [{ certificate: pkcs12Identity }],
    });
    await store.insertProfile({ profile: profile('p-trust', 'trust', [{ certificateId: rootB.id, role: 'anchor' }]) });
    for (const [id, c] of [
      ['SCEP-DEV', scepIdentity],
      ['P12-DEV', pkcs12Identity],
      ['GONE-DEV', gone],
    ] as const)
      await store.authenticateEnrollment({ id, kind: 'device', certificateId: c.id, topic: 't', info: {}, now: at, decide });
    await store.checkOutEnrollment('GONE-DEV', at);
    // The trust profile reaches both devices; only SCEP-DEV acknowledges it.
    const command = {
      uuid: 'trust-cmd',
      requestType: 'InstallProfile',
      body: Buffer.from('x'),
      priority: 60,
      createdBy: 'test',
      createdAt: at,
    };
    await store.enqueueCommand(command, [deviceChannel('SCEP-DEV'), deviceChannel('P12-DEV')]);
    for (const id of ['SCEP-DEV', 'P12-DEV'])
      await store.insertProfileDelivery({ commandUuid: 'trust-cmd', enrollmentId: id, profileId: 'p-trust', createdAt: at });
    await store.recordCommandResult(deviceChannel('SCEP-DEV'), 'trust-cmd', 'acknowledged', Buffer.from('ok'), at);
    await store.recordCommandResult(deviceChannel('P12-DEV'), 'trust-cmd', 'not-now', Buffer.from('busy'), at);
    await store.markRenewalStarted('P12-DEV', new Date(at.getTime() + day), 'renewal-cmd');

    const devices = await store.listEnrolledDevices();
    assert.deepEqual(
      devices.map((d) => d.id),
      ['P12-DEV', 'SCEP-DEV'].sort(),
      'checked-out enrollments depend on nothing',
    );
    const byId = new Map(devices.map((d) => [d.id, d]));
    assert.deepEqual(byId.get('SCEP-DEV')!.anchors, [rootA.id, rootB.id].sort());
    assert.deepEqual(byId.get('P12-DEV')!.anchors, [rootA.id]);
    // Only the identity's own enrollment profile pins roots for ServerURL: the acknowledged trust profile's root is not among them.
    assert.deepEqual(byId.get('SCEP-DEV')!.profileAnchors, [rootA.id]);
    assert.deepEqual(byId.get('P12-DEV')!.profileAnchors, [rootA.id]);
    assert.deepEqual(byId.get('P12-DEV')!.identity, {
      id: pkcs12Identity.id,
      notBefore: pkcs12Identity.notBefore,
      notAfter: pkcs12Identity.notAfter,
    });
    assert.deepEqual(byId.get('P12-DEV')!.renewalStartedAt, new Date(at.getTime() + day));
    assert.equal(byId.get('SCEP-DEV')!.renewalStartedAt, null);
    assert.deepEqual(byId.get('SCEP-DEV')!.lastSeenAt, at);
    // The bulk read agrees with the per-device one.
    for (const d of devices) {
      const enrollment = (await store.getEnrollment(d.id))!;
      assert.deepEqual(await store.installedAnchors(d.id, enrollment.identityCertificateId), d.anchors);
    }
    // Only devices whose identity entered its last 40% by then: P12-DEV's 181 days open on 20 April, SCEP-DEV's 365 on 8 August.
    const due = async (at: Date) => store.listEnrolledDevices({ renewalWindowOpenBy: { at, share: 0.4 } });
    assert.deepEqual(await due(new Date(Date.UTC(2026, 3, 19))), []);
    assert.deepEqual(await due(new Date(Date.UTC(2026, 3, 21))), [byId.get('P12-DEV')], 'the same facts as the full read');
    assert.deepEqual(await due(new Date(Date.UTC(2026, 7, 9))), devices);
  });

  withStore('binding: an identity serves only the enrollment it was minted for; refusals change nothing', async (store) => {
    const at = new Date(Date.UTC(2026, 0, 1));
    const auth = (id: string, c: CertificateRecord) =>
      store.authenticateEnrollment({ id, kind: 'device', certificateId: c.id, topic: 't', info: { DeviceName: id }, now: at, decide });
    const refused = (reason: string) => (err: unknown) => err instanceof BindingRefused && err.reason === reason;
    const victim = certificate();
    const attacker = certificate();
    const forOther = certificate({ servesEnrollment: 'OTHER' });
    const renewal = certificate({ servesEnrollment: 'VICTIM', createdAt: new Date(at.getTime() + 2000) });
    const staleRenewal = certificate({ servesEnrollment: 'VICTIM', createdAt: new Date(at.getTime() + 1000) });
    await store.insertCertificates([victim, attacker, forOther, renewal, staleRenewal].map((certificate) => ({ certificate })));
    await auth('VICTIM', victim);
    await store.updateEnrollment('VICTIM', { pushMagic: 'victim-magic' });
    const before = await store.getEnrollment('VICTIM');

    await assert.rejects(auth('VICTIM', attacker), refused('enrollment-exists'), 'a plain identity cannot take over an enrolled UDID');
    await assert.rejects(auth('VICTIM', forOther), refused('minted-for-another-enrollment'));
    assert.deepEqual(await store.getEnrollment('VICTIM'), before, 'refused Authenticates changed nothing');
    assert.equal(await store.getBinding(attacker.id), undefined);
    assert.equal((await store.getCertificate(attacker.id))?.status, 'active');

    // Challenges minted for VICTIM before the identity that takes over (a renewal profile sent to the replaced one).
    const staleChallenge = newChallenge({
      enrollmentId: 'VICTIM',
      createdAt: new Date(at.getTime() + 1000),
      expiresAt: new Date(at.getTime() + 9 * day),
    });
    const laterChallenge = newChallenge({
      enrollmentId: 'VICTIM',
      createdAt: new Date(at.getTime() + 3000),
      expiresAt: new Date(at.getTime() + 9 * day),
    });
    await store.insertChallenge(staleChallenge);
    await store.insertChallenge(laterChallenge);
    // The identity minted for VICTIM takes over; an older unused one minted for it is retired with the binding move.
    assert.deepEqual(await auth('VICTIM', renewal), { fresh: false, renewedFrom: victim.id });
    assert.ok((await store.getChallenge(staleChallenge.id))!.expiresAt <= at, 'an older challenge for the enrollment no longer issues');
    assert.deepEqual(await store.getChallenge(laterChallenge.id), laterChallenge, 'a later one is left as it is');
    assert.equal((await store.getCertificate(staleRenewal.id))?.status, 'superseded');
    await assert.rejects(auth('VICTIM', staleRenewal), refused('identity-retired'));
    // The renewed-away identity may not Authenticate its way back to current (it stays accepted only until promoted).
    await assert.rejects(auth('VICTIM', victim), refused('identity-retired'));
    assert.equal((await store.getEnrollment('VICTIM'))?.identityCertificateId, renewal.id);
    await store.promoteIdentity('VICTIM');
    await assert.rejects(auth('VICTIM', victim), refused('identity-retired'), 'a superseded identity never becomes current again');

    // A plain identity may start a new enrollment, and the permissive option restores other servers' behaviour.
    assert.deepEqual(await auth('NEW', attacker), { fresh: true, renewedFrom: null });
    const loose = certificate();
    await store.insertCertificates([{ certificate: loose }]);
    assert.deepEqual(
      await store.authenticateEnrollment({
        id: 'VICTIM',
        kind: 'device',
        certificateId: loose.id,
        topic: 't',
        info: {},
        now: at,
        decide: bindingPolicy({ permissiveReenrollment: true }),
      }),
      { fresh: false, renewedFrom: renewal.id },
    );
  });

  withStore('binding: a fresh enrollment over an old one leaves nothing minted for the old identity usable', async (store) => {
    const at = new Date(Date.UTC(2026, 0, 1));
    const auth = (id: string, c: CertificateRecord) =>
      store.authenticateEnrollment({ id, kind: 'device', certificateId: c.id, topic: 't', info: {}, now: at, decide });
    const refused = (reason: string) => (err: unknown) => err instanceof BindingRefused && err.reason === reason;
    const old = certificate();
    await store.insertCertificates([{ certificate: old }]);
    await auth('D', old);
    // Kept unused by whoever holds `old`: its RenewalReq identity, a renewal profile's identity and its challenge.
    const renewed = certificate({ servesEnrollment: 'D', renewalOf: old.id });
    const profileIdentity = certificate({ servesEnrollment: 'D', createdAt: new Date(Date.UTC(2026, 0, 2)) });
    const challenge = newChallenge({ enrollmentId: 'D', expiresAt: new Date(Date.UTC(2026, 0, 9)) });
    const elsewhere = newChallenge({ enrollmentId: 'E', expiresAt: new Date(Date.UTC(2026, 0, 9)) });
    await store.insertCertificates([{ certificate: renewed }, { certificate: profileIdentity }]);
    await store.insertChallenge(challenge);
    await store.insertChallenge(elsewhere);
    await store.checkOutEnrollment('D', at);
    const owner = certificate();
    await store.insertCertificates([{ certificate: owner }]);
    assert.deepEqual(await auth('D', owner), { fresh: true, renewedFrom: null });
    for (const c of [renewed, profileIdentity]) {
      assert.equal((await store.getCertificate(c.id))?.status, 'superseded');
      await assert.rejects(auth('D', c), refused('identity-retired'));
    }
    assert.ok((await store.getChallenge(challenge.id))!.expiresAt <= at, "the old identity's challenge no longer issues");
    assert.deepEqual(await store.getChallenge(elsewhere.id), elsewhere, "another enrollment's challenge is untouched");
    assert.equal((await store.getEnrollment('D'))?.identityCertificateId, owner.id);

    // A RenewalReq identity speaks only while the identity it renews is current, even if nothing retired it.
    const other = certificate();
    await store.insertCertificates([{ certificate: other }]);
    await auth('F', other);
    const orphan = certificate({ servesEnrollment: 'F', renewalOf: owner.id });
    await store.insertCertificates([{ certificate: orphan }]);
    await assert.rejects(auth('F', orphan), refused('identity-retired'));
    const child = certificate({ servesEnrollment: 'F', renewalOf: other.id });
    await store.insertCertificates([{ certificate: child }]);
    assert.deepEqual(await auth('F', child), { fresh: false, renewedFrom: other.id });
  });

  withStore('binding: one renewal per identity', async (store) => {
    const signer = certificate();
    await store.insertCertificates([{ certificate: signer }]);
    await store.insertCertificates([{ certificate: certificate({ renewalOf: signer.id, servesEnrollment: 'D' }) }]);
    const second = certificate({ renewalOf: signer.id, servesEnrollment: 'D' });
    await assert.rejects(store.insertCertificates([{ certificate: second }]), ConflictError);
    assert.equal(await store.getCertificate(second.id), undefined);
  });

  withStore('command queue: priority then FIFO, NotNow skipped until revived, results once, clean after CheckOut', async (store) => {
    const c = certificate();
    await store.insertCertificates([{ certificate: c }]);
    const at = new Date(Date.UTC(2026, 0, 1));
    await store.authenticateEnrollment({ id: 'D', kind: 'device', certificateId: c.id, topic: 't', info: {}, now: at, decide });
    const command = (uuid: string, priority: number) => ({
      uuid,
      requestType: 'ProfileList',
      body: Buffer.from(uuid),
      priority,
      createdBy: 'test',
      createdAt: at,
    });
    const D = deviceChannel('D');
    const user = { enrollmentId: 'D', userId: 'user' };
    await store.upsertUserChannel({ ...user, userShortName: null, pushToken: null, pushMagic: null, now: at });
    await store.enqueueCommand(command('low', 0), [D]);
    await store.enqueueCommand(command('high', 5), [D, user]);
    await store.enqueueCommand(command('low2', 0), [D]);
    assert.equal((await store.nextCommand(D, { reviveNotNow: true, now: at }))?.commandUuid, 'high');
    assert.equal(await store.recordCommandResult(D, 'high', 'not-now', Buffer.from('r'), at), true);
    assert.equal((await store.nextCommand(D, { reviveNotNow: false, now: at }))?.commandUuid, 'low');
    assert.equal(await store.recordCommandResult(D, 'low', 'acknowledged', Buffer.from('ok'), at), true);
    assert.equal(await store.recordCommandResult(D, 'low', 'acknowledged', Buffer.from('again'), at), false, 'a result is stored once');
    assert.equal((await store.nextCommand(D, { reviveNotNow: false, now: at }))?.commandUuid, 'low2');
    assert.equal(await store.recordCommandResult(D, 'low2', 'error', Buffer.from('e'), at), true);
    assert.equal(await store.nextCommand(D, { reviveNotNow: false, now: at }), undefined);
    assert.equal((await store.nextCommand(D, { reviveNotNow: true, now: at }))?.commandUuid, 'high');
    assert.deepEqual(
      (await store.listQueue(D)).map((q) => [q.commandUuid, q.status]),
      [
        ['low', 'acknowledged'],
        ['high', 'queued'],
        ['low2', 'error'],
      ],
    );
    await store.checkOutEnrollment('D', at);
    await store.authenticateEnrollment({ id: 'D', kind: 'device', certificateId: c.id, topic: 't', info: {}, now: at, decide });
    assert.deepEqual(await store.listQueue(D), [], 'a fresh enrollment after CheckOut starts clean');
    assert.deepEqual(await store.listQueue(user), [], "and so do its users' channels");
  });

  withStore(
    'channels are keyed by (enrollment, user): a device named "<id>:<user>" shares nothing with that user channel',
    async (store) => {
      const at = new Date(Date.UTC(2026, 0, 1));
      const [victimCert, attackerCert] = [certificate(), certificate()];
      await store.insertCertificates([{ certificate: victimCert }, { certificate: attackerCert }]);
      await store.authenticateEnrollment({ id: 'V', kind: 'device', certificateId: victimCert.id, topic: 't', info: {}, now: at, decide });
      await store.authenticateEnrollment({
        id: 'V:U',
        kind: 'device',
        certificateId: attackerCert.id,
        topic: 't',
        info: {},
        now: at,
        decide,
      });
      const user = { enrollmentId: 'V', userId: 'U' };
      const attacker = deviceChannel('V:U');
      await store.upsertUserChannel({ ...user, userShortName: 'u', pushToken: Buffer.from('user-token'), pushMagic: 'm', now: at });
      const command = (uuid: string) => ({
        uuid,
        requestType: 'ProfileList',
        body: Buffer.from(uuid),
        priority: 0,
        createdBy: 'test',
        createdAt: at,
      });
      await store.enqueueCommand(command('for-user'), [user]);
      await store.enqueueCommand(command('for-attacker'), [attacker]);

      assert.equal((await store.nextCommand(attacker, { reviveNotNow: true, now: at }))?.commandUuid, 'for-attacker');
      assert.equal(await store.recordCommandResult(attacker, 'for-user', 'acknowledged', Buffer.from('x'), at), false);
      assert.deepEqual(
        (await store.listQueue(user)).map((q) => [q.commandUuid, q.status, q.channel]),
        [['for-user', 'queued', user]],
      );
      assert.equal(await store.getUserChannel('V:U', 'U'), undefined);
      assert.equal(await store.getUserChannel('V', 'U:x'), undefined);
      await store.markUserChannelTokenInvalid('V:U', 'U', at);
      assert.equal((await store.getUserChannel('V', 'U'))?.pushTokenInvalidAt, null, 'another enrollment cannot mark this user channel');
      assert.equal((await store.nextCommand(user, { reviveNotNow: true, now: at }))?.commandUuid, 'for-user');
      assert.equal(await store.recordCommandResult(user, 'for-user', 'acknowledged', Buffer.from('ok'), at), true);
      assert.deepEqual(
        (await store.listQueue(attacker)).map((q) => [q.commandUuid, q.status, q.channel]),
        [['for-attacker', 'queued', attacker]],
      );
      assert.deepEqual(await store.listQueue(deviceChannel('V')), [], "the victim's device channel has neither");
    },
  );

  withStore("a fresh enrollment after CheckOut empties its own device and user channels, never another enrollment's", async (store) => {
    const at = new Date(Date.UTC(2026, 0, 1));
    const ids = ['a', 'a:b', 'a_', 'a%'];
    const certs = new Map(ids.map((id) => [id, certificate()]));
    await store.insertCertificates([...certs.values()].map((c) => ({ certificate: c })));
    for (const id of ids)
      await store.authenticateEnrollment({ id, kind: 'device', certificateId: certs.get(id)!.id, topic: 't', info: {}, now: at, decide });
    const channels = [
      deviceChannel('a'),
      { enrollmentId: 'a', userId: 'b' },
      { enrollmentId: 'a', userId: 'b:c' },
      deviceChannel('a:b'),
      { enrollmentId: 'a:b', userId: 'c' },
      deviceChannel('a_'),
      deviceChannel('a%'),
    ];
    for (const c of channels.filter((c) => c.userId !== null))
      await store.upsertUserChannel({
        enrollmentId: c.enrollmentId,
        userId: c.userId!,
        userShortName: null,
        pushToken: null,
        pushMagic: null,
        now: at,
      });
    for (const [i, c] of channels.entries())
      await store.enqueueCommand(
        { uuid: `cmd-${i}`, requestType: 'ProfileList', body: Buffer.from('x'), priority: 0, createdBy: 'test', createdAt: at },
        [c],
      );
    const queues = async () => Promise.all(channels.map(async (c) => (await store.listQueue(c)).map((q) => q.commandUuid)));
    const userChannels = async () =>
      Promise.all(
        channels.filter((c) => c.userId !== null).map(async (c) => Boolean(await store.getUserChannel(c.enrollmentId, c.userId!))),
      );

    await store.checkOutEnrollment('a:b', at);
    await store.authenticateEnrollment({
      id: 'a:b',
      kind: 'device',
      certificateId: certs.get('a:b')!.id,
      topic: 't',
      info: {},
      now: at,
      decide,
    });
    assert.deepEqual(
      await queues(),
      [['cmd-0'], ['cmd-1'], ['cmd-2'], [], [], ['cmd-5'], ['cmd-6']],
      "re-enrolling 'a:b' empties only its queues",
    );
    assert.deepEqual(await userChannels(), [true, true, false]);

    await store.checkOutEnrollment('a', at);
    await store.authenticateEnrollment({
      id: 'a',
      kind: 'device',
      certificateId: certs.get('a')!.id,
      topic: 't',
      info: {},
      now: at,
      decide,
    });
    assert.deepEqual(await queues(), [[], [], [], [], [], ['cmd-5'], ['cmd-6']], "re-enrolling 'a' empties only its queues");
    assert.deepEqual(await userChannels(), [false, false, false]);
  });

  withStore('command bodies: a UUID once, erased when answered on every channel or when their secrets expire', async (store) => {
    const c = certificate();
    await store.insertCertificates([{ certificate: c }]);
    const at = new Date(Date.UTC(2026, 0, 1));
    await store.authenticateEnrollment({ id: 'E', kind: 'device', certificateId: c.id, topic: 't', info: {}, now: at, decide });
    const command = (uuid: string, secretsExpireAt: Date | null = null) => ({
      uuid,
      requestType: 'InstallProfile',
      body: Buffer.from(`sealed ${uuid}`),
      priority: 0,
      createdBy: 'test',
      createdAt: at,
      sealed: true,
      secretsExpireAt,
    });
    await store.enqueueCommand(command('two-channels'), [deviceChannel('E'), { enrollmentId: 'E', userId: 'user' }]);
    await assert.rejects(store.enqueueCommand(command('two-channels'), [deviceChannel('E')]), ConflictError, 'a UUID names one command');
    await assert.rejects(store.enqueueCommand(command('same-channel-twice'), [deviceChannel('E'), deviceChannel('E')]), ConflictError);
    assert.equal(await store.getCommand('same-channel-twice'), undefined, 'a refused enqueue stores nothing');
    assert.equal((await store.listQueue(deviceChannel('E'))).length, 1);

    const next = await store.nextCommand(deviceChannel('E'), { reviveNotNow: false, now: at });
    assert.deepEqual([next?.commandUuid, next?.sealed, next?.body.toString()], ['two-channels', true, 'sealed two-channels']);
    await store.recordCommandResult(deviceChannel('E'), 'two-channels', 'not-now', Buffer.from('r'), at);
    await store.recordCommandResult({ enrollmentId: 'E', userId: 'user' }, 'two-channels', 'acknowledged', Buffer.from('r'), at);
    assert.equal((await store.getCommand('two-channels'))?.body.toString(), 'sealed two-channels', 'still pending on one channel');
    await store.nextCommand(deviceChannel('E'), { reviveNotNow: true, now: at });
    await store.recordCommandResult(deviceChannel('E'), 'two-channels', 'error', Buffer.from('r'), at);
    const answered = await store.getCommand('two-channels');
    assert.deepEqual([answered?.body.length, answered?.bodyErasedAt], [0, at]);

    const expiry = new Date(at.getTime() + day);
    await store.enqueueCommand(command('expiring', expiry), [deviceChannel('E')]);
    assert.equal((await store.nextCommand(deviceChannel('E'), { reviveNotNow: false, now: at }))?.commandUuid, 'expiring');
    assert.equal(
      await store.nextCommand(deviceChannel('E'), { reviveNotNow: false, now: expiry }),
      undefined,
      'not delivered once expired',
    );
    assert.deepEqual(await store.eraseExpiredCommandBodies(at), []);
    assert.deepEqual(await store.eraseExpiredCommandBodies(expiry), ['expiring']);
    assert.deepEqual(await store.eraseExpiredCommandBodies(expiry), [], 'once');
    assert.equal((await store.getCommand('expiring'))?.body.length, 0);
    assert.equal((await store.listQueue(deviceChannel('E'))).find((q) => q.commandUuid === 'expiring')?.status, 'expired');

    await store.enqueueCommand(command('withdrawn'), [deviceChannel('E')]);
    assert.deepEqual(
      await store.eraseCommandBodies(['withdrawn', 'expiring', 'no-such'], expiry),
      ['withdrawn'],
      'only bodies not yet erased',
    );
    assert.equal(
      await store.nextCommand(deviceChannel('E'), { reviveNotNow: false, now: at }),
      undefined,
      'a withdrawn command is not delivered',
    );
    assert.equal((await store.listQueue(deviceChannel('E'))).find((q) => q.commandUuid === 'withdrawn')?.status, 'expired');
  });

  withStore('meta: set replaces, set-if-absent does not', async (store) => {
    assert.equal(await store.setMetaIfAbsent('k', 'a'), true);
    assert.equal(await store.setMetaIfAbsent('k', 'b'), false);
    await store.setMeta('k', 'c');
    assert.equal(await store.getMeta('k'), 'c');
  });

  withStore('API tokens: lookup, touch, revoke once', async (store) => {
    const token = {
      id: randomBytes(8).toString('hex'),
      name: 'ops',
      secretHash: randomBytes(32),
      createdAt: new Date(Date.UTC(2026, 0, 1)),
      lastUsedAt: null,
      revokedAt: null,
    };
    await store.insertApiToken(token);
    assert.deepEqual(await store.getApiToken(token.id), token);
    const at = new Date(Date.UTC(2026, 0, 2));
    await store.touchApiToken(token.id, at);
    assert.deepEqual((await store.getApiToken(token.id))?.lastUsedAt, at);
    assert.equal(await store.revokeApiToken(token.id, at), true);
    assert.equal(await store.revokeApiToken(token.id, at), false);
    assert.deepEqual(
      (await store.listApiTokens()).map((t) => t.revokedAt),
      [at],
    );
  });

  withStore('audit log is append-only, newest first, filterable', async (store) => {
    await store.appendAudit({ at: new Date(1000), actor: 'cli', action: 'a', outcome: 'ok' });
    await store.appendAudit({
      at: new Date(2000),
      actor: 'ip:127.0.0.1',
      action: 'b',
      outcome: 'denied',
      reason: 'no token',
      detail: { n: 1 },
    });
    const all = await store.listAudit();
    assert.deepEqual(
      all.map((e) => e.action),
      ['b', 'a'],
    );
    assert.deepEqual(all[0]?.detail, { n: 1 });
    assert.equal(all[0]?.reason, 'no token');
    assert.deepEqual(
      (await store.listAudit({ action: 'a' })).map((e) => e.actor),
      ['cli'],
    );
    assert.equal((await store.listAudit({ limit: 1 })).length, 1);
  });
}
