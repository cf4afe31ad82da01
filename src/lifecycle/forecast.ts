import { DAY_MS, isoDay as day } from '../clock.ts';
import type { CheckInRhythm } from '../store/types.ts';
import type { CertificateFact, LifecyclePolicy } from './model.ts';

/**
 * "If every device keeps its observed check-in rhythm, who is lost in the next N days, and why": each device's next
 * check-ins projected from its last one and its typical gap, played against what the lifecycle engine will do and
 * what nobody will do for it. Pure: facts in, a verdict per device out, no clock, no store, no cryptography — the
 * same function answers `certmdm lifecycle forecast` and the console's Forecast page.
 *
 * What is assumed: the lifecycle runner does its part on time (it renews identities when their window opens and
 * rolls the server's own certificates over); an administrator does nothing (the push certificate and a proxy's TLS
 * certificate are theirs to renew, so their expiry counts); a device checks in only when woken, so after the push
 * certificate expires none does.
 */
export interface ForecastDevice {
  id: string;
  name: string | null;
  serial: string | null;
  identity: CertificateFact | null;
  /** Roots the device may use for ServerURL (the planner's anchors). */
  anchors: string[];
  lastSeenAt: Date;
  rhythm: CheckInRhythm;
  renewalStartedAt: Date | null;
  renewalAttempts: number;
}

export interface ForecastInput {
  now: Date;
  days: number;
  devices: ForecastDevice[];
  policy: LifecyclePolicy;
  /** The lifetime of an identity issued now (ms). */
  identityLifetime: number;
  /** `--rescue-grace-days` in ms (0: off). */
  rescueGrace: number;
  /** The push certificate, if one is installed: APNs wakes no device after it expires. */
  push: CertificateFact | null;
  /** The root the TLS chain ends in, and a successor already made (a rollover in progress), if any. */
  tlsRoot: CertificateFact;
  rootSuccessor: CertificateFact | null;
  /** A TLS chain certmdm does not manage (a proxy's, from the last probe): its first expiry cuts every device off. */
  foreignChain: { url: string; subject: string; notAfter: Date } | null;
}

export type LossCause = 'identity-expires' | 'renewal-declined' | 'push-expires' | 'root-switch' | 'proxy-certificate';

export interface ForecastLoss {
  deviceId: string;
  name: string | null;
  serial: string | null;
  /** When the device can no longer reach certmdm. */
  lostAt: Date;
  cause: LossCause;
  /** The certificate that costs the device, in words ("identity CN=… expiring 2027-02-03"). */
  certificate: string;
  why: string;
  /** The rhythm the verdict assumed. */
  gapDays: number;
  lastSeenAt: Date;
}

export interface Forecast {
  from: Date;
  until: Date;
  days: number;
  devices: number;
  lost: ForecastLoss[];
  /** Devices whose identity is renewed in the window, as the rhythm predicts (they are fine). */
  renewals: number;
  assumptions: string[];
}

const HOUR_MS = 3_600_000;

/**
 * The gap the forecast assumes: the typical one seen. A device seen in one session only has no rhythm yet: it is
 * assumed to stay away, from now, as long again as it has been away so far (at least a day).
 */
export function assumedGap(device: Pick<ForecastDevice, 'rhythm' | 'lastSeenAt'>, now: Date): number {
  const gap = device.rhythm.typicalGapMs ?? Math.max(now.getTime() - device.lastSeenAt.getTime(), DAY_MS);
  return Math.max(gap, HOUR_MS);
}

/** The device's first projected check-in at or after `t`: on the rhythm's grid, anchor + k × gap for k ≥ 1. */
function nextCheckIn(anchor: number, gap: number, t: number): number {
  return anchor + Math.max(1, Math.ceil((t - anchor) / gap)) * gap;
}

export function forecast(input: ForecastInput): Forecast {
  const now = input.now.getTime();
  const until = now + input.days * DAY_MS;
  const pushEnds = input.push ? input.push.notAfter.getTime() : Infinity;
  const lost: ForecastLoss[] = [];
  let renewals = 0;

  // A root rollover that must happen in the window: devices need a check-in between the successor and the switch.
  const root = input.tlsRoot;
  const rootLife = root.notAfter.getTime() - root.notBefore.getTime();
  const switchAt = root.notAfter.getTime() - input.policy.rootSwitchDeadlineAt * rootLife;
  const successorAt = input.rootSuccessor
    ? Math.max(now, input.rootSuccessor.notBefore.getTime())
    : root.notAfter.getTime() - input.policy.rootRolloverAt * rootLife;

  for (const device of input.devices) {
    const gap = assumedGap(device, input.now);
    const seen = device.lastSeenAt.getTime();
    // The grid the check-ins are projected on: from the last one, or from now for a device without a rhythm.
    const anchor = device.rhythm.typicalGapMs === null ? now : seen;
    const base = {
      deviceId: device.id,
      name: device.name,
      serial: device.serial,
      gapDays: Math.round((gap / DAY_MS) * 10) / 10,
      lastSeenAt: device.lastSeenAt,
    };
    const rhythm = `checks in about every ${formatGap(gap)}${device.rhythm.typicalGapMs === null ? ' (one session so far: assumed away as long again)' : ''}, last ${day(device.lastSeenAt)}`;
    const losses: ForecastLoss[] = [];

    // Whoever checks in next after `t`, before the push certificate ends (no wake-ups after).
    const checkInAfter = (t: number): number | null => {
      const next = nextCheckIn(anchor, gap, Math.max(t, now));
      return next < pushEnds ? next : null;
    };

    if (input.foreignChain && input.foreignChain.notAfter.getTime() <= until) {
      const at = input.foreignChain.notAfter;
      losses.push({
        ...base,
        lostAt: at,
        cause: 'proxy-certificate',
        certificate: `${input.foreignChain.subject} presented at ${input.foreignChain.url}`,
        why: `the TLS certificate presented at ${input.foreignChain.url} is not certmdm's and expires ${day(at)}; certmdm cannot renew it`,
      });
    }

    if (device.identity) {
      let identity = { notBefore: device.identity.notBefore.getTime(), notAfter: device.identity.notAfter.getTime() };
      // A renewal in flight that the device has been seen through without installing: it is declining the profile.
      const declining =
        device.renewalStartedAt !== null && device.renewalAttempts > 0 && seen - device.renewalStartedAt.getTime() >= Math.min(gap, DAY_MS);
      // Renewal after renewal until the window ends (bounded: a lifetime is at least an hour).
      for (let guard = 0; guard < 10_000; guard++) {
        const opens = identity.notAfter - input.policy.identityRenewAt * (identity.notAfter - identity.notBefore);
        const deadline = identity.notAfter + input.rescueGrace;
        if (opens > until) break;
        const renewedAt = declining && guard === 0 ? null : checkInAfter(opens);
        if (renewedAt !== null && renewedAt < deadline) {
          if (renewedAt <= until) renewals++;
          identity = { notBefore: renewedAt, notAfter: renewedAt + input.identityLifetime };
          continue;
        }
        const lostAt = new Date(deadline);
        if (lostAt.getTime() > until) break;
        const grace = input.rescueGrace > 0 ? ` and the rescue grace ends ${day(lostAt)}` : '';
        const certificate = `identity expiring ${day(new Date(identity.notAfter))}`;
        if (declining && guard === 0)
          losses.push({
            ...base,
            lostAt,
            cause: 'renewal-declined',
            certificate,
            why: `seen since its renewal started ${day(device.renewalStartedAt!)} but has not installed the renewal profile (${device.renewalAttempts} sent; NotNow or an error); the identity expires ${day(new Date(identity.notAfter))}${grace}`,
          });
        else if (pushEnds < deadline && nextCheckIn(anchor, gap, Math.max(opens, now)) < deadline)
          losses.push({
            ...base,
            lostAt,
            cause: 'push-expires',
            certificate,
            why: `its renewal window opens ${day(new Date(opens))}, after the push certificate expires ${day(new Date(pushEnds))}: APNs can no longer wake it to renew (renew the push certificate)`,
          });
        else
          losses.push({
            ...base,
            lostAt,
            cause: 'identity-expires',
            certificate,
            why: `${rhythm}: no check-in expected between its renewal window opening ${day(new Date(opens))} and ${day(lostAt)} (identity expires ${day(new Date(identity.notAfter))}${grace})`,
          });
        break;
      }
    }

    const hasSuccessor = input.rootSuccessor !== null && device.anchors.includes(input.rootSuccessor.id);
    if (switchAt <= until && !hasSuccessor) {
      const delivered = checkInAfter(successorAt);
      if (delivered === null || delivered >= switchAt)
        losses.push({
          ...base,
          lostAt: new Date(switchAt),
          cause: 'root-switch',
          certificate: `root expiring ${day(root.notAfter)}`,
          why: `the TLS chain moves to the successor root by ${day(new Date(switchAt))}; ${rhythm}, so it is not expected to receive the successor (made ${day(new Date(successorAt))}) before then`,
        });
    }

    const first = losses.sort((a, b) => a.lostAt.getTime() - b.lostAt.getTime())[0];
    if (first) lost.push(first);
  }

  lost.sort((a, b) => a.lostAt.getTime() - b.lostAt.getTime() || a.deviceId.localeCompare(b.deviceId));
  return {
    from: input.now,
    until: new Date(until),
    days: input.days,
    devices: input.devices.length,
    lost,
    renewals,
    assumptions: [
      'each device checks in at its observed rhythm: its last check-in plus multiples of its typical gap; a device seen in one session only stays away, from now, as long again as it has been away',
      "the lifecycle runner renews each identity when its renewal window opens and rolls certmdm's own certificates over on time",
      "nobody renews the push certificate or a proxy's TLS certificate in the window; no device checks in after the push certificate expires",
      input.rescueGrace > 0
        ? `an identity expired less than ${Math.round(input.rescueGrace / DAY_MS)} days ago is still rescued`
        : 'no rescue grace',
    ],
  };
}

export function formatGap(ms: number): string {
  return ms >= DAY_MS ? `${Math.round((ms / DAY_MS) * 10) / 10} days` : `${Math.round(ms / HOUR_MS)} hours`;
}

export function formatForecast(f: Forecast): string {
  const lines = [
    `Forecast ${day(f.from)} to ${day(f.until)} (${f.days} days), ${f.devices} enrolled device(s), if each keeps its observed check-in rhythm:`,
    f.lost.length === 0 ? '  no device is lost' : `  ${f.lost.length} device(s) lost:`,
    ...f.lost.map(
      (l) => `  ${day(l.lostAt)}  ${l.deviceId}${l.name ? ` (${l.name})` : ''}  ${l.cause}  ${l.certificate}\n              why: ${l.why}`,
    ),
    `  ${f.renewals} identity renewal(s) expected in the window`,
    'assumptions:',
    ...f.assumptions.map((a) => `  - ${a}`),
  ];
  return lines.join('\n');
}
