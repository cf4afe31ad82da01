import { isIPv6 } from 'node:net';

/**
 * Login attempts, limited per account name and per client address. An attempt counts the moment it starts, before
 * its password hash, so attempts sent in parallel are limited as strictly as attempts sent one by one; a successful
 * one is taken back. Per account: 5 within 15 minutes; per address: 20 (behind one proxy many administrators may
 * share an address, and one wrong-password streak must not lock everyone out); an IPv6 address counts by its /64,
 * which one attacker holds whole. Beyond either, attempts are refused until the oldest counted is 15 minutes old.
 *
 * Bounded: at most 10 000 keys. Keys whose attempts have all aged out go first; a key still counting attempts is never
 * dropped (dropping a locked account's key would unlock it), so when every key is live a new one is refused (503).
 *
 * Password hashes computed at once are capped (LOGIN_HASHES_IN_FLIGHT, 503 beyond), with one more lane reserved for
 * browsers that logged in as that account before (a sealed cookie): a flood of guesses from many addresses keeps
 * strangers waiting, not the administrators. In memory, per instance.
 */
export const LOGIN_FAILURES_ALLOWED = { account: 5, address: 20 } as const;
export const LOGIN_WINDOW_MS = 15 * 60_000;
export const LOGIN_HASHES_IN_FLIGHT = { anyone: 4, known: 2 } as const;
const MAX_KEYS = 10_000;

export interface LoginKeys {
  account: string;
  address: string;
  /** The browser holds a cookie from an earlier login as this account. */
  known: boolean;
}

export type Attempt = { wait: number } | { busy: true } | { token: number; lane: 'anyone' | 'known' };

/** The key an address counts under: itself, or for IPv6 its /64. */
export function addressKey(address: string): string {
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

export class LoginLimiter {
  readonly #attempts = new Map<string, number[]>();
  readonly #inFlight = { anyone: 0, known: 0 };
  #sweptAt = -Infinity;

  constructor(private readonly maxKeys = MAX_KEYS) {}

  /** Starts an attempt: refused (how long to wait, or busy), or counted (end it with `succeeded` or `failed`). */
  begin(keys: LoginKeys, now: number): Attempt {
    let wait = 0;
    for (const [kind, key] of this.#entries(keys)) {
      const recent = this.#recent(key, now);
      if (recent.length >= LOGIN_FAILURES_ALLOWED[kind]) wait = Math.max(wait, recent[0]! + LOGIN_WINDOW_MS - now);
    }
    if (wait > 0) return { wait };
    const lane = keys.known && this.#inFlight.anyone >= LOGIN_HASHES_IN_FLIGHT.anyone ? 'known' : 'anyone';
    if (this.#inFlight[lane] >= LOGIN_HASHES_IN_FLIGHT[lane]) return { busy: true };
    const entries = this.#entries(keys);
    if (!this.#room(entries.filter(([, key]) => !this.#attempts.has(key)).length, now)) return { busy: true };
    this.#inFlight[lane]++;
    for (const [, key] of entries) this.#attempts.set(key, [...this.#recent(key, now), now].slice(-LOGIN_FAILURES_ALLOWED.address));
    return { token: now, lane };
  }

  /** The password was wrong: the attempt stays counted. */
  failed(attempt: { lane: 'anyone' | 'known' }): void {
    this.#inFlight[attempt.lane]--;
  }

  /** The password was right: this attempt is taken back, and the account's earlier failures forgotten. */
  succeeded(keys: LoginKeys, attempt: { token: number; lane: 'anyone' | 'known' }): void {
    this.#inFlight[attempt.lane]--;
    this.#attempts.delete(`account:${keys.account}`);
    const left = this.#attempts.get(`address:${addressKey(keys.address)}`);
    const i = left ? left.lastIndexOf(attempt.token) : -1;
    if (i >= 0) left!.splice(i, 1);
  }

  get size(): number {
    return this.#attempts.size;
  }

  /**
   * Whether `fresh` more keys fit: aged-out keys are dropped to make room, live ones never. The sweep runs at most once
   * a second, so a flood of new names against a full map costs one pass a second, not one per request.
   */
  #room(fresh: number, now: number): boolean {
    if (this.#attempts.size + fresh <= this.maxKeys) return true;
    if (now - this.#sweptAt < 1000) return false;
    this.#sweptAt = now;
    for (const [key, times] of this.#attempts) if (times.every((t) => now - t >= LOGIN_WINDOW_MS)) this.#attempts.delete(key);
    return this.#attempts.size + fresh <= this.maxKeys;
  }

  #entries(keys: LoginKeys): [keyof typeof LOGIN_FAILURES_ALLOWED, string][] {
    return [
      ['account', `account:${keys.account}`],
      ['address', `address:${addressKey(keys.address)}`],
    ];
  }

  #recent(key: string, now: number): number[] {
    return (this.#attempts.get(key) ?? []).filter((t) => now - t < LOGIN_WINDOW_MS);
  }
}
