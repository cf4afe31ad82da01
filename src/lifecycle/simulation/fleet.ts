/**
 * Who the simulated devices are and when they are reachable. Pure and seeded: device i of seed S has the same
 * behaviour and the same online days whichever process simulates it, so a fleet can be split across processes.
 *
 * MDM devices do not poll: they connect when APNs wakes them, and a push sent while a device is offline is delivered
 * when it comes back. A behaviour is therefore a pattern of *online days*; a device connects on an online day when a
 * push is waiting for it, and is otherwise not heard from.
 */
export type Behaviour = 'daily' | 'weekly' | 'monthly' | 'wanderer' | 'kiosk' | 'vanishing';

/** Shares of the fleet. Kiosks answer NotNow to every profile (single-app mode); vanishing devices stop for good. */
export const BEHAVIOUR_SHARES: ReadonlyArray<[Behaviour, number]> = [
  ['daily', 0.45],
  ['weekly', 0.3],
  ['monthly', 0.13],
  ['wanderer', 0.07],
  ['kiosk', 0.02],
  ['vanishing', 0.03],
];

/** Days between online days: at least, and up to this many more (people are not clockwork). */
const INTERVAL: Record<Behaviour, [number, number]> = {
  daily: [1, 0],
  weekly: [5, 4],
  monthly: [24, 9],
  wanderer: [2, 0],
  kiosk: [1, 0],
  vanishing: [1, 0],
};
/** Wanderers go away now and then for two weeks to four months. */
const WANDER = { chance: 0.08, minDays: 14, extraDays: 120 };
/** Devices join the fleet over its first month, not all on one day. */
export const ENROLLMENT_SPREAD_DAYS = 30;

/** mulberry32: a small seeded PRNG, so the same seed gives the same fleet and the same report. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An independent stream per device, derived from the run's seed and the device's index. */
export function deviceRandom(seed: number, index: number): () => number {
  return prng(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35));
}

/** Whether the device ever lets a profile be installed (a kiosk in single-app mode answers NotNow forever). */
export const acceptsProfiles = (behaviour: Behaviour): boolean => behaviour !== 'kiosk';

export interface FleetMember {
  index: number;
  udid: string;
  behaviour: Behaviour;
  random: () => number;
  enrollDay: number;
  availability: Availability;
}

export interface Availability {
  behaviour: Behaviour;
  /** The next online day at or after the last `advance`; Infinity once the device is gone for good. */
  nextOnline: number;
  lastOnline: number;
  /** Longest stretch between online days so far: a device is *reachable* when it never exceeded 30 days. */
  longestGap: number;
  /** The last day a vanishing device is online. */
  stopsAt: number;
  /** The simulation's last day: silences are counted up to it, not beyond. */
  horizon: number;
  random: () => number;
}

export function fleetMember(seed: number, index: number, horizon: number): FleetMember {
  const random = deviceRandom(seed, index);
  let r = random();
  const behaviour = BEHAVIOUR_SHARES.find(([, share]) => (r -= share) < 0)?.[0] ?? 'daily';
  const enrollDay = Math.floor(random() * Math.min(ENROLLMENT_SPREAD_DAYS, horizon));
  const stopsAt = behaviour === 'vanishing' ? enrollDay + Math.floor(random() * (horizon - enrollDay)) : Infinity;
  const first = enrollDay + 1 + Math.floor(random() * (INTERVAL[behaviour][0] + INTERVAL[behaviour][1]));
  return {
    index,
    udid: `SIM-${seed}-${String(index).padStart(6, '0')}`,
    behaviour,
    random,
    enrollDay,
    availability: {
      behaviour,
      nextOnline: first > stopsAt ? Infinity : first,
      lastOnline: enrollDay,
      longestGap: Math.min(first, horizon) - enrollDay,
      stopsAt,
      horizon,
      random,
    },
  };
}

/** Moves the schedule forward so that `nextOnline` is the first online day at or after `day`. */
export function advance(a: Availability, day: number): void {
  while (a.nextOnline < day) {
    a.lastOnline = a.nextOnline;
    const [least, spread] = INTERVAL[a.behaviour];
    let next = a.lastOnline + least + (spread ? Math.floor(a.random() * (spread + 1)) : 0);
    if (a.behaviour === 'wanderer' && a.random() < WANDER.chance) next += WANDER.minDays + Math.floor(a.random() * WANDER.extraDays);
    if (next > a.stopsAt) {
      a.nextOnline = Infinity;
      return;
    }
    a.longestGap = Math.max(a.longestGap, Math.min(next, a.horizon) - a.lastOnline);
    a.nextOnline = next;
  }
}

/** At the end of the horizon: the schedule played out; a vanished device's silence counts up to the end. */
export function finish(a: Availability): void {
  advance(a, a.horizon + 1);
  if (a.nextOnline === Infinity) a.longestGap = Math.max(a.longestGap, a.horizon - a.lastOnline);
}
