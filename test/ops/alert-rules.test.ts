import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, run } from '../helpers/cli.ts';

const RULES = join(ROOT, 'deploy', 'prometheus');

test('the alert rules: promtool accepts them, and its unit tests prove each alert fires on its series and stays silent otherwise', () => {
  const check = run('promtool', ['check', 'rules', join(RULES, 'certmdm.rules.yml')]);
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /SUCCESS: 8 rules found/);
  // deploy/prometheus/certmdm.rules.test.yml: push certificate at 20, 100 and 5 days; devices at risk; a renewal due
  // and never done; refusals steady and jumping; the lifecycle runner running, stalled and off; the chain at the public
  // URL expiring and untrusted.
  const unit = run('promtool', ['test', 'rules', 'certmdm.rules.test.yml'], { cwd: RULES });
  assert.equal(unit.status, 0, unit.stdout + unit.stderr);
  assert.match(unit.stdout, /SUCCESS/);
});
