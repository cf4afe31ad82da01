import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, tempDir } from './cli.ts';
import { envelope, makeCsr, newRequester, pkiMessage, readCertRep, type Requester } from './scep.ts';

/**
 * A test device: an identity from certmdm's SCEP server (openssl key and CSR), message bodies written by Python's
 * plistlib, and Mdm-Signature made by openssl in Apple's form or the attributes form.
 */
export interface TestDevice {
  udid: string;
  requester: Requester;
  certPem: string;
  certDer: Buffer;
}

type Scep = {
  now?: () => Date;
  post: (body: Buffer) => Promise<{ rawPayload: Buffer }>;
  challenge: () => Promise<{ challenge: string }>;
  ra: string;
  root: string;
};

export async function enrollTestDevice(
  scep: Scep,
  udid = `UDID-${Math.random().toString(16).slice(2, 10).toUpperCase()}`,
  requester = newRequester(),
  /** As an enrollment profile's SCEP payload says: its challenge and subject CN. */
  profile?: { challenge: string; cn: string },
): Promise<TestDevice> {
  const challenge = profile?.challenge ?? (await scep.challenge()).challenge;
  const rep = readCertRep(
    (await scep.post(pkiMessage(requester, envelope(makeCsr(requester, { challenge, cn: profile?.cn ?? udid }), scep.ra)))).rawPayload,
    requester,
    scep.root,
    scep.now?.(),
  );
  assert.equal(rep.status, '0', 'SCEP enrollment of the test device');
  const certPem = join(requester.dir, `identity-${udid}-${Date.now()}.pem`);
  writeFileSync(certPem, rep.certificates);
  const der = Buffer.from(/-----BEGIN CERTIFICATE-----([\s\S]+?)-----END/.exec(rep.certificates)![1]!.replace(/\s+/g, ''), 'base64');
  return { udid, requester, certPem, certDer: der };
}

/** Python's plistlib writes the body; `{"$data": base64}` marks bytes. */
export function plistBody(message: Record<string, unknown>): Buffer {
  const r = spawnSync(
    'python3',
    [
      '-c',
      'import base64,json,plistlib,sys\ndef f(v):\n  if isinstance(v,dict):\n    return base64.b64decode(v["$data"]) if "$data" in v else {k:f(x) for k,x in v.items()}\n  if isinstance(v,list): return [f(x) for x in v]\n  return v\nsys.stdout.buffer.write(plistlib.dumps(f(json.loads(sys.stdin.read()))))',
    ],
    {
      input: JSON.stringify(message),
    },
  );
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout;
}

export type SignatureForm = 'apple' | 'detached' | 'attributes';

/**
 * Mdm-Signature by openssl. `apple`: -noattr -md sha1 -stream (BER, indefinite lengths, as devices send);
 * `detached`: -noattr -md sha1 (DER, detached); `attributes`: SHA-256 with signed attributes, detached.
 */
export function mdmSignature(
  body: Buffer,
  device: { certPem: string; requester: { keyPem: string } },
  form: SignatureForm = 'apple',
): string {
  const dir = tempDir('mdmsig-');
  writeFileSync(join(dir, 'body'), body);
  const args = { apple: ['-noattr', '-md', 'sha1', '-stream'], detached: ['-noattr', '-md', 'sha1'], attributes: ['-md', 'sha256'] }[form];
  const r = run('openssl', [
    'cms',
    '-sign',
    '-binary',
    '-outform',
    'DER',
    '-signer',
    device.certPem,
    '-inkey',
    device.requester.keyPem,
    '-in',
    join(dir, 'body'),
    '-out',
    join(dir, 'sig'),
    ...args,
  ]);
  assert.equal(r.status, 0, r.stderr);
  return readFileSync(join(dir, 'sig')).toString('base64');
}

export function checkIn(device: TestDevice, message: Record<string, unknown>) {
  return plistBody({ UDID: device.udid, ...message });
}
