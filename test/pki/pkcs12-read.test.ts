import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as der from '../../src/pki/der.ts';
import { MAX_PKCS12_ITERATIONS, Pkcs12Error, readPkcs12 } from '../../src/pki/pkcs12-read.ts';
import { tempDir } from '../helpers/cli.ts';
import { openssl, selfSigned } from '../helpers/openssl.ts';
import { mdmFixture } from '../mdm/fixture.ts';

const TOPIC = 'com.apple.mgmt.External.0c0ffee0-p12';

/** The PFX with its MacData's iteration count replaced (the MAC itself is left as it was). */
function withMacIterations(pfx: Buffer, iterations: number): Buffer {
  const [version, authSafe, macData] = der.children(der.parse(pfx));
  const [digestInfo, salt] = der.children(macData);
  const count =
    iterations < 2 ** 31
      ? der.smallInteger(iterations)
      : der.unsignedInteger(Buffer.from(iterations.toString(16).padStart(14, '0'), 'hex'));
  return der.seq(version!.raw, authSafe!.raw, der.seq(digestInfo!.raw, salt!.raw, count));
}

/** How many times the event loop turned while `work` was pending: 0 for work done synchronously. */
async function loopTurnsDuring(work: Promise<unknown>): Promise<number> {
  let turns = 0;
  let done = false;
  const settled = work.finally(() => (done = true));
  await new Promise<void>((resolve) => {
    const tick = () => (done ? resolve() : (turns++, setImmediate(tick)));
    setImmediate(tick);
  });
  await settled;
  return turns;
}

describe('PKCS#12 import: iteration cap and key derivation off the event loop', () => {
  const dir = tempDir('p12-');
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  const p12 = (name: string, args: string[]) => {
    openssl(['pkcs12', '-export', '-in', cert, '-inkey', key, '-passout', 'pass:secret', '-out', join(dir, name), ...args]);
    return readFileSync(join(dir, name));
  };
  let modern: Buffer;
  let legacy: Buffer;
  let slow: Buffer;
  before(() => {
    selfSigned({ key, cert, subject: `/CN=APSP:test/UID=${TOPIC}`, days: 30 });
    modern = p12('modern.p12', []);
    legacy = p12('legacy.p12', ['-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES', '-macalg', 'sha1']);
    slow = p12('slow.p12', ['-iter', '300000']);
  });

  test("openssl's files (AES/PBKDF2 and 3DES/SHA-1 MAC) are read", async () => {
    for (const file of [modern, legacy]) {
      const contents = await readPkcs12(file, 'secret');
      assert.equal(contents.certificates.length, 1);
      assert.equal(contents.privateKey?.asymmetricKeyType, 'rsa');
    }
    await assert.rejects(readPkcs12(modern, 'wrong'), (e) => e instanceof Pkcs12Error && /wrong password/.test(e.message));
  });

  test('300,000 iterations (below the cap) are derived while the event loop keeps turning', async () => {
    let contents: Awaited<ReturnType<typeof readPkcs12>> | undefined;
    const turns = await loopTurnsDuring(readPkcs12(slow, 'secret').then((c) => (contents = c)));
    assert.equal(contents?.certificates.length, 1);
    assert.ok(turns >= 10, `the event loop turned ${turns} times during the derivation (0 when it is done synchronously)`);
  });

  test('iteration counts above the cap (2,000,000 and 2^48) are refused before any derivation', async () => {
    for (const n of [MAX_PKCS12_ITERATIONS + 1, 2_000_000, 2 ** 48]) {
      let error: unknown;
      const turns = await loopTurnsDuring(readPkcs12(withMacIterations(modern, n), 'secret').catch((e: unknown) => (error = e)));
      assert.ok(error instanceof Pkcs12Error, `${n}: a Pkcs12Error`);
      assert.match(
        (error as Error).message,
        new RegExp(`asks for ${n} key-derivation iterations; certmdm accepts at most ${MAX_PKCS12_ITERATIONS}`),
      );
      assert.ok(turns <= 1, `${n}: refused at once (${turns} turns), no worker was started`);
    }
    await assert.rejects(readPkcs12(withMacIterations(modern, 2 ** 50), 'secret'), Pkcs12Error);
    await assert.rejects(readPkcs12(withMacIterations(modern, 0), 'secret'), Pkcs12Error);
  });

  describe('through the admin API', () => {
    let f: Awaited<ReturnType<typeof mdmFixture>>;
    before(async () => (f = await mdmFixture()));
    after(() => f.close());

    test('a push certificate PKCS#12 with 2,000,000 iterations is refused 400, audited, nothing stored', async () => {
      const before = await f.app.store.listCertificates({ role: 'push' });
      const response = await f.admin('POST', '/v1/push/certificate', {
        certificate: withMacIterations(modern, 2_000_000).toString('base64'),
        password: 'secret',
      });
      assert.equal(response.statusCode, 400, response.body);
      assert.equal(response.json().error, 'bad-push-certificate');
      assert.match(response.json().message, /at most 600000/);
      assert.deepEqual(await f.app.store.listCertificates({ role: 'push' }), before);
      const [event] = await f.app.store.listAudit({ action: 'push.import', limit: 1 });
      assert.equal(event?.outcome, 'denied');
      assert.match(event?.reason ?? '', /2000000 key-derivation iterations/);
      const accepted = await f.admin('POST', '/v1/push/certificate', { certificate: modern.toString('base64'), password: 'secret' });
      assert.equal(accepted.statusCode, 201, accepted.body);
    });
  });
});
