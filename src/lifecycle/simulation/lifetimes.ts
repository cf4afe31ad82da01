import { LIFETIME_DEFAULTS } from '../../config.ts';

/** Every lifetime a simulated server runs with: the production defaults unless a flag changes one. */
export interface SimulatedLifetimes {
  identityDays: number;
  tlsDays: number;
  tlsRenewBeforeDays: number;
  intermediateDays: number;
  rootDays: number;
  /** Profile signing and the SCEP RA. */
  signingDays: number;
  challengeTtlHours: number;
}

/**
 * The production defaults, every one multiplied by `scale` (0.25: the same ratios in a quarter of the time), rounded
 * to what the server's flags take.
 */
export function productionLifetimes(scale = 1): SimulatedLifetimes {
  const { identityDays, tlsDays, tlsRenewBeforeDays, intermediateDays, rootDays, signingDays, challengeTtlHours } = LIFETIME_DEFAULTS;
  return scaleLifetimes({ identityDays, tlsDays, tlsRenewBeforeDays, intermediateDays, rootDays, signingDays, challengeTtlHours }, scale);
}

/** Every lifetime times `scale`, the ratios kept; rounded to what the server's flags take. */
export function scaleLifetimes(base: SimulatedLifetimes, scale: number): SimulatedLifetimes {
  const days = (d: number, least = 1) => Math.max(least, Math.round(d * scale));
  return {
    identityDays: base.identityDays * scale,
    tlsDays: days(base.tlsDays),
    tlsRenewBeforeDays: days(base.tlsRenewBeforeDays, 0),
    intermediateDays: days(base.intermediateDays, 7),
    rootDays: days(base.rootDays, 30),
    signingDays: days(base.signingDays),
    challengeTtlHours: days(base.challengeTtlHours),
  };
}

/**
 * The stress ratios: identities a quarter of production's, with a CA that is short for them (intermediate four
 * identity lifetimes, root eight, TLS barely longer than an identity), so every kind of rollover happens often.
 */
export const STRESS_LIFETIMES: SimulatedLifetimes = {
  ...productionLifetimes(90 / 365),
  identityDays: 90,
  tlsDays: 120,
  intermediateDays: 365,
  rootDays: 730,
};

export const LIFETIME_PRESETS = { production: productionLifetimes(), stress: STRESS_LIFETIMES } as const;
