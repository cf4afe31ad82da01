import { deviceChannel } from '../../src/store/types.ts';
import assert from 'node:assert/strict';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createPushService } from '../../src/app/services.ts';
import { LifecycleRunner } from '../../src/lifecycle/runner.ts';
import { run, tempDir } from '../helpers/cli.ts';
import { enrollTestDevice, type TestDevice } from '../helpers/device.ts';
import { openSigned, plistlibPlain, type Dict } from '../helpers/profile.ts';
import { newRequester } from '../helpers/scep.ts';
import { mdmFixture } from '../mdm/fixture.ts';

const DAY = 86_400_000;
const TOPIC = 'com.apple.mgmt.External.5f3c0d1e-test';
const AUTHENTICATE = { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: 'x', Model: 'm', ModelName: 'n' };

/**
 * The forms a secret takes if a command body is stored in clear: itself (a challenge or password in the signed
 * profile), base64 of it (the profile is base64 in the command's Payload) and base64 of that (the PKCS#12 is base64
 * in the profile), at every alignment. Cut in 16-byte slices so one split across SQLite overflow pages is still found.
 */
function clearForms(secret: Buffer): Buffer[] {
  const base64 = (b: Buffer) =>
    [0, 1, 2].map((k) => {
      const text = b.subarray(k).toString('base64');
      return Buffer.from(text.slice(0, text.length - 4)); // the last group depends on what follows
    });
  const forms = [secret, ...base64(secret), ...base64(secret).flatMap(base64)];
  return forms.flatMap((form) => {
    const slices: Buffer[] = [];
    for (let i = 0; i + 16 <= form.length; i += 16) slices.push(form.subarray(i, i + 16));
    return slices.length ? slices : [form];
  });
}

/** The names of `secrets` any of whose clear forms is in the database, WAL or shared-memory file. */
function secretsOnDisk(dataDir: string, secrets: Record<string, Buffer>): string[] {
  const files = ['certmdm.db', 'certmdm.db-wal', 'certmdm.db-shm'].map((f) => join(dataDir, f)).filter(existsSync);
  assert.ok(files.length >= 2, 'the database and its WAL are there to search');
  const bytes = files.map((f) => readFileSync(f));
  return Object.entries(secrets)
    .filter(([, secret]) => clearForms(secret).some((form) => bytes.some((b) => b.includes(form))))
    .map(([name]) => name);
}

/** The command plist as the device received it, opened with the master key the test holds. */
async function commandAsDelivered(f: Awaited<ReturnType<typeof mdmFixture>>, uuid: string): Promise<Buffer> {
  const stored = (await f.app.store.getCommand(uuid))!;
  return stored.sealed ? f.app.commands.open(uuid, stored.body) : stored.body;
}

const payload = (profile: Dict, type: string) => profile.PayloadContent.find((p: Dict) => p.PayloadType === type);

/** What a device installing a PKCS#12 identity payload gets out of it: key and certificate, by openssl. */
function installPkcs12(udid: string, pkcs12: Buffer, password: string): TestDevice & { privateParts: Record<string, Buffer> } {
  const dir = tempDir('pkcs12-device-');
  const file = join(dir, 'identity.p12');
  writeFileSync(file, pkcs12);
  const keyPem = join(dir, 'key.pem');
  const certPem = join(dir, 'cert.pem');
  for (const args of [
    ['-nocerts', '-nodes', '-out', keyPem],
    ['-clcerts', '-nokeys', '-out', certPem],
  ]) {
    const r = run('openssl', ['pkcs12', '-in', file, '-passin', `pass:${password}`, ...args]);
    assert.equal(r.status, 0, r.stderr);
  }
  const key = createPrivateKey(readFileSync(keyPem));
  const certDer = Buffer.from(
    /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END/.exec(readFileSync(certPem, 'utf8'))![1]!.replace(/\s+/g, ''),
    'base64',
  );
  return {
    udid,
    requester: { dir, keyPem, key, selfSigned: certDer, selfSignedPem: certPem },
    certPem,
    certDer,
    // The key's private numbers: its modulus and exponent are public (they are in the certificate).
    privateParts: Object.fromEntries(
      (['d', 'p', 'q', 'dp', 'dq', 'qi'] as const).map((n) => [
        `private key ${n}`,
        Buffer.from(key.export({ format: 'jwk' })[n]!, 'base64url'),
      ]),
    ),
  };
}

test('renewal commands hold no PKCS#12, private key, password or usable challenge at rest: sealed, then erased once answered', async (t) => {
  const f = await mdmFixture({ 'identity-days': '30' });
  t.after(() => f.close());
  const dataDir = f.app.config.dataDir;
  const runner = new LifecycleRunner({ app: f.app, pki: f.pki, profiles: f.profiles, push: createPushService(f.app) });

  // A SCEP device and a PKCS#12 device, each enrolled through its profile.
  const scepProfile = plistlibPlain((await f.profiles.enrollment({ identity: 'scep', createdBy: 'test', sign: false })).body);
  const scepFirst = payload(scepProfile, 'com.apple.security.scep').PayloadContent;
  const scepDevice = await enrollTestDevice(f, 'SECRETS-SCEP', newRequester(), {
    challenge: scepFirst.Challenge,
    cn: scepFirst.Subject[1][0][1],
  });
  const p12Profile = plistlibPlain((await f.profiles.enrollment({ identity: 'pkcs12', createdBy: 'test', sign: false })).body);
  const p12First = payload(p12Profile, 'com.apple.security.pkcs12');
  const p12Device = installPkcs12('SECRETS-P12', Buffer.from(p12First.PayloadContent, 'base64'), p12First.Password);
  for (const device of [scepDevice, p12Device]) assert.equal((await f.speak(device, AUTHENTICATE)).statusCode, 200);

  f.advance(22 * DAY);
  assert.deepEqual((await runner.run()).done.sort(), ['renew-identity SECRETS-P12', 'renew-identity SECRETS-SCEP']);

  // Each device fetches its renewal profile: the secrets in it are what a database backup must not yield.
  const fetch = async (device: TestDevice) => {
    const offered = plistlibPlain((await f.speak(device, { Status: 'Idle' })).rawPayload);
    assert.equal(offered.Command.RequestType, 'InstallProfile');
    return {
      uuid: offered.CommandUUID as string,
      profile: openSigned(Buffer.from(offered.Command.Payload, 'base64'), f.root, f.now()).profile,
    };
  };
  const scepRenewal = await fetch(scepDevice);
  const p12Renewal = await fetch(p12Device);
  const challenge = payload(scepRenewal.profile, 'com.apple.security.scep').PayloadContent.Challenge as string;
  const p12Payload = payload(p12Renewal.profile, 'com.apple.security.pkcs12');
  const pkcs12 = Buffer.from(p12Payload.PayloadContent.$data, 'base64'); // tagged JSON: data as {"$data": base64}
  const renewedP12 = installPkcs12('SECRETS-P12', pkcs12, p12Payload.Password);
  const secrets = {
    // A challenge is 16 hex digits of row id (stored, not secret) and 40 of secret.
    challenge: Buffer.from(challenge.slice(16)),
    pkcs12,
    password: Buffer.from(p12Payload.Password as string),
    ...renewedP12.privateParts,
  };
  // The search finds these secrets in the command as delivered, so it would find them in a body stored in clear.
  const delivered = Buffer.concat(await Promise.all([scepRenewal.uuid, p12Renewal.uuid].map(async (uuid) => commandAsDelivered(f, uuid))));
  assert.deepEqual(
    Object.keys(secrets).filter((name) => clearForms(secrets[name as keyof typeof secrets]).some((form) => delivered.includes(form))),
    ['challenge', 'pkcs12', 'password'],
  );

  assert.deepEqual(secretsOnDisk(dataDir, secrets), [], 'queued: the bodies are sealed');
  for (const uuid of [scepRenewal.uuid, p12Renewal.uuid]) {
    const stored = await f.app.store.getCommand(uuid);
    assert.equal(stored?.sealed, true);
    assert.ok(stored.body.length > 0);
  }

  // The challenge is live: the device's SCEP request with it succeeds. Then both report Acknowledged.
  const scepCn = payload(scepRenewal.profile, 'com.apple.security.scep').PayloadContent.Subject[1][0][1];
  const renewedScep = await enrollTestDevice(f, 'SECRETS-SCEP', newRequester(), { challenge, cn: scepCn });
  assert.equal((await f.speak(scepDevice, { Status: 'Acknowledged', CommandUUID: scepRenewal.uuid })).statusCode, 200);
  assert.equal((await f.speak(p12Device, { Status: 'Acknowledged', CommandUUID: p12Renewal.uuid })).statusCode, 200);
  for (const uuid of [scepRenewal.uuid, p12Renewal.uuid]) {
    const stored = await f.app.store.getCommand(uuid);
    assert.equal(stored?.body.length, 0, 'answered: the sealed body is erased');
    assert.deepEqual(stored.bodyErasedAt, f.now());
  }
  for (const device of [renewedScep, renewedP12]) assert.equal((await f.speak(device, AUTHENTICATE)).statusCode, 200);
  assert.deepEqual(secretsOnDisk(dataDir, secrets), []);
});

test('a renewal profile undelivered when its challenge expires is not delivered, is erased by the runner and replaced', async (t) => {
  const f = await mdmFixture({ 'identity-days': '60', 'challenge-ttl-hours': '72' });
  t.after(() => f.close());
  const runner = new LifecycleRunner({ app: f.app, pki: f.pki, profiles: f.profiles, push: createPushService(f.app) });
  const device = await enrollTestDevice(f, 'SECRETS-LATE');
  assert.equal((await f.speak(device, AUTHENTICATE)).statusCode, 200);
  f.advance(37 * DAY); // 23 of 60 days left: inside the 40% window
  assert.deepEqual((await runner.run()).done, ['renew-identity SECRETS-LATE']);
  const first = (await f.app.store.getEnrollment('SECRETS-LATE'))!.renewalCommandUuid!;
  assert.equal((await f.app.store.getCommand(first))?.secretsExpireAt?.getTime(), f.now().getTime() + 3 * DAY);

  f.advance(3 * DAY); // the challenge in it has expired; the device was offline all along
  const before = f.state();
  const idle = await f.speak(device, { Status: 'Idle' });
  assert.equal(idle.statusCode, 200);
  assert.equal(idle.rawPayload.length, 0, 'an expired renewal profile is not delivered, even before the sweep');
  assert.equal(f.state().commands, before.commands);

  const report = await runner.run();
  assert.ok(report.done.includes('erased 1 expired command'), JSON.stringify(report));
  assert.ok(report.done.includes('renew-identity SECRETS-LATE'), 'a fresh profile goes at once: the expired one was never tried');
  const erased = await f.app.store.getCommand(first);
  assert.equal(erased?.body.length, 0);
  assert.deepEqual(erased.bodyErasedAt, f.now());
  const queue = await f.app.store.listQueue(deviceChannel('SECRETS-LATE'));
  assert.equal(queue.find((q) => q.commandUuid === first)?.status, 'expired');
  const [audit] = await f.app.store.listAudit({ action: 'command.secrets-expired' });
  assert.deepEqual(audit?.detail, { commands: [first] });

  const second = (await f.app.store.getEnrollment('SECRETS-LATE'))!.renewalCommandUuid!;
  assert.notEqual(second, first);
  const offered = plistlibPlain((await f.speak(device, { Status: 'Idle' })).rawPayload);
  assert.equal(offered.CommandUUID, second);
});

test('escrowed UnlockToken and BootstrapToken are sealed at rest, and GetBootstrapToken still returns the token', async (t) => {
  const f = await mdmFixture();
  t.after(() => f.close());
  const device = await enrollTestDevice(f, 'SECRETS-TOKENS');
  assert.equal((await f.speak(device, AUTHENTICATE)).statusCode, 200);
  const unlock = randomBytes(48);
  const bootstrap = randomBytes(48);
  const update = { MessageType: 'TokenUpdate', Topic: TOPIC, Token: { $data: randomBytes(32).toString('base64') }, PushMagic: 'magic' };
  assert.equal((await f.speak(device, { ...update, UnlockToken: { $data: unlock.toString('base64') } })).statusCode, 200);
  assert.equal(
    (await f.speak(device, { MessageType: 'SetBootstrapToken', BootstrapToken: { $data: bootstrap.toString('base64') } })).statusCode,
    200,
  );

  assert.deepEqual(secretsOnDisk(f.app.config.dataDir, { 'unlock token': unlock, 'bootstrap token': bootstrap }), []);
  const got = plistlibPlain((await f.speak(device, { MessageType: 'GetBootstrapToken' })).rawPayload);
  assert.equal(got.BootstrapToken, bootstrap.toString('base64'));
  const stored = await f.app.store.getEnrollment('SECRETS-TOKENS');
  assert.deepEqual(f.app.deviceTokens.open('SECRETS-TOKENS', 'unlock-token', stored!.unlockToken!), unlock);
  assert.throws(() => f.app.deviceTokens.open('OTHER-DEVICE', 'unlock-token', stored!.unlockToken!), 'bound to its enrollment');
});
