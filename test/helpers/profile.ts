import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PLIST_TO_TAGGED_JSON } from './apple-schema.ts';
import { run, tempDir } from './cli.ts';

export type Dict = Record<string, any>;

/** Python's plistlib reads a plist; the result comes back as tagged JSON (data as {"$data": base64}). */
export function plistlib(plist: Buffer): Dict {
  const r = spawnSync('python3', ['-c', PLIST_TO_TAGGED_JSON], { input: plist });
  assert.equal(r.status, 0, r.stderr.toString());
  return JSON.parse(r.stdout.toString()) as Dict;
}

/** Python's plistlib reads a plist into plain JSON: data as base64 strings (for reading commands and profiles). */
export function plistlibPlain(plist: Buffer): Dict {
  const r = spawnSync(
    'python3',
    [
      '-c',
      'import base64,json,plistlib,sys\nprint(json.dumps(plistlib.loads(sys.stdin.buffer.read()), default=lambda b: base64.b64encode(b).decode()))',
    ],
    { input: plist },
  );
  assert.equal(r.status, 0, r.stderr.toString());
  return JSON.parse(r.stdout.toString()) as Dict;
}

/** What a device does with a signed profile: openssl verifies it against the root and yields the plist. */
export function openSigned(signed: Buffer, rootPem: string, at?: Date): { plist: Buffer; profile: Dict } {
  const dir = tempDir('profile-');
  writeFileSync(join(dir, 'p.mobileconfig'), signed);
  const attime = at ? ['-attime', String(Math.floor(at.getTime() / 1000))] : [];
  const verified = run('openssl', [
    'cms',
    '-verify',
    '-inform',
    'DER',
    '-in',
    join(dir, 'p.mobileconfig'),
    ...attime,
    '-CAfile',
    rootPem,
    '-out',
    join(dir, 'p.plist'),
    '-binary',
  ]);
  assert.equal(verified.status, 0, `openssl cms -verify: ${verified.stderr}`);
  const plist = readFileSync(join(dir, 'p.plist'));
  return { plist, profile: plistlib(plist) };
}
