import { createHmac, randomUUID } from 'node:crypto';
import type { Logger } from '../log.ts';

const ATTEMPTS = 3;

/**
 * Posts JSON events to the configured webhook, MicroMDM/NanoMDM style: `{topic, event_id, created_at, ...}` with
 * `X-Hmac-Signature: base64(HMAC-SHA256(secret, body))`. Delivery never blocks the caller; a failed delivery is tried again twice, then logged.
 */
export class WebhookSender {
  readonly #pending = new Set<Promise<void>>();

  constructor(private readonly options: { url: string; secret: string | null; logger: Logger; timeoutMs?: number }) {}

  send(topic: string, at: Date, event: Record<string, unknown>): void {
    const body = JSON.stringify({ topic, event_id: randomUUID(), created_at: at.toISOString(), ...event });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.options.secret) headers['x-hmac-signature'] = createHmac('sha256', this.options.secret).update(body).digest('base64');
    const delivery = this.#deliver(topic, body, headers).finally(() => this.#pending.delete(delivery));
    this.#pending.add(delivery);
  }

  /**
   * Up to ATTEMPTS tries, a little apart, when the receiver cannot be reached, times out or answers 5xx: a receiver
   * busy for a moment does not lose the event. The same event_id each time, so a receiver can drop a repeat.
   */
  async #deliver(topic: string, body: string, headers: Record<string, string>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await fetch(this.options.url, {
          method: 'POST',
          headers,
          body,
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
        });
        if (response.ok) return;
        if (response.status < 500 || attempt === ATTEMPTS)
          return void this.options.logger.warn({ topic, status: response.status }, 'webhook refused the event');
      } catch (err) {
        if (attempt === ATTEMPTS) return void this.options.logger.warn({ topic, err: (err as Error).message }, 'webhook delivery failed');
      }
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    }
  }

  /** Resolves when every event sent so far has been delivered or given up on (tests, shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.#pending]);
  }
}
