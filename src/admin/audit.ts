import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { AuditEvent, Store } from '../store/types.ts';

/**
 * Every admin action and identity decision: one row in the audit table and one JSON log line, with the reason.
 * Callers pass only facts safe to keep (fingerprints, ids), never secrets.
 */
export class AuditLog {
  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    private readonly clock: Clock,
  ) {}

  async record(event: Omit<AuditEvent, 'at'>): Promise<void> {
    const full: AuditEvent = { ...event, at: this.clock() };
    const id = await this.store.appendAudit(full);
    const level = event.outcome === 'denied' || event.outcome === 'error' ? 'warn' : 'info';
    this.logger[level]({ audit: true, auditId: id, ...full, at: full.at.toISOString() }, `audit ${event.action} ${event.outcome}`);
  }
}
