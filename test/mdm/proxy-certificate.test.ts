import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveConfig } from '../../src/config.ts';
import { OperatorError } from '../../src/errors.ts';
import { IdentityError } from '../../src/mdm/identity-error.ts';
import { proxyCertificate, type ProxyCertFormat } from '../../src/mdm/proxy-certificate.ts';
import { tempDir } from '../helpers/cli.ts';
import { selfSigned } from '../helpers/openssl.ts';

/**
 * The proxy header reader on its own, for the edges the real-server tests (proxy.test.ts) do not reach: each value
 * is either the one certificate or a named refusal, never an untyped exception.
 */
const dir = tempDir('proxy-cert-');
selfSigned({ key: join(dir, 'k.pem'), cert: join(dir, 'c.pem'), subject: '/CN=device', days: 2 });
const pem = readFileSync(join(dir, 'c.pem'), 'utf8');
const der = Buffer.from(/-----BEGIN CERTIFICATE-----([\s\S]+?)-----END/.exec(pem)![1]!.replace(/\s+/g, ''), 'base64');
const PROXY = '127.0.0.3';

const read = (lines: string[], format: ProxyCertFormat = 'nginx-escaped-pem', peer = PROXY, header = 'x-client-cert') =>
  proxyCertificate(lines, peer, { trustedProxies: [PROXY], header, format });

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof IdentityError, `a typed refusal, not ${String(err)}`);
    return err.refusal;
  }
  assert.fail('expected a refusal');
}

test('the configured header is read whatever its case, and the peer may be an IPv4-mapped address', () => {
  assert.deepEqual(read(['X-CLIENT-CERT', encodeURIComponent(pem)]), der);
  assert.deepEqual(read(['x-client-cert', encodeURIComponent(pem)], 'nginx-escaped-pem', `::ffff:${PROXY}`), der);
});

test('no certificate: no header, or an empty one, from anyone', () => {
  assert.equal(read([]), undefined);
  assert.equal(read(['X-Client-Cert', '']), undefined);
  assert.equal(read(['X-Client-Cert', '  ']), undefined);
  assert.equal(read(['X-Client-Cert', ''], 'nginx-escaped-pem', '127.0.0.1'), undefined);
});

test('another client-certificate header is refused even empty, and even beside the configured one', () => {
  assert.equal(
    refusal(() => read(['X-SSL-Client-Cert', ''])),
    'proxy-other-header',
  );
  assert.equal(
    refusal(() => read(['X-Client-Cert', encodeURIComponent(pem), 'client-cert', `:${der.toString('base64')}:`])),
    'proxy-other-header',
  );
  // The configured header may be any name; X-Client-Cert is then just another known header.
  assert.equal(
    refusal(() => read(['X-Client-Cert', encodeURIComponent(pem)], 'rfc9440', PROXY, 'client-cert')),
    'proxy-other-header',
  );
  assert.deepEqual(read(['Client-Cert', `:${der.toString('base64')}:`], 'rfc9440', PROXY, 'client-cert'), der);
});

test('two lines of the configured header are refused, also when one is empty', () => {
  assert.equal(
    refusal(() => read(['X-Client-Cert', encodeURIComponent(pem), 'X-Client-Cert', encodeURIComponent(pem)])),
    'proxy-duplicate-header',
  );
  assert.equal(
    refusal(() => read(['X-Client-Cert', '', 'X-Client-Cert', encodeURIComponent(pem)])),
    'proxy-duplicate-header',
  );
});

test('an untrusted peer is refused before the value is judged, with the certificate kept for the audit', () => {
  const err = (() => {
    try {
      read(['X-Client-Cert', encodeURIComponent(pem)], 'nginx-escaped-pem', '127.0.0.1');
    } catch (e) {
      return e as IdentityError;
    }
  })();
  assert.equal(err?.refusal, 'proxy-untrusted-peer');
  assert.deepEqual(err?.presented, [{ source: 'proxy', certificate: der }]);
  assert.equal(
    refusal(() => read(['X-Client-Cert', 'garbage'], 'nginx-escaped-pem', '127.0.0.1')),
    'proxy-untrusted-peer',
  );
});

test('values not exactly one certificate in the configured format are malformed (400)', () => {
  const b64 = der.toString('base64');
  const cases: [string, ProxyCertFormat, string][] = [
    ['a chain', 'nginx-escaped-pem', encodeURIComponent(pem + pem)],
    ['text after the PEM', 'nginx-escaped-pem', encodeURIComponent(`${pem}trailer`)],
    ['bad escape', 'nginx-escaped-pem', '%E0%A4%A'],
    ['not base64', 'nginx-escaped-pem', encodeURIComponent(pem.replace(/[A-Z]/, '*'))],
    ['base64 of no certificate', 'rfc9440', `:${Buffer.from('not a certificate').toString('base64')}:`],
    ['RFC 9440 with parameters', 'rfc9440', `:${b64}:;a=1`],
    ['RFC 9440 list', 'rfc9440', `:${b64}:, :${b64}:`],
    ['RFC 9440 without colons', 'rfc9440', b64],
    ['Go form with a literal plus', 'go-query-escape', encodeURIComponent(pem).replace(/%20/g, '+').replace(/%2B/g, '+')],
    ['empty PEM body', 'nginx-escaped-pem', encodeURIComponent('-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n')],
  ];
  assert.match(b64, /\+/, "the certificate's base64 has a '+'");
  for (const [what, format, value] of cases) {
    try {
      read(['X-Client-Cert', value], format);
      assert.fail(`${what}: accepted`);
    } catch (err) {
      assert.ok(err instanceof IdentityError, `${what}: ${String(err)}`);
      assert.equal(err.refusal, 'proxy-malformed-header', what);
      assert.equal(err.status, 400, what);
    }
  }
});

test('options: one header and one format, with defaults that match; RFC 9440 header only in its format', () => {
  const config = (flags: Record<string, string>) => resolveConfig(flags, {}, dir);
  assert.deepEqual(pick(config({})), ['x-client-cert', 'nginx-escaped-pem']);
  assert.deepEqual(pick(config({ 'proxy-cert-format': 'rfc9440' })), ['client-cert', 'rfc9440']);
  assert.deepEqual(pick(config({ 'proxy-cert-format': 'go-query-escape', 'proxy-cert-header': 'X-Forwarded-Tls-Client-Cert' })), [
    'x-forwarded-tls-client-cert',
    'go-query-escape',
  ]);
  assert.deepEqual(pick(resolveConfig({}, { CERTMDM_PROXY_CERT_FORMAT: 'rfc9440' }, dir)), ['client-cert', 'rfc9440']);
  for (const flags of <Record<string, string>[]>[
    { 'proxy-cert-format': 'pem' },
    { 'proxy-cert-header': 'Client-Cert' },
    { 'proxy-cert-header': 'Client-Cert-Chain', 'proxy-cert-format': 'rfc9440' },
    { 'proxy-cert-header': 'Mdm-Signature' },
    { 'proxy-cert-header': 'bad header' },
  ])
    assert.throws(() => config(flags), OperatorError, JSON.stringify(flags));
});

function pick(config: { proxyCertHeader: string; proxyCertFormat: string }): [string, string] {
  return [config.proxyCertHeader, config.proxyCertFormat];
}
