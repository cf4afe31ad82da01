/** Runs `fn` repeatedly for about `ms` milliseconds (after a short warm-up) and returns operations per second. */
export async function rate(fn: () => unknown | Promise<unknown>, ms = 1500): Promise<number> {
  const warmUntil = performance.now() + Math.min(200, ms / 5);
  while (performance.now() < warmUntil) await fn();
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    await fn();
    n++;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

export interface BenchRow {
  figure: string;
  value: number;
  unit: string;
  limitName: string;
  limit: number;
  /** When set, the row says whether the figure meets it. */
  target?: { max?: number; min?: number; text: string };
}

export function printRows(rows: BenchRow[]): void {
  const table = rows.map((r) => [
    r.figure,
    `${r.value.toFixed(r.value < 10 ? 3 : 1)} ${r.unit}`,
    `${r.limit.toFixed(r.limit < 10 ? 3 : 1)} ${r.unit} (${r.limitName})`,
    `${((r.value / r.limit) * 100).toFixed(1)}%`,
    !r.target
      ? ''
      : (r.target.max === undefined || r.value <= r.target.max) && (r.target.min === undefined || r.value >= r.target.min)
        ? `meets ${r.target.text}`
        : `MISSES ${r.target.text}`,
  ]);
  const header = ['figure', 'certmdm', 'machine limit', 'ratio', 'target'];
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
  for (const line of [header, ...table]) console.log(line.map((c, i) => c.padEnd(widths[i]!)).join('  '));
}
