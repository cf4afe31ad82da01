import type { AuditLog } from '../admin/audit.ts';
import { BindingRefused, type Store } from '../store/types.ts';
import type { IdentityFacts } from './identity-cache.ts';
import type { CheckIn, CommandReport, Channel } from './messages.ts';
import { PolicyRefusal, type MdmResult, type MdmService, type RequestContext } from './service.ts';

/** What only the enrollment's current identity may send: ending the enrollment, and its escrowed token. */
const PREVIOUS_REFUSED: ReadonlySet<CheckIn['type']> = new Set(['CheckOut', 'SetBootstrapToken', 'GetBootstrapToken']);

/**
 * The UDID ↔ certificate binding (Apple: identify the device by its certificate, then cross-check the UDID). An
 * Authenticate binds a certificate under the binding policy (mdm/binding.ts: an identity serves the enrollment it was
 * minted for), which the store applies atomically; every later message must present a certificate bound to the ID it
 * claims. After a renewal the old identity stays valid for its device until the new one is seen on a later message,
 * then it is superseded.
 *
 * Refusals are 403, never 401 and never `com.apple.unrecognized.device`: either makes a device unenroll, and one
 * spoofed request must not cost the real device its enrollment.
 */
export class CertAuthService implements MdmService {
  constructor(
    private readonly next: MdmService,
    private readonly deps: { store: Store; audit: AuditLog; facts: IdentityFacts },
  ) {}

  async #requireBound(ctx: RequestContext, channel: Channel, messageType?: CheckIn['type']): Promise<void> {
    const enrollment = await this.deps.facts.getEnrollmentIdentity(channel.deviceId);
    if (!enrollment || enrollment.status !== 'enrolled')
      throw new PolicyRefusal(`no active enrollment ${channel.deviceId}`, 403, 'not-enrolled');
    const boundTo = await this.deps.facts.getBinding(ctx.certificate.id);
    if (boundTo !== channel.deviceId) {
      throw boundTo
        ? new PolicyRefusal('the certificate is bound to another enrollment', 403, 'bound-to-another-enrollment')
        : new PolicyRefusal('the certificate is not bound to this enrollment', 403, 'not-bound');
    }
    const { identityCertificateId: current, previousIdentityCertificateId: previous } = enrollment;
    if (ctx.certificate.id !== current && ctx.certificate.id !== previous)
      throw new PolicyRefusal('the certificate is a superseded identity of this enrollment', 403, 'identity-retired');
    // The replaced identity is kept so the device can finish the session it was in (reports, TokenUpdate), not to
    // act for the enrollment: after a re-enrollment link took over it may be an evicted key's.
    if (ctx.certificate.id !== current && messageType && PREVIOUS_REFUSED.has(messageType))
      throw new PolicyRefusal(
        `the certificate was replaced by a newer identity of this enrollment, which alone may send ${messageType}`,
        403,
        'identity-retired',
      );
    if (ctx.certificate.id === current && previous) {
      // The renewed identity is in use: the one it replaced is retired now.
      const retired = await this.deps.store.promoteIdentity(channel.deviceId);
      await this.deps.audit.record({
        actor: `device:${channel.deviceId}`,
        action: 'mdm.identity-superseded',
        target: channel.deviceId,
        outcome: 'ok',
        reason: 'the renewed identity was seen on a later message',
        detail: { retired, current: ctx.certificate.fingerprintSha256 },
      });
    }
  }

  async checkIn(ctx: RequestContext, message: CheckIn): Promise<MdmResult> {
    if (message.type === 'Authenticate') {
      if (message.channel.user) throw new PolicyRefusal('Authenticate comes on the device channel only', 400);
      try {
        return await this.next.checkIn(ctx, message);
      } catch (err) {
        // The binding policy ran inside the store's transaction and changed nothing.
        if (err instanceof BindingRefused) throw new PolicyRefusal(err.message, 403, err.reason);
        throw err;
      }
    }
    await this.#requireBound(ctx, message.channel, message.type);
    return this.next.checkIn(ctx, message);
  }

  async report(ctx: RequestContext, report: CommandReport): Promise<MdmResult> {
    await this.#requireBound(ctx, report.channel);
    return this.next.report(ctx, report);
  }
}
