import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { test } from 'node:test';
import { auditSince, lastAuditId } from '../helpers/audit.ts';
import { exportRole, runCli, startServer, tempDir } from '../helpers/cli.ts';
import { curl } from '../helpers/mtls.ts';
import { envelope, makeCsr, newRequester, pkiMessage, readCertRep } from '../helpers/scep.ts';

/**
 * Issue "identity hardening", item 8, through the real server: a correctly signed and encrypted PKCSReq under a
 * valid challenge whose CSR asks for an extension with a malformed value (openssl's DER: form writes it byte for
 * byte). Before the fix: HTTP 500 with the DER reader's message ("truncated ASN.1 element") and no audit row. Now a
 * CertRep FAILURE (badRequest), audited with the reason, nothing issued, the challenge left unused.
 */
test('SCEP: a CSR extension with a malformed value is a badRequest refusal, not a 500', async (t) => {
  const dataDir = join(tempDir(), 'data');
  const server = await startServer(dataDir);
  t.after(() => server.stop());
  const work = tempDir('scep-malformed-');
  const root = exportRole(dataDir, 'root', work);
  const ra = exportRole(dataDir, 'scep-ra', work);
  const read = <T>(sql: string, ...params: unknown[]): T => {
    const db = new Database(join(dataDir, 'certmdm.db'), { readonly: true });
    try {
      return db.prepare(sql).get(...params) as T;
    } finally {
      db.close();
    }
  };
  const identities = () => read<{ n: number }>("SELECT count(*) AS n FROM certificates WHERE role = 'device-identity'").n;
  const minted = JSON.parse(runCli(['scep', 'challenge', '--json', '--data', dataDir]).stdout) as { id: string; challenge: string };
  const requester = newRequester();
  const send = (addext: string[]) =>
    curl(`https://localhost:${server.port}/scep?operation=PKIOperation`, {
      method: 'POST',
      body: pkiMessage(requester, envelope(makeCsr(requester, { challenge: minted.challenge, addext }), ra)),
      contentType: 'application/x-pki-message',
      args: ['--cacert', root],
    });

  for (const extension of [
    'subjectAltName=DER:30:05', // truncated
    'basicConstraints=DER:01:01:ff', // a BOOLEAN where a SEQUENCE belongs
    'keyUsage=DER:03', // truncated BIT STRING
    'extendedKeyUsage=DER:04:00', // an OCTET STRING where a SEQUENCE belongs
    'keyUsage=DER:04:02:07:80', // an OCTET STRING read as key usage bits
  ]) {
    const mark = lastAuditId(dataDir);
    const before = identities();
    const response = send([extension]);
    assert.equal(response.status, 200, `${extension}: ${response.body}`);
    assert.doesNotMatch(response.body, /ASN\.1|Internal Server Error/);
    const rep = readCertRep(response.raw, requester, root);
    assert.equal(rep.status, '2', `${extension}: FAILURE`);
    assert.equal(rep.failInfo, '2', `${extension}: badRequest`);
    const rows = auditSince(dataDir, mark).filter((row) => row.action === 'scep.pkioperation');
    assert.equal(rows.length, 1, `${extension}: audited once`);
    assert.equal(rows[0]!.outcome, 'denied');
    assert.match(rows[0]!.reason ?? '', /malformed extension/);
    assert.equal(identities(), before, `${extension}: nothing issued`);
    assert.equal(read<{ consumed_at: number | null }>('SELECT consumed_at FROM scep_challenges WHERE id = ?', minted.id).consumed_at, null);
  }
  // The same challenge still serves a well-formed request.
  const ok = readCertRep(send([]).raw, requester, root);
  assert.equal(ok.status, '0');
});
