import { DAY_MS } from '../clock.ts';
import { lastProbe } from '../ops/probe.ts';
import type { Store } from '../store/types.ts';
import { forecast, type Forecast } from './forecast.ts';
import { DEFAULT_POLICY } from './model.ts';
import { lifecycleState } from './state.ts';

/** The forecast's facts read from the store: the planner's state, each enrollment's rhythm, the last probe. */
export async function forecastFromStore(
  store: Store,
  now: Date,
  options: { days: number; pinning: boolean; identityDays: number; rescueGraceDays: number },
): Promise<Forecast> {
  const state = await lifecycleState(store, now, options);
  const enrollments = new Map((await store.listEnrollments()).map((e) => [e.id, e]));
  const tlsRoot = state.roots.find((r) => r.id === state.tlsRootId) ?? state.roots[0]!;
  const successor = state.roots.at(-1)!.id !== tlsRoot.id ? state.roots.at(-1)! : null;
  const probe = await lastProbe(store);
  // A presented chain none of whose certificates certmdm issued is a proxy's: its expiry is nobody's job but the admin's.
  let foreignChain: { url: string; subject: string; notAfter: Date } | null = null;
  if (probe && probe.chain.length > 0) {
    const ours = await Promise.all(probe.chain.map((c) => store.getCertificateByFingerprint(c.fingerprintSha256)));
    const foreign = probe.chain.filter((_, i) => !ours[i]).sort((a, b) => Date.parse(a.notAfter) - Date.parse(b.notAfter))[0];
    if (foreign) foreignChain = { url: probe.url, subject: foreign.subject, notAfter: new Date(foreign.notAfter) };
  }
  return forecast({
    now,
    days: options.days,
    devices: state.devices.map((d) => {
      const e = enrollments.get(d.id);
      return {
        ...d,
        name: e?.info.DeviceName ?? null,
        serial: e?.info.SerialNumber ?? null,
        rhythm: e?.rhythm ?? { sessions: 1, typicalGapMs: null, longestGapMs: null },
        renewalAttempts: e?.renewalAttempts ?? 0,
      };
    }),
    policy: DEFAULT_POLICY,
    identityLifetime: options.identityDays * DAY_MS,
    rescueGrace: options.rescueGraceDays * DAY_MS,
    push: state.push,
    tlsRoot,
    rootSuccessor: successor,
    foreignChain,
  });
}
