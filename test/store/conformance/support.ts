import { randomBytes, randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { bindingPolicy } from '../../../src/mdm/binding.ts';
import type { CertificateRecord, ChallengeRecord, Store } from '../../../src/store/types.ts';

/** Declares one conformance test: a fresh, migrated store of the backend under test, closed after. */
export type WithStore = (name: string, fn: (store: Store) => Promise<void>) => void;

export function withStoreOf(backend: string, concern: string, open: () => Promise<Store>): WithStore {
  return (name, fn) =>
    test(`${backend}: ${concern}: ${name}`, async () => {
      const store = await open();
      try {
        await store.migrate();
        await fn(store);
      } finally {
        await store.close();
      }
    });
}

export const day = 86_400_000;
export const decide = bindingPolicy({ permissiveReenrollment: false });
export const certificate = (overrides: Partial<CertificateRecord> = {}): CertificateRecord => ({
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

export const newChallenge = (overrides: Partial<ChallengeRecord> = {}): ChallengeRecord => ({
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
