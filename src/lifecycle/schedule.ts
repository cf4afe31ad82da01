import { isoDay } from '../clock.ts';
import {
  currentRoot,
  identityRenewalDue,
  intermediateRolloverCloses,
  intermediateRolloverDue,
  lackingSuccessor,
  pushWarningDue,
  pushWarnings,
  renewalOverdueAt,
  rootDeliveryAtRiskFrom,
  rootSuccessorDue,
  rootSwitchDue,
  thresholdsOf,
  tlsReissueDue,
  whenShareLeft,
} from './due.ts';
import type { Action, CertificateFact, LifecyclePolicy, LifecycleState } from './model.ts';

/**
 * Every upcoming expiry the planner knows of, each with what depends on it and what the planner will do about it and
 * when. A pure function of the planner's own facts; every date comes from due.ts, the functions `plan()` decides
 * with, so `plan()` run on a date shown here produces the action and a day earlier does not.
 */

export type ScheduledRole = 'root' | 'intermediate' | 'tls' | 'profile-signing' | 'scep-ra' | 'push' | 'device-identity';

/** The profiles that carry or rely on a certificate: enrollment and renewal profiles embed the chain, trust the roots. */
export type ProfileKind = 'enrollment' | 'renewal' | 'trust';

export interface Dependants {
  /** Enrolled devices that lose their management if this certificate runs out unreplaced. */
  devices: number;
  profiles: ProfileKind[];
  /** How they depend on it, in a few words. */
  through: string;
}

export interface PlannedAction {
  kind: Action['kind'];
  /** When the planner takes it: the day its rule falls due, or now when it is already due. */
  at: Date;
  dueNow: boolean;
}

export interface ScheduledCertificate {
  role: ScheduledRole;
  id: string;
  notAfter: Date;
  /** For a device identity: its device. */
  deviceId?: string;
  dependants: Dependants;
  /** Null when nothing automatic replaces it: see `note`. */
  action: PlannedAction | null;
  note: string;
  /** For the push certificate: the days the planner warns (`push-certificate-expiring`), largest lead first. */
  warnings?: { days: number; at: Date }[];
}

export interface ExpiryGroup {
  /** YYYY-MM of notAfter. */
  month: string;
  identities: number;
  firstExpiry: Date;
  lastExpiry: Date;
  /** The earliest renewal the group needs, and whether any of it is already due. */
  firstRenewal: Date;
  dueNow: number;
}

export interface Schedule {
  at: Date;
  /** The server's certificates (roots, intermediate, TLS, profile signing, SCEP RA, push), soonest expiry first. */
  server: ScheduledCertificate[];
  /** Every device identity, soonest expiry first (the human output aggregates them: see `groupByMonth`). */
  identities: ScheduledCertificate[];
}

const CHAIN_PROFILES: ProfileKind[] = ['enrollment', 'renewal'];
const ALL_PROFILES: ProfileKind[] = ['enrollment', 'renewal', 'trust'];

/** The planner takes an action at its due date, or at once when that has passed. */
function planned(kind: Action['kind'], due: Date, now: Date): PlannedAction {
  return due <= now ? { kind, at: now, dueNow: true } : { kind, at: due, dueNow: false };
}

function atRiskNote(from: Date, now: Date): string {
  return `named at risk ${from <= now ? 'since' : 'from'} ${day(from)}`;
}

const day = isoDay;

export function schedule(state: LifecycleState, policy: LifecyclePolicy): Schedule {
  const { now } = state;
  const thresholds = thresholdsOf(state, policy);
  const withIdentity = state.devices.filter((d) => d.identity !== null).length;
  const enrolled = state.devices.length;
  const server: ScheduledCertificate[] = [];
  const entry = (
    role: ScheduledRole,
    c: CertificateFact,
    dependants: Dependants,
    action: PlannedAction | null,
    note: string,
  ): ScheduledCertificate => ({ role, id: c.id, notAfter: c.notAfter, dependants, action, note });

  const current = currentRoot(state);
  const successor = state.roots.at(-1);
  for (const root of state.roots) {
    // Every enrolled device reaches the server through the TLS chain ending in the current root; any other root
    // counts the devices that have installed it (for a successor: how far its delivery has come).
    const installed = state.devices.filter((d) => d.anchors.includes(root.id)).length;
    const dependants: Dependants =
      root.id === current?.id
        ? { devices: enrolled, profiles: ALL_PROFILES, through: 'the TLS chain and the identities end in it' }
        : { devices: installed, profiles: ALL_PROFILES, through: `installed on ${installed} of ${enrolled} devices` };
    if (root.id !== current?.id) {
      const next = root.id === successor?.id;
      server.push(
        entry(
          'root',
          root,
          dependants,
          null,
          next ? 'successor root: delivered to every device, then the TLS chain switches to it' : 'previous root: no longer issues',
        ),
      );
    } else if (successor && successor.id !== root.id) {
      const lacking = lackingSuccessor(state.devices, successor.id).filter((d) => d.identity!.notAfter > now);
      server.push(
        entry(
          'root',
          root,
          dependants,
          planned('switch-tls-root', rootSwitchDue(root, lacking, thresholds), now),
          lacking.length === 0
            ? 'every device has the successor root'
            : `at the latest then; earlier once the ${lacking.length} device(s) still lacking the successor have it (${atRiskNote(rootDeliveryAtRiskFrom(root, thresholds), now)})`,
        ),
      );
    } else {
      server.push(
        entry(
          'root',
          root,
          dependants,
          planned('create-root-successor', rootSuccessorDue(root, thresholds), now),
          'then delivered to every device before the TLS chain switches to it',
        ),
      );
    }
  }

  const rollover = intermediateRolloverDue(state, thresholds);
  const rolloverClosed = current !== undefined && now >= intermediateRolloverCloses(current, thresholds);
  server.push(
    entry(
      'intermediate',
      state.intermediate,
      { devices: withIdentity, profiles: ALL_PROFILES, through: 'issues every identity and the server certificates' },
      rollover && !rolloverClosed ? planned('rollover-intermediate', rollover, now) : null,
      rollover && !rolloverClosed
        ? 'a new intermediate under the same root; TLS, profile signing and the SCEP RA follow'
        : 'replaced by the root rollover: the root runs out first',
    ),
  );
  if (state.tls)
    server.push(
      entry(
        'tls',
        state.tls,
        { devices: enrolled, profiles: [], through: 'every device connection' },
        planned('reissue-tls', tlsReissueDue(state.tls, state.intermediate, policy), now),
        'swapped into the listener without a restart',
      ),
    );
  if (state.profileSigning)
    server.push(
      entry(
        'profile-signing',
        state.profileSigning,
        { devices: enrolled, profiles: ALL_PROFILES, through: 'signs every profile' },
        planned('reissue-profile-signing', whenShareLeft(state.profileSigning, policy.profileSigningRenewAt), now),
        '',
      ),
    );
  if (state.scepRa)
    server.push(
      entry(
        'scep-ra',
        state.scepRa,
        { devices: enrolled, profiles: CHAIN_PROFILES, through: 'SCEP for every enrollment and renewal' },
        planned('reissue-scep-ra', whenShareLeft(state.scepRa, policy.scepRaRenewAt), now),
        'swapped into GetCACert and CertRep signing',
      ),
    );
  if (state.push) {
    // Only Apple can renew it: the planner warns (`push-certificate-expiring`) and an administrator acts.
    const first = pushWarningDue(state.push, policy);
    server.push({
      ...entry(
        'push',
        state.push,
        { devices: enrolled, profiles: CHAIN_PROFILES, through: 'every push that wakes a device' },
        null,
        `none — operator: renew with Apple (same Apple ID and topic)${first ? `; warned at ${[...policy.pushWarningDays].sort((a, b) => b - a).join('/')} days left, from ${day(first)}` : ''}`,
      ),
      warnings: pushWarnings(state.push, policy),
    });
  }

  const identities: ScheduledCertificate[] = [];
  for (const device of state.devices) {
    const identity = device.identity;
    if (!identity) continue;
    const dependants: Dependants = { devices: 1, profiles: [], through: 'the device authenticates with it' };
    if (identity.notAfter <= now) {
      identities.push({ ...entry('device-identity', identity, dependants, null, 'expired: the device is lost'), deviceId: device.id });
      continue;
    }
    const note =
      device.renewalStartedAt === null
        ? 'renewal profile by InstallProfile'
        : `renewal in flight since ${day(device.renewalStartedAt)}; at risk from ${day(renewalOverdueAt(identity, device.renewalStartedAt, policy))}`;
    identities.push({
      ...entry('device-identity', identity, dependants, planned('renew-identity', identityRenewalDue(identity, policy), now), note),
      deviceId: device.id,
    });
  }
  const byExpiry = (a: ScheduledCertificate, b: ScheduledCertificate) => a.notAfter.getTime() - b.notAfter.getTime();
  return { at: now, server: server.sort(byExpiry), identities: identities.sort(byExpiry) };
}

/** Device identities per month of expiry: bounded output for any fleet size. */
export function groupByMonth(identities: ScheduledCertificate[]): ExpiryGroup[] {
  const groups = new Map<string, ExpiryGroup>();
  for (const i of identities) {
    const month = i.notAfter.toISOString().slice(0, 7);
    const renewal = i.action?.at ?? i.notAfter;
    const g = groups.get(month);
    if (!g) {
      groups.set(month, {
        month,
        identities: 1,
        firstExpiry: i.notAfter,
        lastExpiry: i.notAfter,
        firstRenewal: renewal,
        dueNow: i.action?.dueNow ? 1 : 0,
      });
      continue;
    }
    g.identities += 1;
    if (i.notAfter < g.firstExpiry) g.firstExpiry = i.notAfter;
    if (i.notAfter > g.lastExpiry) g.lastExpiry = i.notAfter;
    if (renewal < g.firstRenewal) g.firstRenewal = renewal;
    if (i.action?.dueNow) g.dueNow += 1;
  }
  return [...groups.values()].sort((a, b) => a.month.localeCompare(b.month));
}
