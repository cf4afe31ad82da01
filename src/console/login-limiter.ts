/**
 * Login attempts, limited per account name and per client address. An attempt counts the moment it starts, before
 * its password hash, so attempts sent in parallel are limited as strictly as attempts sent one by one; a successful
 * one is taken back. Per account: 5 within 15 minutes; per address: 20 (behind one proxy many administrators may
 * share an address, and one wrong-password streak must not lock everyone out). Beyond either, attempts are refused
 * until the oldest counted is 15 minutes old. In memory, per instance (with N instances an attacker gets N times the
 * attempts, each still paying scrypt); at most 10 000 keys held, the least recently failed dropped first.
 */
export const LOGIN_FAILURES_ALLOWED = { account: 5, address: 20 } as const;
export const LOGIN_WINDOW_MS = 15 * 60_000;
/** Password hashes computed at once, by the whole process: beyond it a login is answered 503 at once. */
export const LOGIN_HASHES_IN_FLIGHT = 4;
const MAX_KEYS = 10_000;

export type LoginKeys = { account: string; address: string };

export class LoginLimiter {
  readonly #attempts = new Map<string, number[]>();
  #inFlight = 0;

  /**
   * Starts an attempt: the milliseconds to wait when it is refused, else 0 and the attempt is counted (call
   * `succeeded` or `finished` when the hash is done).
   */
  begin(keys: LoginKeys, now: number): { wait: number } | { busy: true } | { wait: 0; token: number } {
    let wait = 0;
    for (const [kind, key] of this.#entries(keys)) {
      const recent = this.#recent(key, now);
      if (recent.length >= LOGIN_FAILURES_ALLOWED[kind]) wait = Math.max(wait, recent[0]! + LOGIN_WINDOW_MS - now);
    }
    if (wait > 0) return { wait };
    if (this.#inFlight >= LOGIN_HASHES_IN_FLIGHT) return { busy: true };
    this.#inFlight++;
    for (const [, key] of this.#entries(keys)) this.#record(key, [...this.#recent(key, now), now]);
    return { wait: 0, token: now };
  }

  /** The attempt's hash is done and the password was wrong: it stays counted. */
  finished(): void {
    this.#inFlight--;
  }

  /** The password was right: this attempt is taken back, and the account's earlier failures forgotten. */
  succeeded(keys: LoginKeys, token: number): void {
    this.#inFlight--;
    this.#attempts.delete(`account:${keys.account}`);
    const address = `address:${keys.address}`;
    const left = this.#attempts.get(address);
    if (left) {
      const i = left.lastIndexOf(token);
      if (i >= 0) left.splice(i, 1);
    }
  }

  #entries(keys: LoginKeys): [keyof typeof LOGIN_FAILURES_ALLOWED, string][] {
    return [
      ['account', `account:${keys.account}`],
      ['address', `address:${keys.address}`],
    ];
  }

  #record(key: string, times: number[]): void {
    this.#attempts.delete(key);
    this.#attempts.set(key, times.slice(-Math.max(LOGIN_FAILURES_ALLOWED.account, LOGIN_FAILURES_ALLOWED.address)));
    if (this.#attempts.size > MAX_KEYS) this.#attempts.delete(this.#attempts.keys().next().value!);
  }

  #recent(key: string, now: number): number[] {
    return (this.#attempts.get(key) ?? []).filter((t) => now - t < LOGIN_WINDOW_MS);
  }
}
