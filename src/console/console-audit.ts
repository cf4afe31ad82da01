import type { FastifyRequest } from 'fastify';
import type { AuditLog } from '../admin/audit.ts';
import type { AuditEvent } from '../store/types.ts';
import { addressKey } from './login-limiter.ts';

const WINDOW_MS = 15 * 60_000;
/** Refusals of one client without a session recorded one by one per window; the rest are counted. */
const PER_WINDOW = 20;
const MAX_CLIENTS = 10_000;

/**
 * The console's audit. An administrator's actions and refusals are recorded one by one, and so is every password
 * checked (the login limit bounds those). Other refusals of clients without a session (no cookie, wrong form, a login
 * refused before its password was checked) are too, up to 20 per client address (IPv6: its /64) in 15
 * minutes; beyond that they are counted, and the client's next recorded refusal carries how many were not recorded
 * one by one (`detail.unrecordedBefore`), so a flood of junk requests cannot fill the database while the log still
 * says it happened.
 */
export class ConsoleAudit {
  readonly #clients = new Map<string, { since: number; recorded: number; unrecorded: number }>();

  constructor(
    private readonly audit: AuditLog,
    private readonly clock: () => Date,
    /** The client's address as the login limit counts it (console/client-address.ts). */
    private readonly clientOf: (request: FastifyRequest) => string,
  ) {}

  /** Who a console request is, for the audit: the administrator, or the client's address (as the login limit counts it). */
  actor(request: FastifyRequest): string {
    return request.consoleAdmin ? `admin:${request.consoleAdmin}` : `ip:${this.clientOf(request)}`;
  }

  /** `bounded`: already limited elsewhere (a checked wrong password: the login limit), so always recorded. */
  async record(request: FastifyRequest, event: Omit<AuditEvent, 'at'>, options: { bounded?: boolean } = {}): Promise<void> {
    if (request.consoleAdmin || options.bounded) return void (await this.audit.record(event));
    const key = addressKey(this.clientOf(request));
    const now = this.clock().getTime();
    let window = this.#clients.get(key);
    if (!window || now - window.since >= WINDOW_MS) {
      const carried = window?.unrecorded ?? 0;
      window = { since: now, recorded: 0, unrecorded: carried };
      this.#clients.delete(key);
      this.#clients.set(key, window);
      if (this.#clients.size > MAX_CLIENTS) this.#clients.delete(this.#clients.keys().next().value!);
    }
    if (window.recorded >= PER_WINDOW) {
      window.unrecorded++;
      return;
    }
    window.recorded++;
    const unrecorded = window.unrecorded;
    window.unrecorded = 0;
    await this.audit.record(unrecorded ? { ...event, detail: { ...(event.detail ?? {}), unrecordedBefore: unrecorded } } : event);
  }
}
