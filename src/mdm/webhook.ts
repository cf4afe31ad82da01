import type { WebhookSender } from '../admin/webhook.ts';
import type { CheckIn, CommandReport } from './messages.ts';
import type { Channel } from './messages.ts';
import { PolicyRefusal, type MdmResult, type MdmService, type RequestContext } from './service.ts';

/**
 * MicroMDM/NanoMDM-compatible webhook events (`mdm.Authenticate`, `mdm.TokenUpdate`, `mdm.CheckOut`, ...,
 * `mdm.Connect` for command reports), sent after the wrapped service succeeded. The body's HMAC-SHA256 under the
 * shared secret is in `X-Hmac-Signature` (base64), as NanoMDM sends it. Delivery never delays the device.
 */
export class WebhookService implements MdmService {
  constructor(
    private readonly next: MdmService,
    private readonly sender: WebhookSender,
  ) {}

  /** An identity refused for the enrollment it claimed (a takeover attempt, a retired identity): the admin hears of it. */
  #refused<T>(ctx: RequestContext, channel: Channel, messageType: string, call: () => Promise<T>): Promise<T> {
    return call().catch((err: unknown) => {
      if (err instanceof PolicyRefusal && err.reason && err.status === 403) {
        this.sender.send('mdm.IdentityRefused', ctx.now, {
          identity_refused_event: {
            udid: channel.kind === 'device' ? channel.deviceId : '',
            enrollment_id: channel.kind === 'user-enrollment' ? channel.deviceId : '',
            message_type: messageType,
            reason: err.reason,
            message: err.message,
            certificate_sha256: ctx.certificate.fingerprintSha256,
            peer: ctx.peer,
          },
        });
      }
      throw err;
    });
  }

  async checkIn(ctx: RequestContext, message: CheckIn): Promise<MdmResult> {
    const result = await this.#refused(ctx, message.channel, message.type, () => this.next.checkIn(ctx, message));
    // A rescued request is announced by the rescue itself (`mdm.Rescue`): nothing it says is passed on as data.
    if (ctx.rescue) return result;
    this.sender.send(`mdm.${message.type}`, ctx.now, {
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
    const result = await this.#refused(ctx, report.channel, report.status, () => this.next.report(ctx, report));
    if (ctx.rescue) return result;
    this.sender.send('mdm.Connect', ctx.now, {
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
}
