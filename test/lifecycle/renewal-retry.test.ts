import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPushService } from '../../src/app/services.ts';
import { IMMEDIATE_RETRIES } from '../../src/lifecycle/renewal.ts';
import { LifecycleRunner } from '../../src/lifecycle/runner.ts';
import { parsePlistDict } from '../../src/plist/parse.ts';
import { enrollTestDevice } from '../helpers/device.ts';
import { mdmFixture } from '../mdm/fixture.ts';

const DAY = 86_400_000;
const TOPIC = 'com.apple.mgmt.External.5f3c0d1e-test';
const INSTALL_FAILED = { ErrorChain: [{ ErrorCode: 4001, ErrorDomain: 'MCInstallationErrorDomain' }] };

test('a renewal profile that fails on the device is replaced in the same session, a few times, then left to the backoff', async (t) => {
  const f = await mdmFixture({ 'identity-days': '30' });
  t.after(() => f.close());
  const runner = new LifecycleRunner({ app: f.app, pki: f.pki, profiles: f.profiles, push: createPushService(f.app) });
  const udid = 'RETRY-ME-1';
  const device = await enrollTestDevice(f, udid);
  assert.equal(
    (await f.speak(device, { MessageType: 'Authenticate', Topic: TOPIC, DeviceName: 'x', Model: 'm', ModelName: 'n' })).statusCode,
    200,
  );
  // An unrelated command that fails gets no replacement.
  const other = (await f.admin('POST', '/v1/commands', { devices: [udid], command: { RequestType: 'SecurityInfo' } })).json()
    .command_uuid as string;
  assert.equal(parsePlistDict((await f.speak(device, { Status: 'Idle' })).rawPayload).CommandUUID, other);
  assert.equal((await f.speak(device, { Status: 'Error', CommandUUID: other, ...INSTALL_FAILED })).rawPayload.length, 0);

  f.advance(22 * DAY);
  assert.deepEqual((await runner.run()).done, [`renew-identity ${udid}`]);
  let offered = parsePlistDict((await f.speak(device, { Status: 'Idle' })).rawPayload);
  const seen = new Set<string>();
  for (let attempt = 1; attempt <= IMMEDIATE_RETRIES; attempt++) {
    assert.equal((offered.Command as Record<string, unknown>).RequestType, 'InstallProfile');
    seen.add(offered.CommandUUID as string);
    // The answer to the Error is the next profile: the device retries while it is online.
    const response = await f.speak(device, { Status: 'Error', CommandUUID: offered.CommandUUID, ...INSTALL_FAILED });
    assert.equal(response.statusCode, 200);
    offered = parsePlistDict(response.rawPayload);
    assert.ok(!seen.has(offered.CommandUUID as string), `attempt ${attempt + 1} is a fresh profile`);
    assert.equal((await f.app.store.getEnrollment(udid))?.renewalCommandUuid, offered.CommandUUID);
  }
  const last = await f.speak(device, { Status: 'Error', CommandUUID: offered.CommandUUID, ...INSTALL_FAILED });
  assert.equal(last.rawPayload.length, 0, 'after the immediate retries the session ends');
  const enrollment = (await f.app.store.getEnrollment(udid))!;
  assert.equal(enrollment.renewalAttempts, IMMEDIATE_RETRIES + 1);
  const retries = (await f.app.store.listAudit({ action: 'lifecycle.renewal-started' })).filter((e) => e.actor === 'lifecycle:retry');
  assert.equal(retries.length, IMMEDIATE_RETRIES, 'each immediate retry is audited');

  // The runner's backoff: nothing new at once, a fresh profile once the wait has passed.
  assert.deepEqual((await runner.run()).done, [], 'a failed renewal waits for its backoff');
  f.advance(3 * DAY);
  assert.deepEqual((await runner.run()).done, [`renew-identity ${udid}`]);
  assert.equal((await f.app.store.getEnrollment(udid))?.renewalAttempts, IMMEDIATE_RETRIES + 2);
});
