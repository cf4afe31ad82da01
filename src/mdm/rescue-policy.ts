import { DAY_MS } from '../clock.ts';
import type { CertificateRecord, EnrollmentRecord } from '../store/types.ts';

/**
 * What a rescued request may do: receive its enrollment's renewal profile and report on it, nothing else
 * (src/mdm/rescue.ts). Granted by the certificate verifier to an expired identity that passes `rescueDecision`.
 */
export interface RescueGrant {
  /** The enrollment (UDID or EnrollmentID) whose current identity the certificate is. */
  enrollmentId: string;
  /** The identity's notAfter. */
  expiredAt: Date;
  /** notAfter + grace: from then on the identity is refused like any expired one, and the device is lost. */
  graceEndsAt: Date;
}

/** What the decision reads: the presented certificate, the enrollment it is bound to, the clock and the grace. */
export interface RescueFacts {
  certificate: Pick<CertificateRecord, 'id' | 'role' | 'status' | 'supersededBy' | 'notAfter'>;
  /** The enrollment the certificate is bound to, if it ever authenticated. */
  boundTo: string | null;
  enrollment: Pick<EnrollmentRecord, 'id' | 'status' | 'identityCertificateId'> | null;
  now: Date;
  /** `--rescue-grace-days` in ms; 0 turns rescue off. */
  graceMs: number;
}

export type RescueDecision = { grant: RescueGrant } | { refuse: string };

/**
 * Whether an expired identity may be rescued. Only the one identity the device would still be using had it been
 * online — the enrollment's current, bound identity, never revoked or superseded — and only for `graceMs` after it
 * expired: anything else an expired certificate could be (a previous identity, one that never authenticated, an
 * evicted key's) stays refused as expired. Pure, like the binding policy; the verifier reads the facts.
 */
export function rescueDecision(facts: RescueFacts): RescueDecision {
  const { certificate, boundTo, enrollment, now, graceMs } = facts;
  if (graceMs <= 0) return { refuse: 'rescue is off (--rescue-grace-days 0)' };
  if (certificate.role !== 'device-identity') return { refuse: 'it is not a device identity' };
  if (certificate.status !== 'active' || certificate.supersededBy !== null)
    return { refuse: `it is ${certificate.status === 'active' ? 'superseded' : certificate.status}` };
  const graceEndsAt = new Date(certificate.notAfter.getTime() + graceMs);
  if (now >= graceEndsAt) return { refuse: `it expired more than ${Math.round(graceMs / DAY_MS)} days ago (--rescue-grace-days)` };
  if (boundTo === null) return { refuse: 'it never authenticated' };
  if (!enrollment || enrollment.id !== boundTo || enrollment.status !== 'enrolled') return { refuse: 'its enrollment is not enrolled' };
  if (enrollment.identityCertificateId !== certificate.id) return { refuse: "it is not its enrollment's current identity" };
  return { grant: { enrollmentId: boundTo, expiredAt: certificate.notAfter, graceEndsAt } };
}

/**
 * Where a device stands with its identity: `valid`; `rescued` (expired less than the grace ago: served only its
 * renewal profile); `lost` (expired beyond the grace, or rescue is off). The admin API shows it per device.
 */
export function identityStanding(notAfter: Date, now: Date, graceMs: number): 'valid' | 'rescued' | 'lost' {
  if (notAfter > now) return 'valid';
  return now.getTime() - notAfter.getTime() < graceMs ? 'rescued' : 'lost';
}
