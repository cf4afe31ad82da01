import type { Clock } from '../clock.ts';

/**
 * Nonces of sealed, single-use values (the console's pending push upload), each remembered until the value itself
 * expires; bounded by that expiry (10 minutes) and by a cap. Per instance: behind several instances an upload could be
 * confirmed once on each, and the second import changes nothing (the certificate is already installed: 409).
 */
export class SpentNonces {
  readonly #spent = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly cap = 10_000,
  ) {}

  /** True the first time `nonce` is spent (before `until`); false after. */
  spend(nonce: string, until: number): boolean {
    const now = this.clock().getTime();
    for (const [n, t] of this.#spent) if (t < now) this.#spent.delete(n);
    if (typeof nonce !== 'string' || this.#spent.has(nonce) || this.#spent.size >= this.cap) return false;
    this.#spent.set(nonce, until);
    return true;
  }
}
