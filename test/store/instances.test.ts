import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, startServer, tempDir, type RunningServer } from '../helpers/cli.ts';
import { startPostgres, type ThrowawayPostgres } from '../helpers/postgres.ts';
import { envelope, makeCsr, newRequester, pkiMessage, readCertRep } from '../helpers/scep.ts';

function post(url: string, body: Buffer, caFile: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', ca: readFileSync(caFile), headers: { 'content-type': 'application/x-pki-message' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Several `certmdm serve` processes on one PostgreSQL database (issue 14): what one instance decides, the others
 * honour on their next request, and a race between instances has one winner. Real processes, Debian's scepclient.
 */
describe('two instances on one PostgreSQL database', () => {
  let cluster: ThrowawayPostgres;
  let store: string;
  const dirs = [join(tempDir(), 'a'), join(tempDir(), 'b')];
  const servers: RunningServer[] = [];
  let root: string;
  const cli = (args: string[], instance = 0) => {
    const r = runCli([...args, '--data', dirs[instance]!, '--store', store]);
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    cluster = await startPostgres();
    store = await cluster.createDatabase();
    // The first instance creates the CA and the master key; the second shares the database and that key.
    servers.push(await startServer(dirs[0]!, ['--store', store, '--lifecycle-interval-minutes', '0', '--scep-ciphers', 'aes,des3,des']));
    mkdirSync(dirs[1]!, { mode: 0o700 });
    copyFileSync(join(dirs[0]!, 'master.key'), join(dirs[1]!, 'master.key'));
    servers.push(await startServer(dirs[1]!, ['--store', store, '--lifecycle-interval-minutes', '0', '--scep-ciphers', 'aes,des3,des']));
    root = join(tempDir(), 'root.pem');
    cli(['certs', 'export', '--role', 'root', '--out', root]);
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    cluster?.stop();
  });

  test('both instances serve the one CA', () => {
    const fingerprints = dirs.map((_, i) =>
      (JSON.parse(cli(['certs', 'list', '--json'], i)) as { role: string; fingerprintSha256: string }[]).filter((c) => c.role === 'root'),
    );
    assert.equal(fingerprints[0]!.length, 1);
    assert.deepEqual(fingerprints[0], fingerprints[1]);
  });

  test('six concurrent SCEP requests with one challenge, spread over both instances: exactly one certificate', async () => {
    const challenge = cli(['scep', 'challenge']).trim();
    const ra = join(tempDir(), 'ra.pem');
    cli(['certs', 'export', '--role', 'scep-ra', '--out', ra]);
    const identities = () =>
      (JSON.parse(cli(['certs', 'list', '--json'])) as { role: string }[]).filter((c) => c.role === 'device-identity').length;
    const before = identities();
    // Six devices' PKCSReq, made by openssl ahead of time so that all six reach the instances at the same moment.
    const requests = Array.from({ length: 6 }, (_, i) => {
      const requester = newRequester();
      return { requester, body: pkiMessage(requester, envelope(makeCsr(requester, { challenge, cn: `race-${i}` }), ra)) };
    });
    const responses = await Promise.all(
      requests.map(({ body }, i) => post(`https://localhost:${servers[i % 2]!.port}/scep?operation=PKIOperation`, body, root)),
    );
    const statuses = responses.map((r, i) =>
      r.status === 200 ? readCertRep(r.body, requests[i]!.requester, root).status : `HTTP ${r.status}`,
    );
    assert.equal(statuses.filter((s) => s === '0').length, 1, `one SUCCESS among ${statuses.join(', ')}`);
    assert.equal(identities(), before + 1, 'one certificate in the inventory');
  });
});
