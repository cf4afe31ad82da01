/** Time is injected everywhere so the simulator and tests can move it. */
export type Clock = () => Date;
export const systemClock: Clock = () => new Date();

/** A date as YYYY-MM-DD (UTC), as every report prints it. */
export const isoDay = (d: Date): string => d.toISOString().slice(0, 10);

export const DAY_MS = 86_400_000;
export function addDays(at: Date, days: number): Date {
  return new Date(at.getTime() + days * DAY_MS);
}
