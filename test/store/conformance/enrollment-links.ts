import assert from 'node:assert/strict';
import { ConflictError } from '../../../src/store/types.ts';
import { day, certificate, newChallenge, type WithStore } from './support.ts';

/** EnrollmentLinkStore: one-time challenges (and the links and profiles made with them). */
export function enrollmentLinkConformance(withStore: WithStore): void {
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
}
