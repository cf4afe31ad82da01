import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, run, tempDir } from '../helpers/cli.ts';

const UNIT = join(ROOT, 'deploy', 'systemd', 'certmdm.service');

/** systemd-analyze verify of a unit text, with the install path pointed at this checkout (it checks ExecStart). */
function verify(text: string) {
  const file = join(tempDir('certmdm-unit-'), 'certmdm.service');
  writeFileSync(file, text.replaceAll('/opt/certmdm', ROOT));
  const r = run('systemd-analyze', ['verify', file]);
  return { status: r.status, output: (r.stdout + r.stderr).trim() };
}

test('deploy/systemd/certmdm.service: systemd-analyze verifies it without a word, with the hardening it promises', () => {
  const unit = readFileSync(UNIT, 'utf8');
  const clean = verify(unit);
  assert.equal(clean.status, 0, clean.output);
  assert.equal(clean.output, '', 'no warning at all');
  // systemd-analyze only warns about a value it cannot parse: the check above is what catches one.
  assert.match(verify(unit.replace('NoNewPrivileges=yes', 'NoNewPrivileges=perhaps')).output, /Failed to parse boolean/);

  const directives = new Map(
    unit
      .split('\n')
      .filter((l) => /^[A-Za-z]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
  );
  assert.equal(directives.get('User'), 'certmdm', 'a dedicated user');
  assert.equal(directives.get('NoNewPrivileges'), 'yes');
  assert.equal(directives.get('ProtectSystem'), 'strict');
  const data = /CERTMDM_DATA=(\S+)/.exec(unit)![1]!;
  assert.equal(directives.get('ReadWritePaths'), data, 'the data directory, and only it, is writable');
  assert.equal(directives.get('CapabilityBoundingSet'), '', 'no capabilities');
  assert.match(directives.get('ExecStart')!, /bin\/certmdm\.mjs serve$/, 'the compiled server, no TypeScript loader');
});
