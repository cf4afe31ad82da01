import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startServer, tempDir, type RunningServer } from '../helpers/cli.ts';
import { startPostgres } from '../helpers/postgres.ts';

const INTERVAL_MINUTES = 0.03; // 1.8 s
const logLines = (s: RunningServer, msg: string) =>
  s
    .stdout()
    .split('\n')
    .filter((l) => l.includes(`"msg":"${msg}"`))
    .map((l) => JSON.parse(l) as { time: number });

async function until<T>(what: string, check: () => T | undefined, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('one instance runs the lifecycle engine; when it dies, the other takes over within one interval', async () => {
  const cluster = await startPostgres();
  after(() => cluster.stop());
  const store = await cluster.createDatabase();
  const dirs = [join(tempDir(), 'a'), join(tempDir(), 'b')];
  const flags = ['--store', store, '--lifecycle-interval-minutes', String(INTERVAL_MINUTES)];
  const first = await startServer(dirs[0]!, flags);
  mkdirSync(dirs[1]!, { mode: 0o700 });
  copyFileSync(join(dirs[0]!, 'master.key'), join(dirs[1]!, 'master.key'));
  const second = await startServer(dirs[1]!, flags);
  after(() => Promise.all([first.stop(), second.stop()]));

  await until('the second instance to see another leader', () => logLines(second, 'lifecycle leader: another instance')[0], 10_000);
  const runsBefore = logLines(first, 'lifecycle run').length;
  await new Promise((r) => setTimeout(r, INTERVAL_MINUTES * 60_000 * 2.5));
  assert.ok(logLines(first, 'lifecycle run').length > runsBefore, 'the leader keeps running the engine every interval');
  assert.equal(logLines(second, 'lifecycle run').length, 0, 'the other instance never runs it while the leader lives');

  const killedAt = Date.now();
  await first.crash();
  const took = await until('the second instance to take the lease', () => logLines(second, 'lifecycle leader: this instance')[0], 30_000);
  const ran = await until('the second instance to run the engine', () => logLines(second, 'lifecycle run')[0], 30_000);
  const failover = ran.time - killedAt;
  console.log(
    `failover: lease taken ${took.time - killedAt} ms and first run ${failover} ms after the leader was killed (interval ${INTERVAL_MINUTES * 60_000} ms)`,
  );
  assert.ok(
    failover <= INTERVAL_MINUTES * 60_000 + 2000,
    `the lifecycle engine ran again within one interval of the leader's death (${failover} ms)`,
  );
});
