import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir, TEST_FLAGS } from '../helpers/cli.ts';
import { fakeApple, newTopic } from '../helpers/apple.ts';

interface Listed {
  id: string;
  role: string;
  status: string;
  createdAt?: string;
  keyId?: string;
  keySealed?: boolean;
  awaiting?: string;
}

function list(dataDir: string): Listed[] {
  const r = runCli(['certs', 'list', '--json', '--data', dataDir]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Listed[];
}

function cli(args: string[]): string {
  const r = runCli(args);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('a pending push CSR and its sealed key show in certs list and push status until its certificate is imported', () => {
  const dataDir = join(tempDir(), 'data');
  assert.equal(runCli(['init', '--data', dataDir, ...TEST_FLAGS]).status, 0);
  assert.match(cli(['push', 'status', '--data', dataDir]), /^no push certificate: run certmdm push csr/);
  assert.ok(!list(dataDir).some((c) => c.status === 'pending'));

  const work = tempDir('pending-csr-');
  const csr = join(work, 'push.csr');
  cli(['push', 'csr', '--out', csr, '--data', dataDir]);
  const pending = list(dataDir).filter((c) => c.status === 'pending');
  assert.equal(pending.length, 1);
  const [request] = pending;
  assert.equal(request!.role, 'push');
  assert.equal(request!.awaiting, "CSR awaiting Apple's signature");
  assert.equal(request!.keySealed, true);
  assert.match(request!.keyId!, /\S/);
  assert.ok(Math.abs(Date.parse(request!.createdAt!) - Date.now()) < 60_000);

  const table = cli(['certs', 'list', '--data', dataDir]);
  assert.match(
    table,
    new RegExp(
      `^push\\s+pending\\s+-\\s+-\\s+-\\s+-\\s+.*CSR awaiting Apple's signature; created ${request!.createdAt!.slice(0, 10)}, key ${request!.keyId} sealed`,
      'm',
    ),
  );
  const status = cli(['push', 'status', '--data', dataDir]);
  assert.match(status, /^no push certificate yet$/m);
  assert.match(
    status,
    new RegExp(`pending CSR ${request!.id} created ${request!.createdAt}, key ${request!.keyId} sealed; .*certmdm push import`),
  );

  // Apple signs it; the import matches the sealed key and the request is no longer pending.
  const apple = fakeApple();
  const topic = newTopic();
  cli(['push', 'import', apple.issue(csr, `/C=US/UID=${topic}/CN=APSP:${topic.split('.').pop()}`), '--data', dataDir]);
  const imported = list(dataDir);
  assert.ok(!imported.some((c) => c.status === 'pending'));
  assert.ok(imported.some((c) => c.role === 'push' && c.status === 'active'));
  assert.doesNotMatch(cli(['certs', 'list', '--data', dataDir]), /pending/);
  const after = cli(['push', 'status', '--data', dataDir]);
  assert.match(after, new RegExp(`^topic ${topic.replace(/\./g, '\\.')}$`, 'm'));
  assert.doesNotMatch(after, /pending CSR/);

  // A renewal CSR made while the certificate is active shows beside it.
  cli(['push', 'csr', '--out', join(work, 'renewal.csr'), '--data', dataDir]);
  const renewal = cli(['push', 'status', '--data', dataDir]);
  assert.match(renewal, /^topic /m);
  assert.match(renewal, /^pending CSR \S+ created .*, key \S+ sealed; awaiting Apple's signature/m);
  assert.equal(list(dataDir).filter((c) => c.status === 'pending').length, 1);
});
