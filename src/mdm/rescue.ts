import type { AuditLog } from '../admin/audit.ts';
import type { WebhookSender } from '../admin/webhook.ts';
import { IMMEDIATE_RETRIES, renewalStep, type IdentityRenewal } from '../lifecycle/renewal.ts';
import { deviceChannel, type EnrollmentRecord, type Store } from '../store/types.ts';
import type { CommandQueue } from './command-queue.ts';
import { RESULT_STATUS } from './core.ts';
import type { Channel, CheckIn, CommandReport } from './messages.ts';
import type { RescueGrant } from './rescue-policy.ts';
import { OK, PolicyRefusal, type MdmResult, type MdmService, type RequestContext } from './service.ts';

export type { RescueGrant } from './rescue-policy.ts';

/** The audit action of every rescue step; the simulator and the admin count rescues by it. */
export const RESCUE_AUDIT_ACTION = 'mdm.rescue';
/** The webhook topic of every rescue step (`rescue_event`), beside `mdm.IdentityRefused`. */
export const RESCUE_WEBHOOK_TOPIC = 'mdm.Rescue';

/**
 * `session`: an Idle served (the renewal profile delivered, or nothing while it backs off); `report`: the device's
 * report on its renewal profile stored; `completed`: a new identity authenticated in place of an expired one.
 */
export type RescueStep = 'session' | 'report' | 'completed';

/** Why a rescued identity was refused: it may fetch and report its renewal profile, nothing else. */
export const RESCUE_REFUSALS = ['rescue-checkin-refused', 'rescue-report-refused', 'rescue-other-channel'] as const;
export type RescueRefusal = (typeof RESCUE_REFUSALS)[number];

const PLIST = 'application/xml';

/**
 * The rescue of a device whose identity expired while it was away (src/mdm/rescue-policy.ts decides who qualifies;
 * the verifier grants it). A decorator outside the binding policy: a request with a grant never reaches the services
 * that store what a device says, so the expired identity can do exactly two things — send Idle on its device
 * channel and get its renewal profile (made by the lifecycle's IdentityRenewal when none is waiting), and report on
 * that profile. Every other queued command stays queued; every check-in and any other report is a 403 with a named
 * reason, storing nothing; lastSeenAt is not touched (the device is seen again when its new identity speaks).
 * Requests without a grant pass through; an Authenticate that replaces an expired identity completes the rescue.
 */
export class RescueService implements MdmService {
  constructor(
    private readonly next: MdmService,
    private readonly deps: {
      store: Store;
      audit: AuditLog;
      commands: CommandQueue;
      renewal?: IdentityRenewal;
      webhook?: WebhookSender;
      /** `--rescue-grace-days` in ms: an identity expired longer ago than this was not rescued when it is replaced. */
      graceMs: number;
    },
  ) {}

  async checkIn(ctx: RequestContext, message: CheckIn): Promise<MdmResult> {
    if (ctx.rescue)
      throw new PolicyRefusal(
        `the identity expired ${ctx.rescue.expiredAt.toISOString()} and is accepted only to fetch and report its renewal profile, not for ${message.type}`,
        403,
        'rescue-checkin-refused' satisfies RescueRefusal,
      );
    if (message.type !== 'Authenticate' || message.channel.user) return this.next.checkIn(ctx, message);
    const expired = await this.#expiredIdentity(message.channel.deviceId, ctx);
    const result = await this.next.checkIn(ctx, message);
    if (expired) {
      const after = await this.deps.store.getEnrollment(message.channel.deviceId);
      if (after?.identityCertificateId === ctx.certificate.id && after.previousIdentityCertificateId === expired.id)
        await this.#announce(ctx, message.channel, 'completed', {
          expiredAt: expired.notAfter.toISOString(),
          retired: expired.fingerprintSha256,
        });
    }
    return result;
  }

  async report(ctx: RequestContext, report: CommandReport): Promise<MdmResult> {
    const grant = ctx.rescue;
    if (!grant) return this.next.report(ctx, report);
    if (report.channel.user || report.channel.deviceId !== grant.enrollmentId)
      throw new PolicyRefusal(
        `a rescued identity speaks only on the device channel of ${grant.enrollmentId}`,
        403,
        'rescue-other-channel' satisfies RescueRefusal,
      );
    const { store } = this.deps;
    const current = await store.getEnrollment(grant.enrollmentId);
    // The grant was read before this request: a new identity may have authenticated since.
    if (current?.status !== 'enrolled' || current.identityCertificateId !== ctx.certificate.id)
      throw new PolicyRefusal("the expired identity is no longer its enrollment's current identity", 403, 'identity-retired');
    let enrollment = current;
    if (report.status !== 'Idle') {
      if (!report.commandUuid || report.commandUuid !== enrollment.renewalCommandUuid)
        throw new PolicyRefusal(
          `a rescued identity may report only on its renewal profile, not on ${report.commandUuid}`,
          403,
          'rescue-report-refused' satisfies RescueRefusal,
        );
      const channel = deviceChannel(grant.enrollmentId);
      await store.recordCommandResult(channel, report.commandUuid, RESULT_STATUS[report.status], ctx.raw, ctx.now);
      // As RenewalRetryService does for any device: a failed profile is retried while the device is here.
      let retried = false;
      if (report.status === 'Error' && this.deps.renewal && enrollment.renewalAttempts <= IMMEDIATE_RETRIES)
        retried = await this.deps.renewal.send(enrollment, ctx.now, 'rescue:retry');
      if (retried) enrollment = (await store.getEnrollment(grant.enrollmentId))!;
      // NotNow waits for the next Idle, as in any session.
      const body = await this.#deliverable(enrollment, false, ctx.now);
      await this.#announce(ctx, report.channel, 'report', {
        status: report.status,
        command: report.commandUuid,
        retried,
        delivered: body ? enrollment.renewalCommandUuid : null,
      });
      return body ? { status: 200, contentType: PLIST, body } : OK;
    }
    let body = await this.#deliverable(enrollment, true, ctx.now);
    let started = false;
    if (!body && this.deps.renewal) {
      // The runner's rule: a profile waiting but no longer deliverable (its challenge expired) is replaced; one that
      // was installed or failed a moment ago is given its backoff.
      if ((await renewalStep(store, enrollment, ctx.certificate, ctx.now)).next !== 'back-off') {
        started = await this.deps.renewal.send(enrollment, ctx.now, 'rescue');
        enrollment = (await store.getEnrollment(grant.enrollmentId))!;
        body = await this.#deliverable(enrollment, true, ctx.now);
      }
    }
    await this.#announce(ctx, report.channel, 'session', {
      renewalStarted: started,
      delivered: body ? enrollment.renewalCommandUuid : null,
    });
    return body ? { status: 200, contentType: PLIST, body } : OK;
  }

  /** The renewal profile's body if it may go to the device now: still waiting, not erased, its secrets still good. */
  async #deliverable(enrollment: EnrollmentRecord, idle: boolean, now: Date): Promise<Buffer | undefined> {
    const uuid = enrollment.renewalCommandUuid;
    if (!uuid) return undefined;
    const entry = (await this.deps.store.listQueue(deviceChannel(enrollment.id))).find((q) => q.commandUuid === uuid);
    // A NotNow profile is offered again only in a new session (Idle), as nextCommand does; nothing is stored for it.
    if (!entry || !(entry.status === 'queued' || (idle && entry.status === 'not-now'))) return undefined;
    const command = await this.deps.store.getCommand(uuid);
    if (!command || command.bodyErasedAt || !command.body.length || (command.secretsExpireAt && command.secretsExpireAt <= now))
      return undefined;
    return command.sealed ? this.deps.commands.open(uuid, command.body) : command.body;
  }

  /** The enrollment's current identity when it is expired and not the one presented: this Authenticate may end a rescue. */
  async #expiredIdentity(enrollmentId: string, ctx: RequestContext) {
    const enrollment = await this.deps.store.getEnrollment(enrollmentId);
    if (enrollment?.status !== 'enrolled' || !enrollment.identityCertificateId || enrollment.identityCertificateId === ctx.certificate.id)
      return undefined;
    const identity = await this.deps.store.getCertificate(enrollment.identityCertificateId);
    const expired = identity && identity.notAfter <= ctx.now;
    return expired && ctx.now.getTime() - identity.notAfter.getTime() < this.deps.graceMs ? identity : undefined;
  }

  async #announce(
    ctx: RequestContext,
    { deviceId: enrollmentId, kind }: Pick<Channel, 'deviceId' | 'kind'>,
    step: RescueStep,
    detail: Record<string, unknown>,
  ): Promise<void> {
    const grant: RescueGrant | null | undefined = ctx.rescue;
    await this.deps.audit.record({
      actor: `device:${enrollmentId}`,
      action: RESCUE_AUDIT_ACTION,
      target: enrollmentId,
      outcome: 'ok',
      reason:
        step === 'completed'
          ? 'a new identity replaced the expired one'
          : `identity expired ${grant!.expiredAt.toISOString()}; rescue until ${grant!.graceEndsAt.toISOString()}`,
      detail: {
        step,
        certificate: ctx.certificate.fingerprintSha256,
        sources: ctx.sources,
        ...(grant ? { expiredAt: grant.expiredAt.toISOString(), graceEndsAt: grant.graceEndsAt.toISOString() } : {}),
        ...detail,
      },
    });
    this.deps.webhook?.send(RESCUE_WEBHOOK_TOPIC, ctx.now, {
      rescue_event: {
        udid: kind === 'device' ? enrollmentId : '',
        enrollment_id: kind === 'user-enrollment' ? enrollmentId : '',
        step,
        certificate_sha256: ctx.certificate.fingerprintSha256,
        expired_at: grant?.expiredAt.toISOString() ?? detail.expiredAt ?? null,
        grace_ends_at: grant?.graceEndsAt.toISOString() ?? null,
        status: detail.status ?? null,
        command_uuid: detail.delivered ?? detail.command ?? null,
        peer: ctx.peer,
      },
    });
  }
}

/** Enrollments whose rescue completed (a new identity replaced an expired one), from the audit log: for the simulator. */
export async function completedRescues(store: Pick<Store, 'listAudit'>, limit = 1_000_000): Promise<string[]> {
  const rows = await store.listAudit({ action: RESCUE_AUDIT_ACTION, limit });
  return [...new Set(rows.filter((r) => r.detail?.step === 'completed' && r.target).map((r) => r.target!))];
}
