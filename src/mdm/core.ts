import type { AuditLog } from '../admin/audit.ts';
import { serializePlist } from '../plist/serialize.ts';
import type { BindingDecision, BindingFacts, QueueStatus, Store } from '../store/types.ts';
import type { CommandQueue } from './command-queue.ts';
import type { DeviceTokens } from './device-tokens.ts';
import type { LastSeen } from './last-seen.ts';
import type { CheckIn, CommandReport, ReportStatus } from './messages.ts';
import { OK, PolicyRefusal, type MdmResult, type MdmService, type RequestContext } from './service.ts';

const PLIST = 'application/xml';

export const RESULT_STATUS: Record<Exclude<ReportStatus, 'Idle'>, Exclude<QueueStatus, 'queued' | 'expired'>> = {
  Acknowledged: 'acknowledged',
  Error: 'error',
  CommandFormatError: 'command-format-error',
  NotNow: 'not-now',
};

function info(message: CheckIn['message']): Record<string, string> {
  const keep = ['DeviceName', 'Model', 'ModelName', 'ProductName', 'OSVersion', 'BuildVersion', 'SerialNumber', 'IMEI', 'MEID'];
  return Object.fromEntries(keep.filter((k) => typeof message[k] === 'string').map((k) => [k, message[k] as string]));
}

function data(value: unknown): Buffer | null {
  return Buffer.isBuffer(value) ? value : null;
}

/** A token sealed for storage; absent or empty stays as it is. */
function sealed(token: Buffer | null, seal: (token: Buffer) => Buffer): Buffer | undefined {
  return token?.length ? seal(token) : (token ?? undefined);
}

/** Storage behaviour of each message; trust decisions are made before it by the policies that wrap it. */
/**
 * The identity this message came with stopped being the enrollment's between the check and the write (another
 * identity took it, here or on another instance): refused like any identity no longer the enrollment's.
 */
const displaced = () => new PolicyRefusal('the certificate is no longer an identity of this enrollment', 403, 'identity-retired');

export class CoreMdmService implements MdmService {
  constructor(
    private readonly deps: {
      store: Store;
      audit: AuditLog;
      commands: CommandQueue;
      tokens: DeviceTokens;
      lastSeen: LastSeen;
      binding: (facts: BindingFacts) => BindingDecision;
    },
  ) {}

  async checkIn(ctx: RequestContext, checkIn: CheckIn): Promise<MdmResult> {
    const { store } = this.deps;
    const { channel, message } = checkIn;
    switch (checkIn.type) {
      case 'Authenticate': {
        const topic = typeof message.Topic === 'string' ? message.Topic : '';
        const outcome = await store.authenticateEnrollment({
          id: channel.deviceId,
          kind: channel.kind,
          certificateId: ctx.certificate.id,
          topic,
          info: info(message),
          now: ctx.now,
          decide: this.deps.binding,
        });
        await this.deps.audit.record({
          actor: `device:${channel.deviceId}`,
          action: 'mdm.authenticate',
          target: channel.deviceId,
          outcome: 'ok',
          reason: outcome.fresh ? 'new enrollment' : outcome.renewedFrom ? 'identity renewed' : 're-authenticated',
          detail: { certificate: ctx.certificate.fingerprintSha256, renewedFrom: outcome.renewedFrom, sources: ctx.sources },
        });
        return OK;
      }
      case 'TokenUpdate': {
        const pushMagic = typeof message.PushMagic === 'string' ? message.PushMagic : null;
        if (channel.user) {
          await store.upsertUserChannel({
            enrollmentId: channel.deviceId,
            userId: channel.user.id,
            userShortName: channel.user.shortName,
            pushToken: data(message.Token),
            pushMagic,
            now: ctx.now,
          });
        } else if (await this.#repeatsStored(channel.deviceId, message)) {
          // A TokenUpdate saying what is stored (devices repeat theirs) writes nothing but the batched last-seen time.
          await this.deps.lastSeen.seen(channel.deviceId, ctx.now, ctx.certificate.id);
        } else {
          const stored = await store.updateEnrollment(
            channel.deviceId,
            {
              pushToken: data(message.Token) ?? undefined,
              pushMagic: pushMagic ?? undefined,
              unlockToken: sealed(data(message.UnlockToken), (t) => this.deps.tokens.seal(channel.deviceId, 'unlock-token', t)),
              topic: typeof message.Topic === 'string' ? message.Topic : undefined,
              lastSeenAt: ctx.now,
            },
            ctx.certificate.id,
          );
          if (!stored) throw displaced();
        }
        return OK;
      }
      case 'CheckOut':
        if (!(await store.checkOutEnrollment(channel.deviceId, ctx.now, ctx.certificate.id))) throw displaced();
        await this.deps.audit.record({
          actor: `device:${channel.deviceId}`,
          action: 'mdm.checkout',
          target: channel.deviceId,
          outcome: 'ok',
          detail: { certificate: ctx.certificate.fingerprintSha256 },
        });
        return OK;
      case 'SetBootstrapToken':
        if (
          !(await store.updateEnrollment(
            channel.deviceId,
            {
              // Empty: the device withdrew its token.
              bootstrapToken:
                sealed(data(message.BootstrapToken), (t) => this.deps.tokens.seal(channel.deviceId, 'bootstrap-token', t)) ??
                Buffer.alloc(0),
              lastSeenAt: ctx.now,
            },
            ctx.certificate.id,
          ))
        )
          throw displaced();
        return OK;
      case 'GetBootstrapToken': {
        const stored = (await store.getEnrollment(channel.deviceId))?.bootstrapToken;
        const token = stored?.length ? this.deps.tokens.open(channel.deviceId, 'bootstrap-token', stored) : undefined;
        return { status: 200, contentType: PLIST, body: serializePlist(token?.length ? { BootstrapToken: token } : {}) };
      }
      case 'UserAuthenticate':
        // Declining tells macOS to go on without a user channel for network users (Apple's documented 410).
        throw new PolicyRefusal('UserAuthenticate is declined: certmdm does not manage network-user channels', 410);
      case 'DeclarativeManagement':
      case 'GetToken':
        throw new PolicyRefusal(`${checkIn.type} is not supported by this server`, 501);
    }
  }

  /**
   * Whether a device-channel TokenUpdate carries exactly the token, magic, topic and UnlockToken already stored, for a
   * token APNs has not refused (a TokenUpdate after an Unregistered answer is written: it makes the device pushable).
   */
  async #repeatsStored(enrollmentId: string, message: CheckIn['message']): Promise<boolean> {
    const stored = await this.deps.store.getPushRegistration(enrollmentId);
    if (!stored || stored.pushTokenInvalidAt) return false;
    const token = data(message.Token);
    const unlock = data(message.UnlockToken);
    return (
      token !== null &&
      stored.pushToken !== null &&
      stored.pushToken.equals(token) &&
      (typeof message.PushMagic !== 'string' || message.PushMagic === stored.pushMagic) &&
      (typeof message.Topic !== 'string' || message.Topic === stored.topic) &&
      (!unlock?.length ||
        (!!stored.unlockToken?.length && this.#storedUnlockToken(enrollmentId, stored.unlockToken)?.equals(unlock) === true))
    );
  }

  /** The escrowed UnlockToken opened, or undefined when it does not open (then the message is simply written). */
  #storedUnlockToken(enrollmentId: string, sealedToken: Buffer): Buffer | undefined {
    try {
      return this.deps.tokens.open(enrollmentId, 'unlock-token', sealedToken);
    } catch {
      return undefined;
    }
  }

  async report(ctx: RequestContext, report: CommandReport): Promise<MdmResult> {
    const { store } = this.deps;
    const channel = report.channel.key;
    if (report.status !== 'Idle' && report.commandUuid) {
      await store.recordCommandResult(channel, report.commandUuid, RESULT_STATUS[report.status], ctx.raw, ctx.now);
    }
    if (!report.channel.user) await this.deps.lastSeen.seen(report.channel.deviceId, ctx.now, ctx.certificate.id);
    // NotNow commands wait for the next session (the device's next Idle), never the same one.
    const next = await this.deps.commands.next(channel, { reviveNotNow: report.status === 'Idle', now: ctx.now });
    return next ? { status: 200, contentType: PLIST, body: next.body } : OK;
  }
}
