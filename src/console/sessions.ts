import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ConsoleSessionRecord, Store } from '../store/types.ts';

/**
 * Console sessions. The cookie holds 256 random bits; the store holds their SHA-256 (a stolen database opens no
 * session). The CSRF token is an HMAC of the cookie's secret: bound to the session, never stored, and unguessable to
 * a page that cannot read the cookie (HttpOnly, and SameSite=Strict keeps it off cross-site requests anyway).
 */
export const SESSION_COOKIE = '__Host-certmdm-console';
/** Idle sessions end after 30 minutes; any session after 12 hours. */
export const SESSION_IDLE_MS = 30 * 60_000;
export const SESSION_MAX_MS = 12 * 3_600_000;

const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export const sessionHash = (secret: string): Buffer => createHash('sha256').update(secret).digest();

export function csrfToken(secret: string): string {
  return createHmac('sha256', Buffer.from(secret, 'base64url')).update('certmdm console csrf').digest('base64url');
}

export function csrfMatches(secret: string, presented: unknown): boolean {
  if (typeof presented !== 'string' || presented.length !== 43) return false;
  return timingSafeEqual(Buffer.from(csrfToken(secret)), Buffer.from(presented));
}

export async function openSession(store: Store, account: string, now: Date): Promise<{ secret: string; record: ConsoleSessionRecord }> {
  const secret = randomBytes(32).toString('base64url');
  const record = {
    idHash: sessionHash(secret),
    account,
    createdAt: now,
    lastUsedAt: now,
    expiresAt: new Date(now.getTime() + SESSION_MAX_MS),
  };
  await store.insertConsoleSession(record);
  return { secret, record };
}

export type SessionCheck =
  | { ok: true; secret: string; record: ConsoleSessionRecord }
  | { ok: false; reason: 'no-session' | 'malformed' | 'unknown' | 'expired' | 'idle'; account?: string };

/** The session a cookie names, if it is live; a dead one is deleted. */
export async function checkSession(store: Store, secret: string | undefined, now: Date): Promise<SessionCheck> {
  if (!secret) return { ok: false, reason: 'no-session' };
  if (!SECRET_PATTERN.test(secret)) return { ok: false, reason: 'malformed' };
  const record = await store.getConsoleSession(sessionHash(secret));
  if (!record) return { ok: false, reason: 'unknown' };
  const reason = record.expiresAt <= now ? 'expired' : now.getTime() - record.lastUsedAt.getTime() > SESSION_IDLE_MS ? 'idle' : null;
  if (reason) {
    await store.deleteConsoleSession(record.idHash);
    return { ok: false, reason, account: record.account };
  }
  return { ok: true, secret, record };
}

/** The value of one cookie in a Cookie header (RFC 6265 syntax: `name=value; name=value`). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * A Set-Cookie value for one of the console's `__Host-` cookies: Secure, Path=/, no Domain (the browser refuses the
 * prefix otherwise, so no subdomain can plant or read it), HttpOnly, SameSite=Strict. An empty value clears it.
 */
export function hostCookie(name: string, value: string, maxAgeSeconds: number): string {
  return `${name}=${value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=${value ? maxAgeSeconds : 0}`;
}

export const sessionCookie = (secret: string): string => hostCookie(SESSION_COOKIE, secret, SESSION_MAX_MS / 1000);

export const CLEARED_COOKIE = hostCookie(SESSION_COOKIE, '', 0);
