import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { AuditEvent, Store } from '../store/types.ts';

/**
 * Every admin action and identity decision: one row in the audit table and one JSON log line, with the reason.
 * Callers pass only facts safe to keep (fingerprints, ids), never secrets.
 */
export class AuditLog {
  readonly #listeners: ((event: AuditEvent) => void)[] = [];

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    private readonly clock: Clock,
  ) {}

  async record(event: Omit<AuditEvent, 'at'>): Promise<void> {
    const full: AuditEvent = { ...event, at: this.clock() };
    const id = await this.store.appendAudit(full);
    for (const listener of this.#listeners) listener(full);
    const level = event.outcome === 'denied' || event.outcome === 'error' ? 'warn' : 'info';
    this.logger[level]({ audit: true, auditId: id, ...full, at: full.at.toISOString() }, `audit ${event.action} ${event.outcome}`);
  }

  /** Called with each event once it is stored (the metrics count them); a listener must not throw. */
  subscribe(listener: (event: AuditEvent) => void): void {
    this.#listeners.push(listener);
  }
}
