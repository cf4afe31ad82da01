import assert from 'node:assert/strict';
import { bindingPolicy } from '../../../src/mdm/binding.ts';
import { BindingRefused, ConflictError, type CertificateRecord } from '../../../src/store/types.ts';
import { day, decide, certificate, newChallenge, type WithStore } from './support.ts';

/** EnrollmentStore: enrollments and the binding rules of identity hardening. */
export function enrollmentConformance(withStore: WithStore): void {
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

  withStore("writes made for a device message hold only while its certificate is still the enrollment's", async (store) => {
    const at = new Date(Date.UTC(2026, 0, 1));
    const [old, next] = [certificate(), certificate({ servesEnrollment: 'DEV' })];
    await store.insertCertificates([old, next].map((c) => ({ certificate: c })));
    await store.authenticateEnrollment({ id: 'DEV', kind: 'device', certificateId: old.id, topic: 't', info: {}, now: at, decide });
    assert.equal(await store.updateEnrollment('DEV', { pushMagic: 'by-old' }, old.id), true);
    // The enrollment moves on to a renewed identity, and the old one is retired once the new one is seen.
    await store.authenticateEnrollment({ id: 'DEV', kind: 'device', certificateId: next.id, topic: 't', info: {}, now: at, decide });
    await store.promoteIdentity('DEV');
    const before = await store.getEnrollment('DEV');
    assert.equal(
      await store.updateEnrollment('DEV', { pushMagic: 'stale' }, old.id),
      false,
      'a message checked before the move writes nothing',
    );
    assert.equal(await store.checkOutEnrollment('DEV', at, old.id), false);
    assert.deepEqual(await store.getEnrollment('DEV'), before, 'nothing changed');
    assert.equal(await store.updateEnrollment('DEV', { pushMagic: 'by-new' }, next.id), true);
    assert.equal(await store.checkOutEnrollment('DEV', at, next.id), true);
    assert.equal((await store.getEnrollment('DEV'))?.status, 'checked-out');
  });

  withStore('identity epoch: moves with every change an identity is judged on, and with nothing else', async (store) => {
    const at = new Date(Date.UTC(2026, 0, 1));
    const epoch = () => store.identityEpoch();
    const moves = async (what: string, change: () => Promise<unknown>) => {
      const before = await epoch();
      await change();
      assert.ok((await epoch()) > before, `${what} moves the epoch`);
    };
    const stays = async (what: string, change: () => Promise<unknown>) => {
      const before = await epoch();
      await change();
      assert.equal(await epoch(), before, `${what} leaves the epoch`);
    };
    const a = certificate();
    const b = certificate({ servesEnrollment: 'UDID-E' });
    await stays('inserting certificates (nothing is remembered of a certificate not yet seen)', () =>
      store.insertCertificates([{ certificate: a }, { certificate: b }]),
    );
    await moves('an Authenticate (enrollment and binding)', () =>
      store.authenticateEnrollment({ id: 'UDID-E', kind: 'device', certificateId: a.id, topic: 't', info: {}, now: at, decide }),
    );
    await stays('a TokenUpdate', () => store.updateEnrollment('UDID-E', { pushToken: Buffer.from([1]), pushMagic: 'm', lastSeenAt: at }));
    await stays('last-seen times', () => store.touchEnrollments([{ id: 'UDID-E', at: new Date(at.getTime() + day) }]));
    await stays('a push token marked invalid', () => store.updateEnrollment('UDID-E', { pushTokenInvalidAt: at }));
    await moves('a renewal authenticating', () =>
      store.authenticateEnrollment({ id: 'UDID-E', kind: 'device', certificateId: b.id, topic: 't', info: {}, now: at, decide }),
    );
    await moves('the renewed identity promoted', () => store.promoteIdentity('UDID-E'));
    await moves('a revocation', () => store.setCertificateStatus(b.id, 'active', 'revoked'));
    await moves('a check-out', () => store.checkOutEnrollment('UDID-E', at));
  });
  withStore('last-seen times only move forward, many enrollments at once', async (store) => {
    const at = new Date(Date.UTC(2026, 0, 1));
    const [a, b] = [certificate(), certificate()];
    await store.insertCertificates([{ certificate: a }, { certificate: b }]);
    for (const [id, c] of [
      ['SEEN-A', a],
      ['SEEN-B', b],
    ] as const)
      await store.authenticateEnrollment({ id, kind: 'device', certificateId: c.id, topic: 't', info: {}, now: at, decide });
    const later = new Date(at.getTime() + day);
    await store.touchEnrollments([
      { id: 'SEEN-A', at: later },
      { id: 'SEEN-B', at: new Date(at.getTime() - day) },
      { id: 'NOT-ENROLLED', at: later },
    ]);
    assert.deepEqual((await store.getEnrollment('SEEN-A'))?.lastSeenAt, later);
    assert.deepEqual((await store.getEnrollment('SEEN-B'))?.lastSeenAt, at, 'an older time never overwrites a newer one');
    assert.equal(await store.getEnrollment('NOT-ENROLLED'), undefined);
    await store.touchEnrollments([]);
    // Said with a certificate that is no longer (or never was) the enrollment's identity: not recorded as seen.
    const muchLater = new Date(at.getTime() + 2 * day);
    await store.touchEnrollments([{ id: 'SEEN-A', at: muchLater, presentedBy: b.id }]);
    assert.deepEqual((await store.getEnrollment('SEEN-A'))?.lastSeenAt, later);
    await store.touchEnrollments([{ id: 'SEEN-A', at: muchLater, presentedBy: a.id }]);
    assert.deepEqual((await store.getEnrollment('SEEN-A'))?.lastSeenAt, muchLater);
  });
  withStore('check-in rhythm: sessions at least an hour apart, their typical (moving average) and longest gap', async (store) => {
    const at = new Date(Date.UTC(2026, 0, 1));
    const c = certificate();
    await store.insertCertificates([{ certificate: c }]);
    await store.authenticateEnrollment({ id: 'RHYTHM', kind: 'device', certificateId: c.id, topic: 't', info: {}, now: at, decide });
    assert.deepEqual((await store.getEnrollment('RHYTHM'))?.rhythm, { sessions: 1, typicalGapMs: null, longestGapMs: null });
    const hour = 3_600_000;
    const seen = async (offset: number) => store.touchEnrollments([{ id: 'RHYTHM', at: new Date(at.getTime() + offset) }]);
    await seen(5 * 60_000); // the same session: minutes later
    assert.deepEqual((await store.getEnrollment('RHYTHM'))?.rhythm, { sessions: 1, typicalGapMs: null, longestGapMs: null });
    await seen(5 * 60_000 + 4 * day); // four days later
    assert.deepEqual((await store.getEnrollment('RHYTHM'))?.rhythm, { sessions: 2, typicalGapMs: 4 * day, longestGapMs: 4 * day });
    await seen(5 * 60_000 + 4 * day + 30 * 60_000); // half an hour: same session
    await seen(5 * 60_000 + 4 * day + 30 * 60_000 + 8 * day); // eight days later
    assert.deepEqual((await store.getEnrollment('RHYTHM'))?.rhythm, { sessions: 3, typicalGapMs: 5 * day, longestGapMs: 8 * day });
    await seen(5 * 60_000 + 4 * day + 30 * 60_000 + 8 * day + hour); // exactly an hour: a new session
    const rhythm = (await store.getEnrollment('RHYTHM'))!.rhythm;
    assert.equal(rhythm.sessions, 4);
    assert.equal(rhythm.typicalGapMs, (3 * 5 * day + hour) / 4);
    assert.equal(rhythm.longestGapMs, 8 * day);
  });
}
