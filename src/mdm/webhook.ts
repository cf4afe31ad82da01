import { createHmac, randomUUID } from 'node:crypto';
import type { Logger } from '../log.ts';
import type { CheckIn, CommandReport } from './messages.ts';
import type { MdmResult, MdmService, RequestContext } from './service.ts';

/**
 * MicroMDM/NanoMDM-compatible webhook events (`mdm.Authenticate`, `mdm.TokenUpdate`, `mdm.CheckOut`, ...,
 * `mdm.Connect` for command reports), sent after the wrapped service succeeded. The body's HMAC-SHA256 under the
 * shared secret is in `X-Hmac-Signature` (base64), as NanoMDM sends it. Delivery never delays the device.
 */
export class WebhookService implements MdmService {
  readonly #pending = new Set<Promise<void>>();

  constructor(
    private readonly next: MdmService,
    private readonly options: { url: string; secret: string | null; logger: Logger; timeoutMs?: number },
  ) {}

  async checkIn(ctx: RequestContext, message: CheckIn): Promise<MdmResult> {
    const result = await this.next.checkIn(ctx, message);
    this.#send(`mdm.${message.type}`, ctx, {
      checkin_event: {
        udid: message.channel.kind === 'device' ? message.channel.deviceId : '',
        enrollment_id: message.channel.kind === 'user-enrollment' ? message.channel.deviceId : '',
        url_params: null,
        raw_payload: ctx.raw.toString('base64'),
      },
    });
    return result;
  }

  async report(ctx: RequestContext, report: CommandReport): Promise<MdmResult> {
    const result = await this.next.report(ctx, report);
    this.#send('mdm.Connect', ctx, {
      acknowledge_event: {
        udid: report.channel.kind === 'device' ? report.channel.deviceId : '',
        enrollment_id: report.channel.kind === 'user-enrollment' ? report.channel.deviceId : '',
        status: report.status,
        command_uuid: report.commandUuid ?? '',
        url_params: null,
        raw_payload: ctx.raw.toString('base64'),
      },
    });
    return result;
  }

  /** Resolves when every event sent so far has been delivered or given up on (tests, shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.#pending]);
  }

  #send(topic: string, ctx: RequestContext, event: Record<string, unknown>): void {
    const body = JSON.stringify({ topic, event_id: randomUUID(), created_at: ctx.now.toISOString(), ...event });
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
}
