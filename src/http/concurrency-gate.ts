/**
 * Caps how many heavy requests (SCEP PKIOperation: RSA decryption, signature checks, issuance) run at once on the
 * process's one event loop, which the HTTPS listener and the plain-HTTP SCEP port share. Beyond `limit` in flight,
 * requests wait in a bounded queue; beyond that they are refused at once (the caller answers 503), so a flood costs
 * its senders time, not the health checks and check-ins of everyone else.
 */
export class GateFullError extends Error {
  readonly statusCode = 503;
  constructor(readonly waiting: number) {
    super('the server is busy with other SCEP requests; retry shortly');
    this.name = 'GateFullError';
  }
}

export class ConcurrencyGate {
  #running = 0;
  readonly #queue: (() => void)[] = [];

  constructor(
    readonly limit: number,
    readonly queueLimit: number,
  ) {}

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#running >= this.limit) {
      if (this.#queue.length >= this.queueLimit) throw new GateFullError(this.#queue.length);
      await new Promise<void>((resolve) => this.#queue.push(resolve));
    } else this.#running++;
    try {
      return await work();
    } finally {
      this.#release();
    }
  }

  #release(): void {
    const next = this.#queue.shift();
    if (!next) {
      this.#running--;
      return;
    }
    // The slot passes straight to the next waiter, but through setImmediate: pending I/O (a /healthz, a check-in)
    // runs before the next heavy request starts, instead of behind a chain of promise continuations.
    setImmediate(next);
  }
}

/** Two at a time keeps the loop's longest stall to about two PKIOperations; 64 waiting holds at most 16 MiB of bodies. */
export const PKI_OPERATION_GATE = new ConcurrencyGate(2, 64);
