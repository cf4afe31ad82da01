import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { ChallengeRecord, Store } from '../store/types.ts';

/**
 * One-time SCEP challenge passwords: 16 hex digits of id, then 40 of secret. Hex only, because challengePassword
 * is often a PrintableString, which has no '_' or '/'. Only SHA-256 of the secret is stored.
 */
const CHALLENGE_PATTERN = /^([0-9a-f]{16})([0-9a-f]{40})$/;
const DUMMY_HASH = createHash('sha256').update('certmdm-no-such-challenge').digest();

function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

export async function mintChallenge(
  store: Store,
  clock: Clock,
  options: { ttlMs: number; purpose: string; enrollmentRef?: string | null; createdBy: string },
): Promise<{ challenge: string; record: ChallengeRecord }> {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(20).toString('hex');
  const now = clock();
  const record: ChallengeRecord = {
    id,
    secretHash: hashSecret(secret),
    purpose: options.purpose,
    enrollmentRef: options.enrollmentRef ?? null,
    createdBy: options.createdBy,
    createdAt: now,
    expiresAt: new Date(now.getTime() + options.ttlMs),
    consumedAt: null,
    certificateId: null,
  };
  await store.insertChallenge(record);
  return { challenge: id + secret, record };
}

export type ChallengeCheck = { ok: true; record: ChallengeRecord } | { ok: false; reason: string; challengeId?: string };

/** Checks a presented challenge without consuming it; consumption happens atomically with issuance. */
export async function checkChallenge(store: Store, presented: string | undefined, now: Date): Promise<ChallengeCheck> {
  if (!presented) return { ok: false, reason: 'no challenge password in the request' };
  const match = CHALLENGE_PATTERN.exec(presented.trim().toLowerCase());
  if (!match) return { ok: false, reason: 'challenge password is not one certmdm issued' };
  const [, id, secret] = match as unknown as [string, string, string];
  const record = await store.getChallenge(id);
  const equal = timingSafeEqual(hashSecret(secret), record?.secretHash ?? DUMMY_HASH);
  if (!record || !equal) return { ok: false, reason: 'wrong challenge password', challengeId: id };
  if (record.consumedAt) return { ok: false, reason: 'challenge password already used', challengeId: id };
  if (record.expiresAt <= now) return { ok: false, reason: 'challenge password expired', challengeId: id };
  return { ok: true, record };
}
