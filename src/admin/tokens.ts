import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { ApiTokenRecord, Store } from '../store/types.ts';

/**
 * Admin API tokens: `cmdm_<id>_<secret>`. Only SHA-256 of the secret is stored (the secret is 256 random bits,
 * so a slow hash would add nothing). The id locates the row; the secret is compared in constant time.
 */
const TOKEN_PATTERN = /^cmdm_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const DUMMY_HASH = createHash('sha256').update('certmdm-no-such-token').digest();

function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

export async function mintApiToken(store: Store, clock: Clock, name: string): Promise<{ token: string; record: ApiTokenRecord }> {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const record: ApiTokenRecord = {
    id,
    name,
    secretHash: hashSecret(secret),
    createdAt: clock(),
    lastUsedAt: null,
    revokedAt: null,
  };
  await store.insertApiToken(record);
  return { token: `cmdm_${id}_${secret}`, record };
}

export type TokenCheck = { ok: true; record: ApiTokenRecord } | { ok: false; reason: string; tokenId?: string };

export async function verifyApiToken(store: Store, presented: string): Promise<TokenCheck> {
  const match = TOKEN_PATTERN.exec(presented);
  if (!match) return { ok: false, reason: 'malformed token' };
  const [, id, secret] = match as unknown as [string, string, string];
  const record = await store.getApiToken(id);
  // Compare even when the id is unknown so the timing does not tell which ids exist.
  const equal = timingSafeEqual(hashSecret(secret), record?.secretHash ?? DUMMY_HASH);
  if (!record || !equal) return { ok: false, reason: 'unknown token', tokenId: id };
  if (record.revokedAt) return { ok: false, reason: 'revoked token', tokenId: id };
  return { ok: true, record };
}
