import { createHmac, randomUUID } from 'node:crypto';
import type { Logger } from '../log.ts';

/**
 * Posts JSON events to the configured webhook, MicroMDM/NanoMDM style: `{topic, event_id, created_at, ...}` with
 * `X-Hmac-Signature: base64(HMAC-SHA256(secret, body))`. Delivery never blocks the caller; failures are logged.
 */
export class WebhookSender {
  readonly #pending = new Set<Promise<void>>();

  constructor(private readonly options: { url: string; secret: string | null; logger: Logger; timeoutMs?: number }) {}

  send(topic: string, at: Date, event: Record<string, unknown>): void {
    const body = JSON.stringify({ topic, event_id: randomUUID(), created_at: at.toISOString(), ...event });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.options.secret) headers['x-hmac-signature'] = createHmac('sha256', this.options.secret).update(body).digest('base64');
    const delivery = fetch(this.options.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000) })
      .then((response) => {
        if (!response.ok) this.options.logger.warn({ topic, status: response.status }, 'webhook refused the event');
      })
      .catch((err: unknown) => this.options.logger.warn({ topic, err: (err as Error).message }, 'webhook delivery failed'))
      .finally(() => this.#pending.delete(delivery));
    this.#pending.add(delivery);
  }

  /** Resolves when every event sent so far has been delivered or given up on (tests, shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.#pending]);
  }
}
