import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_POLICY } from '../../src/lifecycle/model.ts';
import { plan } from '../../src/lifecycle/planner.ts';
import { STRESS_LIFETIMES } from '../../src/lifecycle/simulation/lifetimes.ts';
import { simulate } from '../../src/lifecycle/simulation/simulate.ts';
import { lifecycleState } from '../../src/lifecycle/state.ts';

test('the daily run reads only devices in their renewal window, outside a root rollover, and plans exactly what the full read plans', async () => {
  let days = 0;
  let rolloverDays = 0;
  let narrowed = 0;
  let actions = 0;
  const report = await simulate({
    devices: 24,
    years: 2.2,
    seed: 1407,
    lifecycle: true,
    // Stress ratios: identities renewed every few weeks, the intermediate and the root roll over inside the horizon.
    lifetimes: STRESS_LIFETIMES,
    runEveryDays: 1,
    observe: async ({ app, now }) => {
      const options = { pinning: false, identityDays: STRESS_LIFETIMES.identityDays, rescueGraceDays: 30 };
      const full = await lifecycleState(app.store, now, options);
      const due = await lifecycleState(app.store, now, { ...options, onlyRenewalDue: DEFAULT_POLICY.identityRenewAt });
      const expected = plan(full, DEFAULT_POLICY);
      assert.deepEqual(plan(due, DEFAULT_POLICY), expected, `the plans differ on ${now.toISOString()}`);
      days++;
      actions += expected.length;
      if (full.roots.length > 1 && full.roots.at(-1)!.id !== full.tlsRootId) {
        rolloverDays++;
        assert.equal(due.devices.length, full.devices.length, 'during a root rollover every device is read');
      } else if (due.devices.length < full.devices.length) narrowed++;
    },
  });
  assert.ok(days > 700, `${days} lifecycle days`);
  assert.ok(rolloverDays > 0, 'a root rollover happened inside the horizon');
  assert.ok(narrowed > days / 2, `the read was narrower than the fleet on ${narrowed} of ${days} days`);
  assert.ok(actions > 100 && report.byKind.identity.renewals > 24, 'the plans had identity renewals to agree on');
  assert.equal(report.lost.reachable, 0);
});
