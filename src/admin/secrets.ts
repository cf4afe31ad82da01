import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * One-time secrets handed to someone once (SCEP challenges, enrollment links): 16 hex digits of id, then 40 of
 * secret. Hex only, so they survive PrintableString and URLs unescaped. Only SHA-256 of the secret is stored; the
 * id finds the row and the secret is compared in constant time, also when the id is unknown.
 */
const PATTERN = /^([0-9a-f]{16})([0-9a-f]{40})$/;
const DUMMY_HASH = createHash('sha256').update('certmdm-no-such-secret').digest();

export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

export function mintSecret(): { id: string; text: string; secretHash: Buffer } {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(20).toString('hex');
  return { id, text: id + secret, secretHash: hashSecret(secret) };
}

/** Splits a presented secret into id and secret part, or undefined if it has not the shape certmdm issues. */
export function parseSecret(presented: string): { id: string; secret: string } | undefined {
  const match = PATTERN.exec(presented.trim().toLowerCase());
  return match ? { id: match[1]!, secret: match[2]! } : undefined;
}

/** Constant-time check of a secret against a stored hash (or a dummy when the row does not exist). */
export function secretMatches(secret: string, storedHash: Buffer | undefined): boolean {
  return timingSafeEqual(hashSecret(secret), storedHash ?? DUMMY_HASH) && storedHash !== undefined;
}
