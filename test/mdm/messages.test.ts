import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { readMessage } from '../../src/mdm/messages.ts';
import { parsePlist, parsePlistDict, PlistError } from '../../src/plist/parse.ts';
import { serializePlist } from '../../src/plist/serialize.ts';
import { PlistReal } from '../../src/plist/types.ts';
import { SCHEMA_ROOT } from '../helpers/apple-schema.ts';
import { run } from '../helpers/cli.ts';
import { enrollTestDevice, plistBody } from '../helpers/device.ts';
import { mdmFixture } from './fixture.ts';

interface Key {
  key: string;
  type: string;
  subkeys?: Key[];
}

/** Apple's check-in schema for a MessageType, loaded at test time. */
function checkinSchema(messageType: string): Key[] {
  const file = {
    Authenticate: 'authenticate',
    TokenUpdate: 'tokenupdate',
    CheckOut: 'checkout',
    SetBootstrapToken: 'setbootstraptoken',
    GetBootstrapToken: 'getbootstraptoken',
    UserAuthenticate: 'userauthenticate',
  }[messageType];
  return (parse(readFileSync(join(SCHEMA_ROOT, 'mdm', 'checkin', `${file}.yaml`), 'utf8')) as { payloadkeys: Key[] }).payloadkeys;
}

const TYPES: Record<string, (v: unknown) => boolean> = {
  '<string>': (v) => typeof v === 'string',
  '<boolean>': (v) => typeof v === 'boolean',
  '<integer>': (v) => Number.isInteger(v),
  '<data>': (v) => Buffer.isBuffer(v),
  '<dictionary>': (v) => !!v && typeof v === 'object' && !Buffer.isBuffer(v) && !Array.isArray(v),
  '<array>': Array.isArray,
};

test('messages as plistlib writes them parse into what the check-in schemas describe', () => {
  // Real iPhones omit keys the YAML marks required only for other contexts (UserLongName, EnrollmentID on a device).
  const messages = [
    {
      MessageType: 'Authenticate',
      UDID: 'U1',
      Topic: 'com.apple.mgmt.External.x',
      DeviceName: 'iPhone',
      Model: 'iPhone15,2',
      ModelName: 'iPhone',
      OSVersion: '18.1',
      BuildVersion: '22B83',
      SerialNumber: 'X',
      IMEI: '35 000000 000000 0',
      ProductName: 'iPhone15,2',
    },
    {
      MessageType: 'TokenUpdate',
      UDID: 'U1',
      Topic: 'com.apple.mgmt.External.x',
      Token: { $data: 'AAEC' },
      PushMagic: 'M',
      UnlockToken: { $data: 'AQ==' },
      NotOnConsole: false,
      AwaitingConfiguration: false,
    },
    { MessageType: 'CheckOut', UDID: 'U1', Topic: 'com.apple.mgmt.External.x' },
    { MessageType: 'SetBootstrapToken', UDID: 'U1', BootstrapToken: { $data: 'AQ==' }, AwaitingConfiguration: false },
    { MessageType: 'GetBootstrapToken', UDID: 'U1', AwaitingConfiguration: true },
    { MessageType: 'UserAuthenticate', UDID: 'U1', UserID: 'A-B', DigestResponse: 'd' },
  ];
  for (const message of messages) {
    const parsed = parsePlistDict(plistBody(message));
    // The bootstrap-token schemas leave out the identifier every check-in carries; it is read as in the others.
    const identifiers: Key[] = [
      { key: 'UDID', type: '<string>' },
      { key: 'EnrollmentID', type: '<string>' },
    ];
    const keys = new Map([...identifiers, ...checkinSchema(message.MessageType)].map((k) => [k.key, k]));
    for (const [name, value] of Object.entries(parsed)) {
      const spec = keys.get(name);
      assert.ok(spec, `${message.MessageType}.${name} is in Apple's schema`);
      assert.ok(TYPES[spec.type]?.(value), `${message.MessageType}.${name} has type ${spec.type}`);
    }
    const read = readMessage(parsed);
    assert.ok('checkIn' in read && read.checkIn.type === message.MessageType);
  }
  const user = readMessage(
    parsePlistDict(
      plistBody({
        MessageType: 'TokenUpdate',
        UDID: 'U1',
        UserID: 'A-B',
        UserShortName: 'ann',
        Token: { $data: 'AA==' },
        PushMagic: 'm',
        Topic: 't',
      }),
    ),
  );
  assert.ok(
    'checkIn' in user &&
      user.checkIn.channel.key.enrollmentId === 'U1' &&
      user.checkIn.channel.key.userId === 'A-B' &&
      user.checkIn.channel.deviceId === 'U1',
  );
  const ue = readMessage(
    parsePlistDict(plistBody({ MessageType: 'Authenticate', EnrollmentID: 'E1', Topic: 't', DeviceName: 'x', Model: 'm', ModelName: 'n' })),
  );
  assert.ok('checkIn' in ue && ue.checkIn.channel.kind === 'user-enrollment' && ue.checkIn.channel.deviceId === 'E1');
  assert.throws(() => readMessage(parsePlistDict(plistBody({ MessageType: 'Authenticate', Topic: 't' }))), /names no UDID or EnrollmentID/);
  assert.throws(() => readMessage(parsePlistDict(plistBody({ MessageType: 'Nope', UDID: 'x' }))), /unknown MessageType/);
});

test('channel identifiers: control characters refused in each, ":" kept as data in a structural key', () => {
  for (const [key, extra] of [
    ['UDID', {}],
    ['EnrollmentID', {}],
    ['UserID', { UDID: 'D' }],
    ['EnrollmentUserID', { EnrollmentID: 'E' }],
  ] as const)
    for (const bad of ['a\u0000b', 'a\nb', 'a\u001bb', 'a\u007fb', 'a\u0085b'])
      assert.throws(
        () => readMessage({ Status: 'Idle', ...extra, [key]: bad }),
        new RegExp(`${key} must not contain control characters`),
        `${key} ${JSON.stringify(bad)}`,
      );
  const device = readMessage({ Status: 'Idle', UDID: 'V:U' });
  assert.ok('report' in device);
  assert.deepEqual(device.report.channel.key, { enrollmentId: 'V:U', userId: null });
  const user = readMessage({ Status: 'Idle', UDID: 'V', UserID: 'U' });
  assert.ok('report' in user);
  assert.deepEqual(user.report.channel.key, { enrollmentId: 'V', userId: 'U' });
  const enrollmentUser = readMessage({ Status: 'Idle', EnrollmentID: 'E:1', EnrollmentUserID: 'x:y' });
  assert.ok('report' in enrollmentUser);
  assert.deepEqual(enrollmentUser.report.channel.key, { enrollmentId: 'E:1', userId: 'x:y' });
});

test('the plist parser agrees with plistlib, and refuses what is not a plist', () => {
  const tricky = {
    s: 'a & b < c > d "q" \'a\' — ünïcødé 😀',
    n: -42,
    big: 9007199254740991,
    t: true,
    f: false,
    d: { $data: Buffer.from([0, 1, 2, 255]).toString('base64') },
    a: [[], {}, ''],
    nested: { x: { y: { z: 'deep' } } },
  };
  const parsed = parsePlistDict(plistBody(tricky)) as Record<string, unknown>;
  assert.equal(parsed.s, tricky.s);
  assert.equal(parsed.n, -42);
  assert.equal(parsed.big, 9007199254740991);
  assert.equal(parsed.t, true);
  assert.deepEqual(parsed.d, Buffer.from([0, 1, 2, 255]));
  assert.deepEqual(JSON.parse(JSON.stringify(parsed.a)), [[], {}, '']);
  assert.equal(Object.getPrototypeOf(parsed), null, 'dictionaries have no prototype: a "__proto__" key is just a key');
  // Our writer's output is read back by plistlib unchanged.
  const written = serializePlist({
    s: tricky.s,
    r: new PlistReal(1.5),
    d: Buffer.from('hi'),
    when: new Date('2026-01-02T03:04:05Z'),
    list: [1, 'two'],
  });
  const back = run(
    'python3',
    [
      '-c',
      'import plistlib,sys,json;d=plistlib.loads(sys.stdin.buffer.read());print(json.dumps([d["s"],d["r"],d["d"].decode(),d["when"].isoformat(),d["list"]]))',
    ],
    { input: written as unknown as string },
  );
  assert.deepEqual(JSON.parse(back.stdout), [tricky.s, 1.5, 'hi', '2026-01-02T03:04:05', [1, 'two']]);
  for (const bad of [
    '',
    'not xml',
    '<plist><dict><key>a</key></dict></plist>',
    '<plist><string>x</plist>',
    '<plist><integer>1.5</integer></plist>',
    '<plist><data>@@</data></plist>',
    '<plist><dict/></plist>trailing',
    '<plist><foo/></plist>',
    '<plist><dict><key>a</key><string>1</string><key>a</key><string>2</string></dict></plist>',
    // Control characters XML does not allow, raw or by reference (PostgreSQL text cannot even store U+0000).
    '<plist><string>VICTIM\u0000x</string></plist>',
    '<plist><string>a\u001bb</string></plist>',
    '<plist><string>a&#0;b</string></plist>',
    '<plist><string>a&#x1;b</string></plist>',
  ]) {
    assert.throws(() => parsePlist(bad), PlistError, bad);
  }
  assert.throws(() => parsePlist(Buffer.from('bplist00\x00\x01')), /binary property lists/);
  // Tab, LF and CR are XML characters: kept.
  assert.equal(parsePlist('<plist><string>a\tb\r\nc&#9;</string></plist>'), 'a\tb\r\nc\t');
  assert.throws(() => parsePlist('<plist>' + '<array>'.repeat(100) + '</array>'.repeat(100) + '</plist>'), /nested too deeply/);
});

test('webhook: MicroMDM-style events with an HMAC-SHA256 signature', async (t) => {
  const events: { body: string; signature: string }[] = [];
  const hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      events.push({ body, signature: String(req.headers['x-hmac-signature']) });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  t.after(() => hook.close());
  const port = (hook.address() as { port: number }).port;
  const f = await mdmFixture({ 'webhook-url': `http://127.0.0.1:${port}/hook`, 'webhook-secret': 's3cret' });
  t.after(() => f.close());
  const device = await enrollTestDevice(f);
  assert.equal(
    (await f.speak(device, { MessageType: 'Authenticate', Topic: 't', DeviceName: 'x', Model: 'm', ModelName: 'n' })).statusCode,
    200,
  );
  assert.equal((await f.speak(device, { Status: 'Idle' })).statusCode, 200);
  for (let i = 0; i < 50 && events.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(events.length, 2);
  for (const e of events) assert.equal(e.signature, createHmac('sha256', 's3cret').update(e.body).digest('base64'));
  const [auth, connect] = events.map((e) => JSON.parse(e.body));
  assert.equal(auth.topic, 'mdm.Authenticate');
  assert.equal(auth.checkin_event.udid, device.udid);
  assert.match(Buffer.from(auth.checkin_event.raw_payload, 'base64').toString(), /<string>Authenticate<\/string>/);
  assert.equal(connect.topic, 'mdm.Connect');
  assert.equal(connect.acknowledge_event.status, 'Idle');
});

test("appleMdmSignature writes Apple's form, which openssl verifies as detached CMS", async () => {
  const { appleMdmSignature } = await import('../../src/mdm/sign-message.ts');
  const { newRequester } = await import('../helpers/scep.ts');
  const { tempDir } = await import('../helpers/cli.ts');
  const { writeFileSync } = await import('node:fs');
  const signer = newRequester();
  const body = plistBody({ UDID: 'X', Status: 'Idle' });
  const signature = appleMdmSignature(body, signer.selfSigned, signer.key);
  assert.equal(signature.slice(0, 20), 'MIAGCSqGSIb3DQEHAqCA');
  const dir = tempDir();
  writeFileSync(join(dir, 'sig'), Buffer.from(signature, 'base64'));
  writeFileSync(join(dir, 'body'), body);
  const opensslVerifies = (content: string) =>
    run('openssl', [
      'cms',
      '-verify',
      '-binary',
      '-inform',
      'DER',
      '-in',
      join(dir, 'sig'),
      '-content',
      join(dir, content),
      '-noverify',
      '-out',
      '/dev/null',
    ]);
  const verified = opensslVerifies('body');
  assert.equal(verified.status, 0, verified.stderr);
  writeFileSync(join(dir, 'other'), Buffer.concat([body, Buffer.from(' ')]));
  assert.notEqual(opensslVerifies('other').status, 0);
});
