import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { test } from 'node:test';
import { exportRole, run, runCli, startServer, tempDir } from '../helpers/cli.ts';
import { curl } from '../helpers/mtls.ts';
import { envelope, makeCsr, newRequester, pkiMessage, readCertRep } from '../helpers/scep.ts';

/** A GeneralNames extension value written byte for byte (openssl's DER: form), for names openssl would not type. */
function sanDer(dnsName: Buffer): string {
  const name = Buffer.concat([Buffer.from([0x82, dnsName.length]), dnsName]);
  const names = Buffer.concat([Buffer.from([0x30, name.length]), name]);
  return `subjectAltName=DER:${[...names].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
}

/**
 * Issue "identity hardening", item 7, through the real server: SCEP issues the enrollment's subject (never the
 * requester's), subjectAltNames only from --scep-allowed-san, and refuses control characters and wildcards. A refusal
 * issues nothing, leaves the challenge unused and is audited.
 */
test('SCEP issues the enrollment subject and only allowed subjectAltNames', async (t) => {
  const dataDir = join(tempDir(), 'data');
  const server = await startServer(dataDir, ['--scep-allowed-san', 'dns:*.devices.example.com']);
  t.after(() => server.stop());
  const work = tempDir('scep-subject-');
  const root = exportRole(dataDir, 'root', work);
  const ra = exportRole(dataDir, 'scep-ra', work);
  const db = () => new Database(join(dataDir, 'certmdm.db'), { readonly: true });
  const identities = () => {
    const d = db();
    try {
      return (d.prepare("SELECT count(*) AS n FROM certificates WHERE role = 'device-identity'").get() as { n: number }).n;
    } finally {
      d.close();
    }
  };
  const consumed = (id: string) => {
    const d = db();
    try {
      return (d.prepare('SELECT consumed_at FROM scep_challenges WHERE id = ?').get(id) as { consumed_at: number | null }).consumed_at;
    } finally {
      d.close();
    }
  };
  const request = (options: { cn: string; addext?: string[] }) => {
    const minted = JSON.parse(runCli(['scep', 'challenge', '--enrollment', 'laptop-7', '--json', '--data', dataDir]).stdout) as {
      id: string;
      challenge: string;
    };
    const requester = newRequester();
    const body = pkiMessage(requester, envelope(makeCsr(requester, { ...options, challenge: minted.challenge }), ra));
    const response = curl(`https://localhost:${server.port}/scep?operation=PKIOperation`, {
      method: 'POST',
      body,
      contentType: 'application/x-pki-message',
      args: ['--cacert', root],
    });
    assert.equal(response.status, 200);
    return { rep: readCertRep(response.raw, requester, root), challengeId: minted.id };
  };
  const refused = (options: { cn: string; addext?: string[] }, reason: RegExp) => {
    const before = identities();
    const { rep, challengeId } = request(options);
    assert.equal(rep.status, '2', `refused: ${reason}`);
    assert.equal(rep.failInfo, '2', 'badRequest');
    assert.equal(identities(), before, 'nothing issued');
    assert.equal(consumed(challengeId), null, 'the challenge is still unused');
    const [event] = JSON.parse(runCli(['audit', 'list', '--json', '--limit', '1', '--data', dataDir]).stdout) as { reason: string }[];
    assert.match(event!.reason, reason);
  };

  // Another organisation's subject is asked for: the identity gets the enrollment's.
  const issued = request({ cn: 'Apple Root CA', addext: ['subjectAltName=DNS:laptop-7.devices.example.com'] });
  assert.equal(issued.rep.status, '0');
  const text = run('openssl', ['x509', '-noout', '-subject', '-ext', 'subjectAltName'], { input: issued.rep.certificates }).stdout;
  assert.match(text, /subject=O = certmdm, CN = laptop-7\n/);
  assert.match(text, /DNS:laptop-7\.devices\.example\.com/);

  refused({ cn: 'x', addext: ['subjectAltName=DNS:*.devices.example.com'] }, /wildcard/);
  refused({ cn: 'x', addext: ['subjectAltName=DNS:mdm.other.example'] }, /not allowed/);
  refused({ cn: 'x', addext: ['subjectAltName=DNS:a.b.devices.example.com'] }, /not allowed/);
  refused({ cn: 'x', addext: ['subjectAltName=email:ceo@example.com'] }, /not allowed/);
  refused({ cn: 'x', addext: [sanDer(Buffer.from('ok.devices.example.com\0.evil.example'))] }, /control characters/);
  refused({ cn: 'laptop\u0001admin' }, /control characters/);
});
