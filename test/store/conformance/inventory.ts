import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { ConflictError, type NewCertificate } from '../../../src/store/types.ts';
import { day, certificate, type WithStore } from './support.ts';

/** InventoryStore: keys, certificates, dependants, replacement. */
export function inventoryConformance(withStore: WithStore): void {
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
}
