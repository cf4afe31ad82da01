import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './cli.ts';

/**
 * A private D-Bus session bus and certmonger daemon whose state lives in `dir`, so tests never touch the
 * machine's own certmonger configuration. Stopped by the returned function.
 */
export async function startCertmonger(dir: string): Promise<{ env: NodeJS.ProcessEnv; stop: () => void }> {
  const bus = run('dbus-daemon', ['--session', '--fork', '--print-address=1', '--print-pid=1']);
  if (bus.status !== 0) throw new Error(`dbus-daemon failed: ${bus.stderr}`);
  const [address, pid] = bus.stdout.trim().split('\n');
  const state: Record<string, string> = {};
  for (const name of ['CAS', 'REQUESTS', 'LOCAL_CA', 'CONFIG', 'TMP']) {
    const sub = join(dir, name.toLowerCase());
    mkdirSync(sub, { recursive: true, mode: 0o700 });
    state[`CERTMONGER_${name}${name === 'TMP' ? 'DIR' : '_DIR'}`] = sub;
  }
  const env = { ...process.env, DBUS_SESSION_BUS_ADDRESS: address!, ...state };
  const daemon: ChildProcess = spawn('certmonger', ['-s', '-n'], { env, stdio: 'ignore' });
  // Wait until the daemon answers on the bus.
  for (let i = 0; i < 50; i++) {
    if (run('getcert', ['list-cas', '-s'], { env }).status === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    env,
    stop: () => {
      daemon.kill();
      try {
        process.kill(Number(pid));
      } catch {
        /* already gone */
      }
    },
  };
}
