import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, runCli, tempDir } from './cli.ts';

/**
 * Speaking to a running certmdm (startServer) the way real peers do: identities from Debian's scepclient, requests
 * by curl, and the stored state and audit rows read from its database, for "refused, audited, nothing changed".
 */

/** A device identity from the running server through Debian's scepclient (needs `--scep-ciphers aes,des3,des`). */
export function scepIdentity(dataDir: string, port: number, root: string, cn: string): { key: string; cert: string; dir: string } {
  const dir = tempDir('mdm-peer-');
  const challenge = runCli(['scep', 'challenge', '--data', dataDir]).stdout.trim();
  const r = run(
    'scepclient',
    [
      '-server-url',
      `https://localhost:${port}/scep`,
      '-challenge',
      challenge,
      '-private-key',
      join(dir, 'key.pem'),
      '-certificate',
      join(dir, 'cert.pem'),
      '-cn',
      cn,
    ],
    { cwd: dir, env: { ...process.env, SSL_CERT_FILE: root } },
  );
  assert.equal(r.status, 0, r.stderr + r.stdout);
  return { key: join(dir, 'key.pem'), cert: join(dir, 'cert.pem'), dir };
}

/** PUT an MDM message with curl; `args` adds TLS options and headers. */
export function curlPut(url: string, body: Buffer, args: string[], contentType = 'application/x-apple-aspen-mdm-checkin') {
  const file = join(tempDir('mdm-body-'), 'body.plist');
  writeFileSync(file, body);
  const r = run('curl', [
    '-sS',
    '-X',
    'PUT',
    '-H',
    `Content-Type: ${contentType}`,
    '--data-binary',
    `@${file}`,
    '-w',
    '\n%{http_code}',
    ...args,
    url,
  ]);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  return { status: Number(lines.pop()), body: lines.join('\n') };
}

export interface AuditRow {
  id: number;
  action: string;
  outcome: string;
  target: string | null;
  reason: string | null;
  detail: Record<string, unknown> | null;
}

function readOnly<T>(dataDir: string, read: (db: Database.Database) => T): T {
  const db = new Database(join(dataDir, 'certmdm.db'), { readonly: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/** Audit rows after `afterId`, oldest first. */
export function auditSince(dataDir: string, afterId = 0): AuditRow[] {
  return readOnly(dataDir, (db) =>
    (
      db.prepare('SELECT id, action, outcome, target, reason, detail FROM audit_log WHERE id > ? ORDER BY id').all(afterId) as (AuditRow & {
        detail: string | null;
      })[]
    ).map((row) => ({ ...row, detail: row.detail ? (JSON.parse(row.detail) as Record<string, unknown>) : null })),
  );
}

export function lastAuditId(dataDir: string): number {
  return readOnly(dataDir, (db) => (db.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM audit_log').get() as { id: number }).id);
}

/** Every MDM table and every certificate's status, for "stored state unchanged" assertions. */
export function storedState(dataDir: string): Record<string, string> {
  return readOnly(dataDir, (db) => {
    const dump = (sql: string) =>
      JSON.stringify(db.prepare(sql).all(), (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v));
    return {
      enrollments: dump('SELECT * FROM enrollments ORDER BY id'),
      bindings: dump('SELECT * FROM certificate_bindings ORDER BY certificate_id'),
      userChannels: dump('SELECT * FROM user_channels ORDER BY id'),
      commands: dump('SELECT * FROM commands ORDER BY uuid'),
      queue: dump('SELECT * FROM command_queue ORDER BY seq'),
      certificates: dump('SELECT id, status, superseded_by FROM certificates ORDER BY id'),
    };
  });
}

/** The first admin token a fresh `serve` prints once. */
export function adminToken(serverStderr: string): string {
  const match = /^\s+(cmdm_\S+)$/m.exec(serverStderr);
  assert.ok(match, 'the server printed its first admin token');
  return match[1]!;
}
