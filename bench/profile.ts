import { Session } from 'node:inspector/promises';

/** CERTMDM_BENCH_PROFILE=1 npm run bench: prints the top self-time functions of one measured section. */
const session = new Session();

export async function start(): Promise<void> {
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
}

export async function stop(label: string): Promise<void> {
  const { profile } = await session.post('Profiler.stop');
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  profile.samples?.forEach((id, i) => {
    const frame = byId.get(id)!.callFrame;
    const key = `${frame.functionName || '(anonymous)'} ${frame.url.split('/').slice(-2).join('/')}:${frame.lineNumber}`;
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas?.[i] ?? 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  console.error(`profile ${label}:`);
  for (const [key, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.error(`  ${((t / total) * 100).toFixed(1)}%  ${key}`);
  session.disconnect();
}
