import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { toPem } from '../../src/pki/certificate.ts';
import { validatePayload } from '../helpers/apple-schema.ts';
import { openSigned, plistlib, type Dict } from '../helpers/profile.ts';
import { run, tempDir } from '../helpers/cli.ts';
import { envelope, makeCsr, newRequester, pkiMessage, readCertRep } from '../helpers/scep.ts';
import { scepFixture } from '../scep/fixture.ts';

function data(value: Dict): Buffer {
  return Buffer.from(value.$data, 'base64');
}

function assertSchemaValid(profile: Dict) {
  assert.deepEqual(validatePayload(profile, true), [], 'top level');
  for (const payload of profile.PayloadContent as Dict[]) assert.deepEqual(validatePayload(payload), [], payload.PayloadType);
}

describe('enrollment and trust profiles', () => {
  let f: Awaited<ReturnType<typeof scepFixture>>;
  let intermediatePem: string;
  before(async () => {
    f = await scepFixture({ 'public-url': 'https://mdm.example.test:8443' });
    intermediatePem = join(f.dir, 'intermediate.pem');
    writeFileSync(intermediatePem, toPem(f.pki.authority.intermediate.der));
  });
  after(() => f.close());

  test('SCEP enrollment profile: signed, payloads in order, valid per Apple schemas, challenge usable once', async () => {
    const generated = await f.profiles.enrollment({ identity: 'scep', createdBy: 'test' });
    const { profile } = openSigned(generated.body, f.root);
    assertSchemaValid(profile);
    const payloads = profile.PayloadContent as Dict[];
    assert.deepEqual(
      payloads.map((p) => p.PayloadType),
      ['com.apple.security.root', 'com.apple.security.pkcs1', 'com.apple.security.scep', 'com.apple.mdm'],
    );
    assert.deepEqual(data(payloads[0]!.PayloadContent), f.pki.authority.root.der);
    assert.deepEqual(data(payloads[1]!.PayloadContent), f.pki.authority.intermediate.der);
    const [, , scep, mdm] = payloads as [Dict, Dict, Dict, Dict];
    assert.equal(mdm.IdentityCertificateUUID, scep.PayloadUUID);
    assert.equal(mdm.ServerURL, 'https://mdm.example.test:8443/mdm/server');
    assert.equal(mdm.CheckInURL, 'https://mdm.example.test:8443/mdm/checkin');
    assert.equal(mdm.Topic, 'com.apple.mgmt.External.5f3c0d1e-test');
    assert.equal(mdm.SignMessage, true);
    assert.equal(mdm.CheckOutWhenRemoved, true);
    assert.equal(scep.PayloadContent.URL, 'https://mdm.example.test:8443/scep');
    assert.equal(scep.PayloadContent.Keysize, 2048);
    assert.deepEqual(data(scep.PayloadContent.CAFingerprint), createHash('sha1').update(f.pki.authority.intermediate.der).digest());

    // The record knows what the profile carries and when it must be replaced.
    const record = (await f.app.store.getProfile(generated.record.id))!;
    assert.equal(record.payloadUuid, profile.PayloadUUID);
    assert.deepEqual(record.certificates.map((c) => c.role).sort(), ['anchor', 'intermediate']);
    const identityExpiry = Date.now() + 365 * 86_400_000;
    assert.ok(
      Math.abs(record.effectiveExpiry.getTime() - Math.min(identityExpiry, f.pki.authority.intermediate.notAfter.getTime())) < 60_000,
    );
    const dependants = await f.app.store.listDependants(f.pki.authority.root.id);
    assert.ok(
      dependants.some((d) => d.kind === 'profile:enrollment' && d.ref === record.id),
      'the root lists the profile among its dependants',
    );

    // The minted challenge enrolls exactly once, and the issued identity is linked to this enrollment.
    const device = newRequester();
    const challenge = scep.PayloadContent.Challenge as string;
    const first = readCertRep(
      (await f.post(pkiMessage(device, envelope(makeCsr(device, { challenge, cn: record.enrollmentRef! }), f.ra)))).rawPayload,
      device,
      f.root,
    );
    assert.equal(first.status, '0');
    const again = readCertRep(
      (await f.post(pkiMessage(device, envelope(makeCsr(device, { challenge }), f.ra)))).rawPayload,
      device,
      f.root,
    );
    assert.equal(again.failInfo, '2');
    const used = await f.app.store.getChallenge(record.challengeId!);
    assert.equal(used?.enrollmentRef, record.enrollmentRef);
    assert.ok(used?.certificateId);
  });

  for (const encryption of ['legacy', 'modern'] as const) {
    test(`PKCS#12 enrollment profile (${encryption}): openssl opens the identity with the profile's password`, async () => {
      const service =
        encryption === 'legacy'
          ? f.profiles
          : (await import('../../src/app/services.ts')).createProfileService(
              { ...f.app, config: { ...f.app.config, pkcs12Encryption: 'modern' } },
              f.pki,
            );
      const generated = await service.enrollment({ identity: 'pkcs12', createdBy: 'test' });
      const { profile } = openSigned(generated.body, f.root);
      assertSchemaValid(profile);
      const payloads = profile.PayloadContent as Dict[];
      assert.deepEqual(
        payloads.map((p) => p.PayloadType),
        ['com.apple.security.root', 'com.apple.security.pkcs1', 'com.apple.security.pkcs12', 'com.apple.mdm'],
      );
      const p12 = payloads[2]!;
      assert.equal(payloads[3]!.IdentityCertificateUUID, p12.PayloadUUID);
      const dir = tempDir('p12-');
      writeFileSync(join(dir, 'id.p12'), data(p12.PayloadContent));
      const opened = run('openssl', [
        'pkcs12',
        '-in',
        join(dir, 'id.p12'),
        '-passin',
        `pass:${p12.Password}`,
        '-nodes',
        '-info',
        '-out',
        join(dir, 'all.pem'),
      ]);
      assert.equal(opened.status, 0, opened.stderr);
      assert.match(opened.stderr, encryption === 'legacy' ? /pbeWithSHA1And3-KeyTripleDES-CBC/ : /PBES2, PBKDF2, AES-256-CBC/);
      const leaf = run('openssl', [
        'pkcs12',
        '-in',
        join(dir, 'id.p12'),
        '-passin',
        `pass:${p12.Password}`,
        '-nokeys',
        '-clcerts',
        '-out',
        join(dir, 'leaf.pem'),
      ]);
      assert.equal(leaf.status, 0, leaf.stderr);
      const verified = run('openssl', [
        'verify',
        '-purpose',
        'sslclient',
        '-CAfile',
        f.root,
        '-untrusted',
        intermediatePem,
        join(dir, 'leaf.pem'),
      ]);
      assert.equal(verified.status, 0, verified.stderr + verified.stdout);
      assert.match(readFileSync(join(dir, 'all.pem'), 'utf8'), /BEGIN PRIVATE KEY/);
      const wrong = run('openssl', ['pkcs12', '-in', join(dir, 'id.p12'), '-passin', 'pass:wrong', '-nodes']);
      assert.notEqual(wrong.status, 0, 'a wrong password does not open it');
      // The identity is in the inventory with the profile depending on it; its key is not kept.
      const identity = generated.record.certificates.find((c) => c.role === 'identity')!;
      const cert = (await f.app.store.getCertificate(identity.certificateId))!;
      assert.equal(cert.role, 'device-identity');
      assert.equal(cert.keyId, null);
      assert.deepEqual(generated.record.effectiveExpiry, cert.notAfter);
    });
  }

  test('every version shares the PayloadIdentifier, ServerURL and Topic, with a new PayloadUUID', async () => {
    const a = plistlib((await f.profiles.enrollment({ identity: 'scep', createdBy: 'test', sign: false })).body);
    const b = plistlib((await f.profiles.enrollment({ identity: 'pkcs12', createdBy: 'test', sign: false })).body);
    assert.equal(a.PayloadIdentifier, b.PayloadIdentifier);
    assert.notEqual(a.PayloadUUID, b.PayloadUUID);
    const mdm = (p: Dict) => (p.PayloadContent as Dict[]).find((x) => x.PayloadType === 'com.apple.mdm')!;
    assert.equal(mdm(a).ServerURL, mdm(b).ServerURL);
    assert.equal(mdm(a).Topic, mdm(b).Topic);
    assert.equal(mdm(a).PayloadIdentifier, mdm(b).PayloadIdentifier);
  });

  test('pinning names the root payloads when enabled', async () => {
    const pinned = (await import('../../src/app/services.ts')).createProfileService(
      { ...f.app, config: { ...f.app.config, pinServerUrl: true } },
      f.pki,
    );
    const profile = plistlib((await pinned.enrollment({ identity: 'scep', createdBy: 'test', sign: false })).body);
    assertSchemaValid(profile);
    const payloads = profile.PayloadContent as Dict[];
    assert.deepEqual(payloads[3]!.ServerURLPinningCertificateUUIDs, [payloads[0]!.PayloadUUID]);
  });

  test('MDMServiceConfig names the trust profile and anchors; the trust profile holds only roots', async () => {
    const config = (await f.server.inject({ method: 'GET', url: '/MDMServiceConfig' })).json() as Dict;
    assert.deepEqual(Object.keys(config).sort(), ['dep_anchor_certs_url', 'dep_enrollment_url', 'trust_profile_url']);
    assert.equal(config.trust_profile_url, 'https://mdm.example.test:8443/mdm/trust-profile');
    const anchors = (await f.server.inject({ method: 'GET', url: new URL(config.dep_anchor_certs_url).pathname })).json() as string[];
    assert.deepEqual(anchors, [f.pki.authority.root.der.toString('base64')]);

    const response = await f.server.inject({ method: 'GET', url: new URL(config.trust_profile_url).pathname });
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers['content-type'], 'application/x-apple-aspen-config');
    const { profile } = openSigned(response.rawPayload, f.root);
    assertSchemaValid(profile);
    assert.deepEqual(
      (profile.PayloadContent as Dict[]).map((p) => p.PayloadType),
      ['com.apple.security.root'],
    );
    const again = await f.server.inject({ method: 'GET', url: new URL(config.trust_profile_url).pathname });
    assert.deepEqual(again.rawPayload, response.rawPayload, 'served from one generation while the roots are the same');
    assert.equal((await f.app.store.listProfiles({ kind: 'trust' })).length, 1);
  });

  test('unsigned output only by explicit option', async () => {
    const unsigned = await f.profiles.enrollment({ identity: 'scep', createdBy: 'test', sign: false });
    assert.match(unsigned.body.toString('utf8', 0, 40), /^<\?xml/);
    assert.equal(unsigned.record.signerCertificateId, null);
    const signed = await f.profiles.enrollment({ identity: 'scep', createdBy: 'test' });
    assert.equal(signed.body[0], 0x30, 'DER SignedData');
    assert.equal(signed.record.signerCertificateId, f.pki.profileSigning.certificate.id);
  });

  test('an enrollment link serves one signed profile; unknown, used and expired links get 404/410 and issue nothing', async () => {
    const { url } = await f.profiles.createLink({ identity: 'scep', createdBy: 'test' });
    const path = new URL(url).pathname;
    const counts = async () => ({ profiles: (await f.app.store.listProfiles()).length, identities: (await f.identities()).length });

    const served = await f.server.inject({ method: 'GET', url: path });
    assert.equal(served.statusCode, 200);
    assert.equal(served.headers['content-type'], 'application/x-apple-aspen-config');
    assert.equal(openSigned(served.rawPayload, f.root).profile.PayloadType, 'Configuration');

    const before = await counts();
    const reused = await f.server.inject({ method: 'GET', url: path });
    assert.equal(reused.statusCode, 410);
    const token = path.split('/').pop()!;
    const unknown = await f.server.inject({ method: 'GET', url: `/enroll/${token.slice(0, 16)}${'0'.repeat(40)}` });
    assert.equal(unknown.statusCode, 404);
    const malformed = await f.server.inject({ method: 'GET', url: '/enroll/not-a-token' });
    assert.equal(malformed.statusCode, 404);

    const { url: shortLived } = await f.profiles.createLink({ identity: 'pkcs12', createdBy: 'test', ttlMs: 1000 });
    f.advance(5000);
    const expired = await f.server.inject({ method: 'GET', url: new URL(shortLived).pathname });
    assert.equal(expired.statusCode, 410);
    assert.deepEqual(await counts(), before, 'no profile, challenge or identity was made for a refused link');
    const reasons = (await f.app.store.listAudit({ action: 'enroll-link.redeem', limit: 4 })).map((e) => e.reason);
    assert.deepEqual(reasons, [
      'enrollment link expired',
      'unknown enrollment link',
      'unknown enrollment link',
      'enrollment link already used',
    ]);
  });

  test('two concurrent redemptions of one link yield one profile', async () => {
    const { url } = await f.profiles.createLink({ identity: 'pkcs12', createdBy: 'test' });
    const path = new URL(url).pathname;
    const before = (await f.app.store.listProfiles({ kind: 'enrollment' })).length;
    const statuses = (await Promise.all([f.server.inject({ method: 'GET', url: path }), f.server.inject({ method: 'GET', url: path })]))
      .map((r) => r.statusCode)
      .sort();
    assert.deepEqual(statuses, [200, 410]);
    assert.equal((await f.app.store.listProfiles({ kind: 'enrollment' })).length, before + 1);
  });
});
