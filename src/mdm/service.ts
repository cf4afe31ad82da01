import type { CertificateRecord } from '../store/types.ts';
import type { IdentitySource } from './identity.ts';
import type { CheckIn, CommandReport } from './messages.ts';
import type { RescueGrant } from './rescue-policy.ts';

/** What the edge established about a request before the service sees it. */
export interface RequestContext {
  certificate: CertificateRecord;
  sources: IdentitySource[];
  peer: string;
  now: Date;
  /** The raw body, for stored results and webhooks. */
  raw: Buffer;
  /** Set when the identity expired within the rescue grace: the request may only fetch and report its renewal. */
  rescue?: RescueGrant | null;
}

export interface MdmResult {
  status: number;
  contentType?: string;
  body?: Buffer | string;
}

export const OK: MdmResult = { status: 200 };

/**
 * The MDM service: one method per thing a device says (check-in messages and command reports). Policies such as
 * certificate binding and webhooks wrap a service and call `next`, so each concern stays in one place.
 */
export interface MdmService {
  checkIn(ctx: RequestContext, message: CheckIn): Promise<MdmResult>;
  report(ctx: RequestContext, report: CommandReport): Promise<MdmResult>;
}

/** A refusal a policy made: the edge audits it and answers with `status` (never 401; see cert-auth.ts). */
export class PolicyRefusal extends Error {
  constructor(
    message: string,
    readonly status: 400 | 403 | 404 | 410 | 501,
    /** A named reason for the audit log and, for identity refusals, the webhook (`mdm.IdentityRefused`). */
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'PolicyRefusal';
  }
}
