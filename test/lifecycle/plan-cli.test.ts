import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir, TEST_FLAGS } from '../helpers/cli.ts';

test('certmdm lifecycle plan reads the real inventory: an intermediate no longer than its leaves must roll over', () => {
  const dataDir = join(tempDir(), 'data');
  // A 30-day intermediate caps every leaf at 30 days: it cannot outlive a leaf lifetime, so it is due at once.
  assert.equal(runCli(['init', '--data', dataDir, ...TEST_FLAGS, '--intermediate-days', '30', '--tls-renew-before-days', '0']).status, 0);
  const r = runCli(['lifecycle', 'plan', '--json', '--data', dataDir]);
  assert.equal(r.status, 0, r.stderr);
  const actions = JSON.parse(r.stdout) as { kind: string; reason: string }[];
  assert.ok(
    actions.some((a) => a.kind === 'rollover-intermediate'),
    JSON.stringify(actions),
  );

  const healthy = join(tempDir(), 'data');
  assert.equal(runCli(['init', '--data', healthy, ...TEST_FLAGS]).status, 0);
  assert.match(runCli(['lifecycle', 'plan', '--data', healthy]).stdout, /nothing is due/);
});
