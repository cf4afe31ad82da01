import type { Logger } from 'pino';
import type { EnrollmentStore } from '../store/types.ts';

/**
 * Devices' last check-in times, held in memory and written together: a steady-state check-in (an Idle with nothing
 * queued, a TokenUpdate repeating what is stored) then writes nothing at all. Times only move forward, here and in
 * the store. With `flushMs` 0 each time is written at once (before the message is answered).
 */
export class LastSeen {
  #pending = new Map<string, { at: Date; presentedBy: string }>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Pick<EnrollmentStore, 'touchEnrollments'>,
    private readonly options: { flushMs: number; logger?: Logger },
  ) {}

  /** The enrollment spoke at `at` with the certificate `presentedBy`: written only while it is still its identity. */
  async seen(enrollmentId: string, at: Date, presentedBy: string): Promise<void> {
    if (this.options.flushMs === 0) return this.store.touchEnrollments([{ id: enrollmentId, at, presentedBy }]);
    const held = this.#pending.get(enrollmentId);
    if (!held || held.at < at) this.#pending.set(enrollmentId, { at, presentedBy });
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
      this.store.touchEnrollments([...batch].map(([id, held]) => ({ id, ...held }))).catch((err: unknown) => {
        this.options.logger?.warn({ err, devices: batch.size }, 'last-seen times not written; kept for the next flush');
        for (const [id, held] of batch) void this.seen(id, held.at, held.presentedBy);
      }),
    );
    return this.#flushing;
  }
}
