import { DAY_MS } from '../clock.ts';
import {
  currentRoot,
  identityRenewalDue,
  intermediateRolloverCloses,
  intermediateRolloverDue,
  lackingSuccessor,
  reached,
  renewalOverdueAt,
  rootDeliveryAtRiskFrom,
  rootSuccessorDue,
  rootSwitchDue,
  pushWarningDue,
  thresholdsOf,
  tlsReissueDue,
  whenShareLeft,
} from './due.ts';
import type { Action, CertificateFact, LifecyclePolicy, LifecycleState } from './model.ts';

function days(ms: number): string {
  return `${Math.max(0, Math.round(ms / DAY_MS))} days`;
}

/**
 * The lifecycle plan: a pure function of the facts and the clock. It says what must happen, to what, and by when;
 * a runner carries it out with the store, the clock and APNs injected. Actions come soonest deadline first.
 */
export function plan(state: LifecycleState, policy: LifecyclePolicy): Action[] {
  const { now } = state;
  const actions: Action[] = [];
  const left = (c: CertificateFact) => days(c.notAfter.getTime() - now.getTime());

  // Every rule below asks due.ts when it falls due, the same dates `lifecycle plan` shows as the schedule.
  // Thresholds as time left (lifetimes.ts): an identity is never cut short by an intermediate or root near its end.
  const thresholds = thresholdsOf(state, policy);

  // Leaves never outlive the intermediate: roll it while it still has an identity lifetime and window left, under a
  // root with more than that left (when the root is what runs out, that is the root rollover's job).
  const root = currentRoot(state);
  if (root && reached(now, intermediateRolloverDue(state, thresholds)) && now < intermediateRolloverCloses(root, thresholds)) {
    actions.push({
      kind: 'rollover-intermediate',
      deadline: state.intermediate.notAfter,
      reason: `the intermediate has ${left(state.intermediate)} left`,
    });
  }

  const current = root;
  const successor = state.roots.at(-1);
  if (current && successor) {
    if (successor.id === current.id && reached(now, rootSuccessorDue(current, thresholds))) {
      actions.push({
        kind: 'create-root-successor',
        deadline: current.notAfter,
        reason: `the root devices trust has ${left(current)} left`,
      });
    }
    if (successor.id !== current.id) {
      // Devices whose identity has already expired cannot connect again (they are reported at risk): not waited for.
      const lacking = lackingSuccessor(state.devices, successor.id).filter((d) => d.identity!.notAfter > now);
      // The switch happens at the latest when the current root can no longer carry an intermediate for a full identity.
      const switchBy = new Date(current.notAfter.getTime() - thresholds.rootSwitch);
      // Devices still lacking the successor halfway through the delivery window are named at risk.
      const atRisk = reached(now, rootDeliveryAtRiskFrom(current, thresholds));
      for (const d of lacking) {
        actions.push({
          kind: 'deliver-root',
          deviceId: d.id,
          rootId: successor.id,
          deadline: switchBy,
          reason: 'the successor root is not on the device yet',
        });
        if (atRisk) {
          actions.push({
            kind: 'device-at-risk',
            deviceId: d.id,
            dependency: 'root',
            deadline: switchBy,
            reason: 'it has not installed the successor root, and the TLS chain switches to it by the deadline',
          });
        }
      }
      if (reached(now, rootSwitchDue(current, lacking, thresholds))) {
        actions.push({
          kind: 'switch-tls-root',
          rootId: successor.id,
          deadline: current.notAfter,
          stragglers: lacking.map((d) => d.id),
          reason:
            lacking.length === 0
              ? 'every active device has the successor root'
              : `deadline reached; ${lacking.length} device(s) lack the successor root and will be lost`,
        });
      }
    }
  }

  if (state.tls && reached(now, tlsReissueDue(state.tls, state.intermediate, policy))) {
    actions.push({ kind: 'reissue-tls', deadline: state.tls.notAfter, reason: `the server TLS certificate has ${left(state.tls)} left` });
  }
  if (state.profileSigning && reached(now, whenShareLeft(state.profileSigning, policy.profileSigningRenewAt))) {
    actions.push({
      kind: 'reissue-profile-signing',
      deadline: state.profileSigning.notAfter,
      reason: `the profile-signing certificate has ${left(state.profileSigning)} left`,
    });
  }
  // A device enrolling or renewing fetches the RA by GetCACert and refuses an expired one: no SCEP, no new identity.
  if (state.scepRa && reached(now, whenShareLeft(state.scepRa, policy.scepRaRenewAt))) {
    actions.push({
      kind: 'reissue-scep-ra',
      deadline: state.scepRa.notAfter,
      reason: `the SCEP RA certificate has ${left(state.scepRa)} left`,
    });
  }
  if (state.push && reached(now, pushWarningDue(state.push, policy))) {
    actions.push({
      kind: 'push-certificate-expiring',
      deadline: state.push.notAfter,
      reason: `the APNs certificate has ${left(state.push)} left: renew it with the same Apple ID`,
    });
  }

  for (const device of state.devices) {
    const identity = device.identity;
    if (!identity) continue;
    if (!reached(now, identityRenewalDue(identity, policy))) continue;
    const expired = identity.notAfter <= now;
    // Expired less than the rescue grace ago: the edge still hands the device its renewal profile, so the renewal is
    // kept pending (and pushed) until the grace ends, the date the device is really lost.
    const rescueEnds = new Date(identity.notAfter.getTime() + (state.rescueGrace ?? 0));
    const rescuable = expired && rescueEnds > now;
    const overdue = device.renewalStartedAt !== null && reached(now, renewalOverdueAt(identity, device.renewalStartedAt, policy));
    if (overdue || expired) {
      actions.push({
        kind: 'device-at-risk',
        deviceId: device.id,
        dependency: 'identity',
        deadline: rescuable ? rescueEnds : identity.notAfter,
        reason: rescuable
          ? `its identity certificate expired ${days(now.getTime() - identity.notAfter.getTime())} ago; in rescue until ${rescueEnds.toISOString()}: it is served only its renewal profile`
          : expired
            ? 'its identity certificate has expired'
            : `its identity renewal started ${days(now.getTime() - device.renewalStartedAt!.getTime())} ago and has not completed; last seen ${device.lastSeenAt.toISOString()}`,
      });
    }
    if (!expired || rescuable) {
      actions.push({
        kind: 'renew-identity',
        deviceId: device.id,
        deadline: rescuable ? rescueEnds : identity.notAfter,
        reason: rescuable
          ? `in rescue: its identity certificate expired ${days(now.getTime() - identity.notAfter.getTime())} ago, ${days(rescueEnds.getTime() - now.getTime())} of grace left`
          : `its identity certificate has ${left(identity)} left`,
      });
    }
  }
  return actions.sort((a, b) => a.deadline.getTime() - b.deadline.getTime());
}
