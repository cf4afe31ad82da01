import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir, TEST_FLAGS } from '../helpers/cli.ts';

test('certmdm lifecycle plan reads the real inventory, today and as of a later date', () => {
  const dataDir = join(tempDir(), 'data');
  assert.equal(runCli(['init', '--data', dataDir, ...TEST_FLAGS]).status, 0);
  assert.match(runCli(['lifecycle', 'plan', '--data', dataDir]).stdout, /nothing is due/);
  // The TLS certificate lives 397 days and is due with 25% left: on day 300 it is.
  const at = new Date(Date.now() + 300 * 86_400_000).toISOString().slice(0, 10);
  const r = runCli(['lifecycle', 'plan', '--json', '--at', at, '--data', dataDir]);
  assert.equal(r.status, 0, r.stderr);
  const actions = JSON.parse(r.stdout) as { kind: string }[];
  assert.deepEqual(
    actions.map((a) => a.kind),
    ['reissue-tls'],
  );
  const bad = runCli(['lifecycle', 'plan', '--at', 'someday', '--data', dataDir]);
  assert.equal(bad.status, 2);
});
