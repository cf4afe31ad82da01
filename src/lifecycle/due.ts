import { DAY_MS } from '../clock.ts';
import { caThresholds, type CaThresholds } from './lifetimes.ts';
import type { CertificateFact, DeviceFact, LifecyclePolicy, LifecycleState } from './model.ts';

/**
 * When each planner rule falls due, as the first instant (whole milliseconds, as every Date is) at which its
 * condition holds. The planner asks "is now at or past this?", and the schedule shows the same dates, so a date an
 * administrator reads is exactly the day the runner acts — the two cannot drift apart.
 */

/** Before every real date: a rule whose condition already holds whatever the clock says. */
export const ALWAYS = new Date(-8.64e15);

export function lifetime(c: CertificateFact): number {
  return c.notAfter.getTime() - c.notBefore.getTime();
}

/**
 * The first whole millisecond at which no more than `left` ms of the certificate remain (`notAfter - now <= left`).
 * Found from the rounded estimate and settled against that very comparison, so a fractional threshold (a share of a
 * lifetime) gives exactly the instant the comparison first holds, whatever the floating-point rounding.
 */
export function whenLeft(c: CertificateFact, left: number): Date {
  const end = c.notAfter.getTime();
  return new Date(firstInstant(Math.ceil(end - left), (t) => end - t <= left));
}

/** The first whole millisecond from which `holds` is true, near `estimate`; `holds` must stay true once it is. */
function firstInstant(estimate: number, holds: (t: number) => boolean): number {
  let t = estimate;
  while (!holds(t)) t += 1;
  while (holds(t - 1)) t -= 1;
  return t;
}

/** When no more than `share` of the certificate's lifetime is left. */
export function whenShareLeft(c: CertificateFact, share: number): Date {
  return whenLeft(c, lifetime(c) * share);
}

export function reached(now: Date, at: Date | null): boolean {
  return at !== null && now.getTime() >= at.getTime();
}

/** A device identity's renewal window opens here. */
export function identityRenewalDue(identity: CertificateFact, policy: LifecyclePolicy): Date {
  return whenShareLeft(identity, policy.identityRenewAt);
}

/** A renewal in flight since `startedAt` that has not completed puts the device at risk from here (strictly after its share). */
export function renewalOverdueAt(identity: CertificateFact, startedAt: Date, policy: LifecyclePolicy): Date {
  const started = startedAt.getTime();
  const allowed = lifetime(identity) * policy.renewalOverdueAfter;
  return new Date(firstInstant(Math.floor(started + allowed) + 1, (t) => t - started > allowed));
}

/** The root the server's TLS chain ends in: the one whose end the CA thresholds are measured against. */
export function currentRoot(state: LifecycleState): CertificateFact | undefined {
  return state.roots.find((r) => r.id === state.tlsRootId) ?? state.roots[0];
}

export function thresholdsOf(state: LifecycleState, policy: LifecyclePolicy): CaThresholds {
  const root = currentRoot(state);
  return caThresholds(
    { identity: state.identityLifetime, intermediate: lifetime(state.intermediate), root: root ? lifetime(root) : 0 },
    policy,
  );
}

/**
 * The intermediate rolls once it has the rollover threshold left, but only while the root has more than that left:
 * under a root that is running out, replacing the intermediate is the root rollover's job. Null when that window
 * never opens.
 */
export function intermediateRolloverDue(state: LifecycleState, thresholds: CaThresholds): Date | null {
  const root = currentRoot(state);
  if (!root) return null;
  const opens = whenLeft(state.intermediate, thresholds.intermediateRollover);
  return opens < intermediateRolloverCloses(root, thresholds) ? opens : null;
}

/** From here the root has no more than the rollover threshold left, and the intermediate is no longer rolled. */
export function intermediateRolloverCloses(root: CertificateFact, thresholds: CaThresholds): Date {
  return whenLeft(root, thresholds.intermediateRollover);
}

/** The successor root is made here (when there is none yet). */
export function rootSuccessorDue(root: CertificateFact, thresholds: CaThresholds): Date {
  return whenLeft(root, thresholds.rootSuccessor);
}

/** Devices that still lack the successor root and have an identity (expired or not): the switch waits for them. */
export function lackingSuccessor(devices: DeviceFact[], successorId: string): DeviceFact[] {
  return devices.filter((d) => !d.anchors.includes(successorId) && d.identity !== null);
}

/**
 * The TLS chain switches to the successor root at the deadline, or earlier once no device still waits for it: a
 * device whose identity has expired can never connect to install the root, so from its identity's end it is not
 * waited for. If nothing changes, the last waiting device stops counting when the last of their identities ends.
 */
export function rootSwitchDue(current: CertificateFact, lacking: DeviceFact[], thresholds: CaThresholds): Date {
  const deadline = whenLeft(current, thresholds.rootSwitch);
  if (lacking.length === 0) return ALWAYS;
  const lastWaitedFor = Math.max(...lacking.map((d) => d.identity!.notAfter.getTime()));
  return lastWaitedFor < deadline.getTime() ? new Date(lastWaitedFor) : deadline;
}

/** Devices still lacking the successor root are named at risk from halfway through its delivery window. */
export function rootDeliveryAtRiskFrom(current: CertificateFact, thresholds: CaThresholds): Date {
  return whenLeft(current, thresholds.rootSwitch + (thresholds.rootSuccessor - thresholds.rootSwitch) / 2);
}

/** The server TLS certificate: in its share, or at once when it outlives the intermediate (a leaf must not). */
export function tlsReissueDue(tls: CertificateFact, intermediate: CertificateFact, policy: LifecyclePolicy): Date {
  return tls.notAfter > intermediate.notAfter ? ALWAYS : whenShareLeft(tls, policy.tlsRenewAt);
}

/** The first push expiry warning (the largest of the warning days); null without warning days. */
export function pushWarningDue(push: CertificateFact, policy: LifecyclePolicy): Date | null {
  if (policy.pushWarningDays.length === 0) return null;
  return whenLeft(push, Math.max(...policy.pushWarningDays) * DAY_MS);
}

/** Each push warning's date, largest lead first. */
export function pushWarnings(push: CertificateFact, policy: LifecyclePolicy): { days: number; at: Date }[] {
  return [...policy.pushWarningDays].sort((a, b) => b - a).map((days) => ({ days, at: whenLeft(push, days * DAY_MS) }));
}
