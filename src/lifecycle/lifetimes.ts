import { DAY_MS } from '../clock.ts';
import type { LifecyclePolicy } from './model.ts';

/** Nominal lifetimes, in milliseconds, of what the CA issues. */
export interface Lifetimes {
  identity: number;
  intermediate: number;
  root: number;
}

/** Time left on each CA certificate at which it must be replaced; all in milliseconds. */
export interface CaThresholds {
  /** Roll the intermediate over when this much of it is left (and the root has more than this left). */
  intermediateRollover: number;
  /** Switch the TLS chain to the successor root at the latest when this much of the current root is left. */
  rootSwitch: number;
  /** Make the successor root when this much of the current root is left: the delivery window ends at the switch. */
  rootSuccessor: number;
}

/**
 * A certificate never outlives its issuer, so an identity issued from an intermediate with less than an identity
 * lifetime left is cut short — and renewed sooner than a device that is online once in a while can manage. The
 * intermediate is therefore rolled while it still has an identity lifetime plus the identity's renewal window left
 * (or its own share, if larger), and the TLS chain leaves a root while that root can still carry such an intermediate;
 * the successor root is made early enough for a delivery window of the usual share of the root's life before that.
 */
export function caThresholds(lifetimes: Lifetimes, policy: LifecyclePolicy): CaThresholds {
  const intermediateRollover = Math.max(
    policy.intermediateRolloverAt * lifetimes.intermediate,
    (1 + policy.identityRenewAt) * lifetimes.identity,
  );
  const rootSwitch = Math.max(policy.rootSwitchDeadlineAt * lifetimes.root, (1 + policy.identityRenewAt) * lifetimes.identity);
  const delivery = (policy.rootRolloverAt - policy.rootSwitchDeadlineAt) * lifetimes.root;
  return { intermediateRollover, rootSwitch, rootSuccessor: Math.max(policy.rootRolloverAt * lifetimes.root, rootSwitch + delivery) };
}

const days = (ms: number) => `${Math.ceil(ms / DAY_MS)}`;

/** Why these lifetimes cannot be served without cutting identities short, in one line; undefined when they can. */
export function unservableLifetimes(lifetimes: Lifetimes, policy: LifecyclePolicy): string | undefined {
  const t = caThresholds(lifetimes, policy);
  if (lifetimes.intermediate <= t.intermediateRollover + DAY_MS)
    return (
      `--intermediate-days ${days(lifetimes.intermediate)} cannot serve --identity-days ${days(lifetimes.identity)}: ` +
      `an intermediate must outlive an identity plus its renewal window by more than a day (at least ${days(t.intermediateRollover + 2 * DAY_MS)} days)`
    );
  if (lifetimes.root <= t.rootSuccessor + DAY_MS)
    return (
      `--root-days ${days(lifetimes.root)} cannot serve --intermediate-days ${days(lifetimes.intermediate)} and --identity-days ${days(lifetimes.identity)}: ` +
      `its successor would be due ${days(t.rootSuccessor)} days before its end`
    );
  return undefined;
}
