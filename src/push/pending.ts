import type { Store } from '../store/types.ts';

/**
 * A push CSR made here whose certificate has not been imported yet. Its key exists only sealed in the store: lose
 * track of it and Apple's certificate cannot be used, so the inventory and `push status` show it until the import
 * that matches it marks it fulfilled.
 */
export interface PendingPushRequest {
  id: string;
  subject: string;
  createdAt: Date;
  keyId: string;
  /** Whether the sealed key is still in the store (it must be, for the import to match it). */
  keySealed: boolean;
}

/** Unfulfilled push CSRs, newest first. */
export async function pendingPushRequests(store: Store): Promise<PendingPushRequest[]> {
  const requests = (await store.listCertificateRequests('push')).filter((r) => r.fulfilledBy === null);
  return Promise.all(
    requests.map(async (r) => ({
      id: r.id,
      subject: r.subject,
      createdAt: r.createdAt,
      keyId: r.keyId,
      keySealed: (await store.getSealedKey(r.keyId)) !== undefined,
    })),
  );
}

/** One line for `push status`: what is waiting, and the step that completes it. */
export function describePendingRequest(p: PendingPushRequest): string {
  const key = p.keySealed ? `key ${p.keyId} sealed` : `key ${p.keyId} MISSING: make a new CSR`;
  return `pending CSR ${p.id} created ${p.createdAt.toISOString()}, ${key}; awaiting Apple's signature: import the signed certificate with certmdm push import FILE`;
}
