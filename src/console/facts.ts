import type { AppContext } from '../app/context.ts';
import type { Services } from '../app/services.ts';
import { DEFAULT_POLICY, type Action, type LifecycleState } from '../lifecycle/model.ts';
import { plan } from '../lifecycle/planner.ts';
import { schedule, type Schedule } from '../lifecycle/schedule.ts';
import { lifecycleState } from '../lifecycle/state.ts';
import { deviceStates, type DeviceState } from '../ops/metrics.ts';
import type { ServerPki } from '../pki/server-pki.ts';
import type { LifecycleRunner } from '../lifecycle/runner.ts';

/** What every console page may use: the app, the live PKI, the services, and the runner for "rotate now". */
export interface ConsoleDeps {
  app: AppContext;
  pki: ServerPki;
  services: Services;
  runner: LifecycleRunner;
}

export interface LifecycleView {
  state: LifecycleState;
  actions: Action[];
  schedule: Schedule;
  counts: Record<DeviceState, number>;
}

/** The planner's view of the whole fleet now: the same facts `lifecycle plan` and the metrics read. */
export async function lifecycleView(app: AppContext, now: Date): Promise<LifecycleView> {
  const state = await lifecycleState(app.store, now, {
    pinning: app.config.pinServerUrl,
    identityDays: app.config.identityDays,
    rescueGraceDays: app.config.rescueGraceDays,
  });
  const actions = plan(state, DEFAULT_POLICY);
  return { state, actions, schedule: schedule(state, DEFAULT_POLICY), counts: deviceStates(state, actions) };
}

export const SERVER_ROLES = ['root', 'intermediate', 'tls', 'profile-signing', 'scep-ra', 'push'] as const;

export { commonName } from '../pki/inventory.ts';

export const daysLeft = (notAfter: Date, now: Date): number => Math.floor((notAfter.getTime() - now.getTime()) / 86_400_000);
