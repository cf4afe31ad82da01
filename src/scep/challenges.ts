import { randomBytes } from 'node:crypto';
import { mintSecret, parseSecret, secretMatches } from '../admin/secrets.ts';
import type { Clock } from '../clock.ts';
import type { ChallengeRecord, Store } from '../store/types.ts';

export interface ChallengeOptions {
  ttlMs: number;
  purpose: string;
  /** The subject CN of the identity it yields; a fresh reference when not given. */
  enrollmentRef?: string | null;
  /** The enrolled device whose enrollment the identity may take over (renewal, re-enrollment); else a new device only. */
  enrollmentId?: string | null;
  createdBy: string;
}

export const ENROLLMENT_REF_RULE = 'an enrollment reference is 1 to 64 printable characters';

/** An administrator's enrollment reference becomes an identity's CN: printable, no control characters, CN-sized. */
export function isEnrollmentRef(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 64 && !/[\u0000-\u001f\u007f-\u009f]/.test(value);
}

/** A new enrollment reference: the CN of the identities one enrollment's profiles yield. */
export function newEnrollmentRef(): string {
  return `enr-${randomBytes(8).toString('hex')}`;
}

/** A new one-time SCEP challenge, not yet stored (a profile stores it with itself). See admin/secrets.ts. */
export function newChallenge(now: Date, options: ChallengeOptions): { challenge: string; record: ChallengeRecord } {
  const { id, text, secretHash } = mintSecret();
  const record: ChallengeRecord = {
    id,
    secretHash,
    purpose: options.purpose,
    enrollmentRef: options.enrollmentRef ?? newEnrollmentRef(),
    enrollmentId: options.enrollmentId ?? null,
    createdBy: options.createdBy,
    createdAt: now,
    expiresAt: new Date(now.getTime() + options.ttlMs),
    consumedAt: null,
    certificateId: null,
  };
  return { challenge: text, record };
}

/** Mints and stores a challenge on its own (CLI, admin API). */
export async function mintChallenge(
  store: Store,
  clock: Clock,
  options: ChallengeOptions,
): Promise<{ challenge: string; record: ChallengeRecord }> {
  const minted = newChallenge(clock(), options);
  await store.insertChallenge(minted.record);
  return minted;
}

export type ChallengeCheck = { ok: true; record: ChallengeRecord } | { ok: false; reason: string; challengeId?: string };

/** Checks a presented challenge without consuming it; consumption happens atomically with issuance. */
export async function checkChallenge(store: Store, presented: string | undefined, now: Date): Promise<ChallengeCheck> {
  if (!presented) return { ok: false, reason: 'no challenge password in the request' };
  const parsed = parseSecret(presented);
  if (!parsed) return { ok: false, reason: 'challenge password is not one certmdm issued' };
  const record = await store.getChallenge(parsed.id);
  if (!secretMatches(parsed.secret, record?.secretHash)) return { ok: false, reason: 'wrong challenge password', challengeId: parsed.id };
  if (record!.consumedAt) return { ok: false, reason: 'challenge password already used', challengeId: parsed.id };
  if (record!.expiresAt <= now) return { ok: false, reason: 'challenge password expired', challengeId: parsed.id };
  return { ok: true, record: record! };
}
