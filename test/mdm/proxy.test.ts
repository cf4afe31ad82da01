import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CLIENT_CERT_HEADERS } from '../../src/mdm/proxy-certificate.ts';
import { exportRole, freePort, ROOT, run, startServer, tempDir, type RunningServer } from '../helpers/cli.ts';
import { mdmSignature, plistBody } from '../helpers/device.ts';
import { auditSince, lastAuditId, type AuditRow } from '../helpers/audit.ts';
import { curl, scepIdentity, type PeerIdentity } from '../helpers/mtls.ts';
import { storedState } from '../helpers/state.ts';
import { localhostCertificate, startNginx } from '../helpers/nginx.ts';

/**
 * Identity from a TLS-terminating proxy (issue 12, items 3 and 10): certmdm honours one configured header in one
 * configured format from a trusted proxy, refuses every other client-certificate header, and audits each identity
 * refusal with the certificates the request presented. Real certmdm, real nginx, curl and scepclient throughout.
 */

const SNIPPET = join(ROOT, 'deploy', 'nginx', 'certmdm-client-cert.conf');
const TOPIC = 'com.apple.mgmt.External.proxy-test';
const SERVER_TYPE = 'application/x-apple-aspen-mdm';
/** nginx connects to certmdm from this address (proxy_bind); curl stands in for a proxy with --interface. */
const PROXY = '127.0.0.3';
const VICTIM = 'PROXY-VICTIM-1';

const sha256 = (der: Buffer) => createHash('sha256').update(der).digest('hex');
const put = (url: string, body: Buffer, args: string[], contentType?: string) => curl(url, { body, contentType, args });

/** The header values proxies write: nginx's escaped PEM, RFC 9440, and Go's url.QueryEscape (Python's quote_plus). */
const asNginx = (pem: string) => encodeURIComponent(pem);
const asRfc9440 = (der: Buffer) => `:${der.toString('base64')}:`;
function asGoQuery(text: string): string {
  const r = run('python3', ['-c', 'import sys, urllib.parse; sys.stdout.write(urllib.parse.quote_plus(sys.stdin.read()))'], {
    input: text,
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('MDM identity from a TLS-terminating proxy', () => {
  const dataDir = join(tempDir(), 'data');
  const work = tempDir('proxy-');
  let server: RunningServer;
  let root: string;
  let token: string;
  let victim: PeerIdentity;
  let victimPem: string;
  let victimDer: Buffer;
  let commandUuid: string;
  const idle = plistBody({ UDID: VICTIM, Status: 'Idle' });

  const restart = async (flags: string[]) => {
    await server.stop();
    server = await startServer(dataDir, ['--scep-ciphers', 'aes,des3,des', ...flags]);
  };
  const direct = (path: string, body: Buffer, args: string[], contentType?: string) =>
    put(`https://localhost:${server.port}${path}`, body, ['--cacert', root, ...args], contentType);
  /** A request refused with `status` and `refusal`, audited once as an identity decision, with nothing stored changed. */
  const refused = (what: string, send: () => { status: number; body: string }, status: number, refusal: string): AuditRow => {
    const state = storedState(join(dataDir, 'certmdm.db'));
    const mark = lastAuditId(dataDir);
    const response = send();
    assert.equal(response.status, status, `${what}: ${response.body}`);
    if (commandUuid) assert.ok(!response.body.includes(commandUuid), `${what}: the victim's command was not handed out`);
    const rows = auditSince(dataDir, mark).filter((row) => row.action === 'mdm.identity');
    assert.equal(rows.length, 1, `${what}: one identity audit row`);
    assert.equal(rows[0]!.outcome, 'denied');
    assert.equal(rows[0]!.detail?.refusal, refusal, `${what}: ${rows[0]!.reason}`);
    assert.deepEqual(storedState(join(dataDir, 'certmdm.db')), state, `${what}: stored state unchanged`);
    return rows[0]!;
  };

  before(async () => {
    server = await startServer(dataDir, ['--scep-ciphers', 'aes,des3,des', '--mdm-identity-sources', 'proxy', '--trusted-proxies', PROXY]);
    token = /^\s+(cmdm_\S+)$/m.exec(server.stderr())![1]!;
    root = exportRole(dataDir, 'root', work);
    writeFileSync(
      join(work, 'client-ca.pem'),
      readFileSync(root, 'utf8') + readFileSync(exportRole(dataDir, 'intermediate', work), 'utf8'),
    );
    localhostCertificate(work, 'nginx');
    victim = scepIdentity(dataDir, server.port, root, VICTIM);
    victimPem = readFileSync(victim.cert, 'utf8');
    victimDer = victim.der;
  });
  after(() => server.stop());

  test('through nginx (ssl_verify_client optional): a client without a certificate cannot pass as the victim with any client-certificate header', async (t) => {
    const snippetPort = await freePort();
    const plainPort = await freePort();
    const block = (port: number, proxyHeaders: string) => `server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${work}/nginx.pem;
    ssl_certificate_key ${work}/nginx.key;
    ssl_client_certificate ${work}/client-ca.pem;
    ssl_verify_client optional;
    ssl_verify_depth 2;
    location / {
      proxy_pass https://127.0.0.1:${server.port};
      proxy_bind ${PROXY};
      proxy_ssl_verify off;
      ${proxyHeaders}
    }
  }`;
    // The shipped snippet, and beside it the one line deployments used before it (sets X-Client-Cert, clears nothing).
    const nginx = await startNginx(
      () => `${block(snippetPort, `include ${SNIPPET};`)}\n${block(plainPort, 'proxy_set_header X-Client-Cert $ssl_client_escaped_cert;')}`,
      snippetPort,
    );
    t.after(() => nginx.stop());
    const via = (port: number, path: string, body: Buffer, args: string[], contentType?: string) =>
      put(`https://localhost:${port}${path}`, body, ['--cacert', join(work, 'nginx.pem'), ...args], contentType);
    const withKey = ['--cert', victim.cert, '--key', victim.key];

    // The real device, with its key, through the snippet: enrolls, and a command is queued for it.
    const auth = plistBody({
      MessageType: 'Authenticate',
      UDID: VICTIM,
      Topic: TOPIC,
      DeviceName: 'victim',
      Model: 'iPad13,1',
      ModelName: 'iPad',
    });
    const enrolled = via(snippetPort, '/mdm/checkin', auth, withKey);
    assert.equal(enrolled.status, 200, enrolled.body + nginx.log('error').slice(-2000));
    const tokenUpdate = plistBody({
      MessageType: 'TokenUpdate',
      UDID: VICTIM,
      Topic: TOPIC,
      Token: { $data: Buffer.alloc(32, 7).toString('base64') },
      PushMagic: 'magic-1',
    });
    assert.equal(via(snippetPort, '/mdm/checkin', tokenUpdate, withKey).status, 200);
    const enqueue = curl(`https://localhost:${server.port}/v1/commands`, {
      method: 'POST',
      body: Buffer.from(
        JSON.stringify({ devices: [VICTIM], command: { RequestType: 'DeviceInformation', Queries: ['DeviceName'] }, push: false }),
      ),
      contentType: 'application/json',
      args: ['--cacert', root, '-H', `Authorization: Bearer ${token}`],
    });
    assert.equal(enqueue.status, 201, enqueue.body);
    commandUuid = (JSON.parse(enqueue.body) as { command_uuid: string }).command_uuid;
    assert.match(commandUuid, /^[0-9A-Fa-f-]{36}$/);

    // Each header holding the victim's certificate in the form that header is read in, sent by a client without one.
    const forged = (name: string) => `${name}: ${name.startsWith('client-cert') ? asRfc9440(victimDer) : asNginx(victimPem)}`;
    for (const name of CLIENT_CERT_HEADERS) {
      // Without the snippet nginx passes the header on (it overwrites only its own, X-Client-Cert); certmdm refuses
      // it by name. Before the fix Client-Cert was read and the client served as the victim (200).
      if (name !== 'x-client-cert') {
        const row = refused(
          `no snippet, ${name}`,
          () => via(plainPort, '/mdm/server', idle, ['-H', forged(name)], SERVER_TYPE),
          403,
          'proxy-other-header',
        );
        assert.match(row.reason ?? '', new RegExp(`header ${name} is not the configured x-client-cert`));
        assert.equal(row.target, VICTIM);
        assert.deepEqual(row.detail?.certificates, { [`header:${name}`]: sha256(victimDer) }, `${name}: the certificate shown is audited`);
      }
      // Behind the snippet nginx clears every one of them: certmdm sees no certificate at all.
      refused(`snippet, ${name}`, () => via(snippetPort, '/mdm/server', idle, ['-H', forged(name)], SERVER_TYPE), 403, 'no-identity');
    }
    // A client with its key but a second header beside nginx's is refused too: which one speaks would be a guess.
    refused(
      'key and a second header',
      () => via(plainPort, '/mdm/server', idle, [...withKey, '-H', forged('client-cert')], SERVER_TYPE),
      403,
      'proxy-other-header',
    );

    // The real device through the same nginx still gets its command.
    const served = via(snippetPort, '/mdm/server', idle, withKey, SERVER_TYPE);
    assert.equal(served.status, 200, served.body);
    assert.match(served.body, new RegExp(commandUuid));
  });

  test('the snippet sets the one default header from nginx and clears every other client-certificate header certmdm knows', () => {
    const lines = readFileSync(SNIPPET, 'utf8')
      .split('\n')
      .map((l) => l.replace(/#.*/, '').trim())
      .filter(Boolean);
    const set = new Map(lines.map((l) => /^proxy_set_header\s+(\S+)\s+(.+);$/.exec(l)!).map((m) => [m[1]!.toLowerCase(), m[2]!]));
    assert.equal(set.size, lines.length, 'every line is one proxy_set_header, each header once');
    assert.equal(set.get('x-client-cert'), '$ssl_client_escaped_cert');
    for (const name of CLIENT_CERT_HEADERS) if (name !== 'x-client-cert') assert.equal(set.get(name), '""', `${name} is cleared`);
    assert.deepEqual([...set.keys()].sort(), [...CLIENT_CERT_HEADERS].sort());
  });

  test('from the trusted proxy: one line of the configured header, in its format; an empty one is no certificate', () => {
    const asProxy = ['--interface', PROXY];
    const accepted = direct('/mdm/server', idle, [...asProxy, '-H', `X-Client-Cert: ${asNginx(victimPem)}`], SERVER_TYPE);
    assert.equal(accepted.status, 200, accepted.body);
    // Two lines (the client's and the proxy's): refused, not joined and read as the first (before the fix: served).
    const twice = refused(
      'duplicate',
      () =>
        direct(
          '/mdm/server',
          idle,
          [...asProxy, '-H', `X-Client-Cert: ${asNginx(victimPem)}`, '-H', `X-Client-Cert: ${asNginx(victimPem)}`],
          SERVER_TYPE,
        ),
      403,
      'proxy-duplicate-header',
    );
    assert.equal(twice.detail?.certificate, sha256(victimDer));
    refused('empty', () => direct('/mdm/server', idle, [...asProxy, '-H', 'X-Client-Cert;'], SERVER_TYPE), 403, 'no-identity');
    refused(
      'not PEM',
      () => direct('/mdm/server', idle, [...asProxy, '-H', 'X-Client-Cert: %ZZnot-pem'], SERVER_TYPE),
      400,
      'proxy-malformed-header',
    );
    // The format is configured, not guessed: Go's form ('+' for space) is not nginx's.
    refused(
      'another format',
      () => direct('/mdm/server', idle, [...asProxy, '-H', `X-Client-Cert: ${asGoQuery(victimPem)}`], SERVER_TYPE),
      400,
      'proxy-malformed-header',
    );
  });

  test('from any other address the header is refused, audited with the certificate it holds (item 10)', () => {
    const row = refused(
      'untrusted',
      () => direct('/mdm/server', idle, ['-H', `X-Client-Cert: ${asNginx(victimPem)}`], SERVER_TYPE),
      403,
      'proxy-untrusted-peer',
    );
    assert.match(row.reason ?? '', /not a trusted proxy/);
    assert.equal(row.detail?.certificate, sha256(victimDer));
    assert.deepEqual(row.detail?.certificates, { proxy: sha256(victimDer) });
  });

  test('rfc9440: Client-Cert by default, and nginx-style X-Client-Cert beside it is refused', async () => {
    await restart(['--mdm-identity-sources', 'proxy', '--trusted-proxies', PROXY, '--proxy-cert-format', 'rfc9440']);
    const asProxy = ['--interface', PROXY];
    const accepted = direct('/mdm/server', idle, [...asProxy, '-H', `Client-Cert: ${asRfc9440(victimDer)}`], SERVER_TYPE);
    assert.equal(accepted.status, 200, accepted.body);
    refused(
      'x-client-cert beside',
      () =>
        direct(
          '/mdm/server',
          idle,
          [...asProxy, '-H', `Client-Cert: ${asRfc9440(victimDer)}`, '-H', `X-Client-Cert: ${asNginx(victimPem)}`],
          SERVER_TYPE,
        ),
      403,
      'proxy-other-header',
    );
    refused(
      'PEM in Client-Cert',
      () => direct('/mdm/server', idle, [...asProxy, '-H', `Client-Cert: ${asNginx(victimPem)}`], SERVER_TYPE),
      400,
      'proxy-malformed-header',
    );
  });

  test("go-query-escape: '+' is a space and %2B a plus; PEM or Traefik's bare base64", async () => {
    await restart([
      '--mdm-identity-sources',
      'proxy',
      '--trusted-proxies',
      PROXY,
      '--proxy-cert-format',
      'go-query-escape',
      '--proxy-cert-header',
      'X-Forwarded-Tls-Client-Cert',
    ]);
    const asProxy = ['--interface', PROXY];
    const base64 = victimDer.toString('base64');
    assert.match(base64, /\+/, "the certificate's base64 has a '+' to get wrong");
    const pemForm = asGoQuery(victimPem);
    assert.match(pemForm, /BEGIN\+CERTIFICATE/);
    assert.match(pemForm, /%2B/);
    for (const [what, value] of [
      ['PEM', pemForm],
      ['bare base64', asGoQuery(base64)],
    ]) {
      const accepted = direct('/mdm/server', idle, [...asProxy, '-H', `X-Forwarded-Tls-Client-Cert: ${value}`], SERVER_TYPE);
      assert.equal(accepted.status, 200, `${what}: ${accepted.body}`);
    }
    // A literal '+' in the base64 is a space under form rules: that value is not a certificate.
    refused(
      'unescaped plus',
      () => direct('/mdm/server', idle, [...asProxy, '-H', `X-Forwarded-Tls-Client-Cert: ${pemForm.replace(/%2B/g, '+')}`], SERVER_TYPE),
      400,
      'proxy-malformed-header',
    );
    refused(
      'x-client-cert beside',
      () =>
        direct(
          '/mdm/server',
          idle,
          [...asProxy, '-H', `X-Forwarded-Tls-Client-Cert: ${pemForm}`, '-H', `X-Client-Cert: ${asNginx(victimPem)}`],
          SERVER_TYPE,
        ),
      403,
      'proxy-other-header',
    );
  });

  test('refusals while reading the identity are audited with the certificates presented (item 10)', async () => {
    await restart(['--mdm-identity-sources', 'mtls,proxy,signature', '--trusted-proxies', PROXY]);
    const signer = { certPem: victim.cert, requester: { keyPem: victim.key } };
    // A signature by the victim's key over another body: it does not verify; its signer certificate is audited.
    const other = plistBody({ UDID: VICTIM, Status: 'Idle', Note: 'another body' });
    const badSignature = refused(
      'bad signature',
      () => direct('/mdm/server', idle, ['-H', `Mdm-Signature: ${mdmSignature(other, signer)}`], SERVER_TYPE),
      403,
      'signature-invalid',
    );
    assert.match(badSignature.reason ?? '', /not this body|does not verify/);
    assert.equal(badSignature.detail?.certificate, sha256(victimDer));
    assert.deepEqual(badSignature.detail?.certificates, { signature: sha256(victimDer) });

    // mTLS with one identity, Mdm-Signature by another: each source's certificate is audited.
    const second = scepIdentity(dataDir, server.port, root, 'PROXY-SECOND-1');
    const secondDer = second.der;
    const disagree = refused(
      'sources disagree',
      () =>
        direct(
          '/mdm/server',
          idle,
          ['--cert', second.cert, '--key', second.key, '-H', `Mdm-Signature: ${mdmSignature(idle, signer)}`],
          SERVER_TYPE,
        ),
      403,
      'sources-disagree',
    );
    assert.deepEqual(disagree.detail?.certificates, { mtls: sha256(secondDer), signature: sha256(victimDer) });
    assert.equal(disagree.detail?.certificate, null, 'no single certificate: the sources disagree');

    // The proxy header from a client that is not the proxy, beside a good signature: both certificates audited.
    const untrusted = refused(
      'untrusted proxy beside a signature',
      () =>
        direct(
          '/mdm/server',
          idle,
          ['-H', `X-Client-Cert: ${asNginx(readFileSync(second.cert, 'utf8'))}`, '-H', `Mdm-Signature: ${mdmSignature(idle, signer)}`],
          SERVER_TYPE,
        ),
      403,
      'proxy-untrusted-peer',
    );
    assert.deepEqual(untrusted.detail?.certificates, { proxy: sha256(secondDer), signature: sha256(victimDer) });
  });
});
