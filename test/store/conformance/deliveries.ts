import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { deviceChannel, type ProfileRecord } from '../../../src/store/types.ts';
import { day, decide, certificate, newChallenge, type WithStore } from './support.ts';

/** DeliveryStore: profile deliveries and the facts the lifecycle planner reads. */
export function deliveryConformance(withStore: WithStore): void {
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
}
