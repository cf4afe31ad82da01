/**
 * Login attempts, limited per client address and per account name: after 5 failures within 15 minutes, further
 * attempts are refused (429) until the oldest of them is 15 minutes old. In memory, per instance: with N instances an
 * attacker gets N times the attempts, each still paying a scrypt hash. Bounded: the least recently failed keys go
 * first when 10 000 are held.
 */
export const LOGIN_FAILURES_ALLOWED = 5;
export const LOGIN_WINDOW_MS = 15 * 60_000;
const MAX_KEYS = 10_000;

export class LoginLimiter {
  readonly #failures = new Map<string, number[]>();

  /** Milliseconds until `keys` may try again; 0 when they may now. */
  retryAfter(keys: string[], now: number): number {
    let wait = 0;
    for (const key of keys) {
      const recent = this.#recent(key, now);
      if (recent.length >= LOGIN_FAILURES_ALLOWED) wait = Math.max(wait, recent[0]! + LOGIN_WINDOW_MS - now);
    }
    return wait;
  }

  fail(keys: string[], now: number): void {
    for (const key of keys) {
      const recent = [...this.#recent(key, now), now].slice(-LOGIN_FAILURES_ALLOWED);
      this.#failures.delete(key);
      this.#failures.set(key, recent);
      if (this.#failures.size > MAX_KEYS) this.#failures.delete(this.#failures.keys().next().value!);
    }
  }

  succeed(keys: string[]): void {
    for (const key of keys) this.#failures.delete(key);
  }

  #recent(key: string, now: number): number[] {
    return (this.#failures.get(key) ?? []).filter((t) => now - t < LOGIN_WINDOW_MS);
  }
}
