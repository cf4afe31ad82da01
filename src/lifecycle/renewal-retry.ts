import type { CheckIn, CommandReport } from '../mdm/messages.ts';
import type { MdmResult, MdmService, RequestContext } from '../mdm/service.ts';
import type { Store } from '../store/types.ts';
import { IMMEDIATE_RETRIES, type IdentityRenewal } from './renewal.ts';

/**
 * A decorator on the MDM service: when a device reports Error for its renewal profile, a fresh one is queued before
 * the session goes on, so the device gets its retry while it is online (it may not be again before its identity
 * expires). A few failures in a row are retried at once; after that the lifecycle runner's backoff decides.
 */
export class RenewalRetryService implements MdmService {
  constructor(
    private readonly next: MdmService,
    private readonly deps: { store: Store; renewal: IdentityRenewal },
  ) {}

  checkIn(ctx: RequestContext, message: CheckIn): Promise<MdmResult> {
    return this.next.checkIn(ctx, message);
  }

  async report(ctx: RequestContext, report: CommandReport): Promise<MdmResult> {
    if (report.status === 'Error' && report.commandUuid && !report.channel.user) {
      const enrollment = await this.deps.store.getEnrollment(report.channel.deviceId);
      if (enrollment?.renewalCommandUuid === report.commandUuid && enrollment.renewalAttempts <= IMMEDIATE_RETRIES)
        await this.deps.renewal.send(enrollment, ctx.now, 'lifecycle:retry');
    }
    return this.next.report(ctx, report);
  }
}
