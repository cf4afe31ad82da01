import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mergeShards, type ShardResult, type SimulationReport } from './report.ts';
import { simulateShard, type SimulationOptions } from './simulate.ts';

const BIN = fileURLToPath(new URL('../../../bin/certmdm.mjs', import.meta.url));

/** The flags that make `certmdm simulate` run one shard of these options. */
export function shardArguments(options: SimulationOptions, index: number, count: number): string[] {
  return [
    'simulate',
    '--devices', String(options.devices),
    '--years', String(options.years),
    '--seed', String(options.seed),
    ...(options.lifecycle ? [] : ['--no-lifecycle']),
    '--sim-identity-days', String(options.lifetimes.identityDays),
    '--sim-tls-days', String(options.lifetimes.tlsDays),
    '--sim-tls-renew-before-days', String(options.lifetimes.tlsRenewBeforeDays),
    '--sim-intermediate-days', String(options.lifetimes.intermediateDays),
    '--sim-root-days', String(options.lifetimes.rootDays),
    '--sim-signing-days', String(options.lifetimes.signingDays),
    '--sim-challenge-ttl-hours', String(options.lifetimes.challengeTtlHours),
    ...(options.pinning ? ['--pin-server-url'] : []),
    '--rescue-grace-days', String(options.rescueGraceDays ?? 30),
    '--run-every-days', String(options.runEveryDays),
    '--shard', `${index}/${count}`,
  ]; // prettier-ignore
}

/**
 * A fleet split across processes (devices i mod N), each with its own in-process server: on a machine with several
 * cores the simulation is bound by RSA and scales with them. Each shard prints its result as JSON and its progress
 * on stderr; the merged report is the same for the same seed and process count.
 */
export async function simulateInProcesses(options: SimulationOptions, count: number): Promise<SimulationReport> {
  if (count <= 1) {
    const started = performance.now();
    return mergeShards([await simulateShard(options)], (performance.now() - started) / 1000);
  }
  const started = performance.now();
  const progress = new Array<number>(count).fill(0);
  const shards = await Promise.all(
    Array.from(
      { length: count },
      (_, index) =>
        new Promise<ShardResult>((resolve, reject) => {
          const child = spawn(process.execPath, [BIN, ...shardArguments(options, index, count)], { stdio: ['ignore', 'pipe', 'pipe'] });
          const out: Buffer[] = [];
          let errors = '';
          child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
          child.stderr.setEncoding('utf8').on('data', (text: string) => {
            for (const line of text.split('\n')) {
              const match = /^progress ([0-9.]+)$/.exec(line);
              if (match) {
                progress[index] = Number(match[1]);
                options.progress?.(Math.min(...progress));
              } else if (line.trim()) errors += line + '\n';
            }
          });
          child.on('error', reject);
          child.on('close', (code) => {
            if (code !== 0) return reject(new Error(`simulation shard ${index}/${count} failed (exit ${code}): ${errors.trim()}`));
            try {
              const result = JSON.parse(Buffer.concat(out).toString('utf8')) as ShardResult;
              if (!result.report || !result.leadDays) throw new Error('unexpected shape');
              resolve(result);
            } catch (err) {
              reject(new Error(`simulation shard ${index}/${count} printed no result: ${(err as Error).message}`));
            }
          });
        }),
    ),
  );
  return mergeShards(shards, (performance.now() - started) / 1000);
}
