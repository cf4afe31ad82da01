import type { Logger } from 'pino';
import type { EnrollmentStore } from '../store/types.ts';

/**
 * Devices' last check-in times, held in memory and written together: a steady-state check-in (an Idle with nothing
 * queued, a TokenUpdate repeating what is stored) then writes nothing at all. Times only move forward, here and in
 * the store. With `flushMs` 0 each time is written at once (before the message is answered).
 */
export class LastSeen {
  #pending = new Map<string, Date>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Pick<EnrollmentStore, 'touchEnrollments'>,
    private readonly options: { flushMs: number; logger?: Logger },
  ) {}

  async seen(enrollmentId: string, at: Date): Promise<void> {
    if (this.options.flushMs === 0) return this.store.touchEnrollments([{ id: enrollmentId, at }]);
    const held = this.#pending.get(enrollmentId);
    if (!held || held < at) this.#pending.set(enrollmentId, at);
    this.#timer ??= setTimeout(() => void this.flush(), this.options.flushMs).unref();
  }

  /** Writes what is held; failures are logged and the times kept for the next flush. */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.size === 0) return this.#flushing;
    const batch = this.#pending;
    this.#pending = new Map();
    this.#flushing = this.#flushing.then(() =>
      this.store.touchEnrollments([...batch].map(([id, at]) => ({ id, at }))).catch((err: unknown) => {
        this.options.logger?.warn({ err, devices: batch.size }, 'last-seen times not written; kept for the next flush');
        for (const [id, at] of batch) void this.seen(id, at);
      }),
    );
    return this.#flushing;
  }
}
