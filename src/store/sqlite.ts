import Database from 'better-sqlite3';
import { OperatorError, messageOf } from '../errors.ts';
import { SQLITE_MIGRATIONS } from './sqlite-migrations.ts';
import {
  ConflictError,
  type ApiTokenRecord,
  type AuditEvent,
  type CertificateQuery,
  type CertificateRecord,
  type CertificateStatus,
  type ChallengeRecord,
  type EnrollmentLinkRecord,
  type NewProfile,
  type ProfileRecord,
  type Dependant,
  type NewCertificate,
  type SealedKeyRecord,
  type Store,
  type StoredAuditEvent,
} from './types.ts';

type Row = Record<string, unknown>;

const ms = (d: Date) => d.getTime();
const date = (v: unknown) => new Date(Number(v));
const maybeDate = (v: unknown) => (v === null || v === undefined ? null : date(v));

function certificateFromRow(r: Row): CertificateRecord {
  return {
    id: String(r.id),
    role: r.role as CertificateRecord['role'],
    subject: String(r.subject),
    issuerId: (r.issuer_id as string | null) ?? null,
    serialHex: String(r.serial_hex),
    fingerprintSha256: String(r.fingerprint_sha256),
    notBefore: date(r.not_before),
    notAfter: date(r.not_after),
    status: r.status as CertificateStatus,
    keyId: (r.key_id as string | null) ?? null,
    der: Buffer.from(r.der as Uint8Array),
    createdAt: date(r.created_at),
    supersededBy: (r.superseded_by as string | null) ?? null,
  };
}

function tokenFromRow(r: Row): ApiTokenRecord {
  return {
    id: String(r.id),
    name: String(r.name),
    secretHash: Buffer.from(r.secret_hash as Uint8Array),
    createdAt: date(r.created_at),
    lastUsedAt: maybeDate(r.last_used_at),
    revokedAt: maybeDate(r.revoked_at),
  };
}

/** Turns SQLite's failures to open into one-line operator errors. */
function explainOpenError(path: string, err: unknown): OperatorError {
  const code = (err as { code?: string }).code ?? '';
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new OperatorError(`database ${path} is locked by another process; stop it or wait, then retry`);
  }
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new OperatorError(`database ${path} is not a valid SQLite database (corrupt?); restore it from a backup`);
  }
  if (code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY' || code === 'SQLITE_PERM') {
    return new OperatorError(`cannot open database ${path} for writing: ${messageOf(err)}`);
  }
  return new OperatorError(`cannot use database ${path}: ${messageOf(err)}`);
}

export interface SqliteOptions {
  busyTimeoutMs?: number;
}

export class SqliteStore implements Store {
  readonly backend = 'sqlite';
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();

  private constructor(
    db: Database.Database,
    readonly path: string,
  ) {
    this.#db = db;
  }

  /** Opens (creating if absent) and configures the database; does not migrate. */
  static open(path: string, options: SqliteOptions = {}): SqliteStore {
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { timeout: options.busyTimeoutMs ?? 5000 });
      // Reading the schema is the first real access: it fails here on a corrupt or locked file.
      db.prepare('SELECT count(*) FROM sqlite_master').get();
      if (String(db.pragma('journal_mode', { simple: true })) !== 'wal') db.pragma('journal_mode = WAL');
      db.pragma('foreign_keys = ON');
      db.pragma('synchronous = NORMAL');
      return new SqliteStore(db, path);
    } catch (err) {
      db?.close();
      throw explainOpenError(path, err);
    }
  }

  /** Prepared once, reused: preparing costs more than running these small statements. */
  #sql(text: string): Database.Statement {
    let statement = this.#statements.get(text);
    if (!statement) {
      statement = this.#db.prepare(text);
      this.#statements.set(text, statement);
    }
    return statement;
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }

  async schemaVersion(): Promise<number> {
    return this.#schemaVersionSync();
  }

  #schemaVersionSync(): number {
    const table = this.#db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
    if (!table) return 0;
    const row = this.#db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as Row;
    return Number(row.v ?? 0);
  }

  async migrate(): Promise<void> {
    const latest = SQLITE_MIGRATIONS.at(-1)?.version ?? 0;
    try {
      const current = this.#schemaVersionSync();
      if (current > latest) {
        throw new OperatorError(
          `database ${this.path} has schema version ${current}, newer than this certmdm knows (${latest}); upgrade certmdm`,
        );
      }
      for (const migration of SQLITE_MIGRATIONS) {
        if (migration.version <= current) continue;
        this.#db.transaction(() => {
          this.#db.exec(
            'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
          );
          this.#db.exec(migration.sql);
          this.#db
            .prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)')
            .run(migration.version, migration.name, Date.now());
        })();
      }
    } catch (err) {
      if (err instanceof OperatorError) throw err;
      throw explainOpenError(this.path, err);
    }
  }

  async getMeta(key: string): Promise<string | undefined> {
    const row = this.#sql('SELECT value FROM meta WHERE key = ?').get(key) as Row | undefined;
    return row ? String(row.value) : undefined;
  }

  async setMetaIfAbsent(key: string, value: string): Promise<boolean> {
    return this.#sql('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(key, value).changes === 1;
  }

  async getSealedKey(id: string): Promise<SealedKeyRecord | undefined> {
    const r = this.#sql('SELECT * FROM sealed_keys WHERE id = ?').get(id) as Row | undefined;
    return r
      ? { id: String(r.id), algorithm: String(r.algorithm), sealed: Buffer.from(r.sealed as Uint8Array), createdAt: date(r.created_at) }
      : undefined;
  }

  async listSealedKeys(): Promise<SealedKeyRecord[]> {
    return (this.#sql('SELECT * FROM sealed_keys ORDER BY created_at, id').all() as Row[]).map((r) => ({
      id: String(r.id),
      algorithm: String(r.algorithm),
      sealed: Buffer.from(r.sealed as Uint8Array),
      createdAt: date(r.created_at),
    }));
  }

  #insertOne(entry: NewCertificate): void {
    const c = entry.certificate;
    if (entry.key) {
      this.#sql('INSERT INTO sealed_keys (id, algorithm, sealed, created_at) VALUES (?, ?, ?, ?)').run(
        entry.key.id,
        entry.key.algorithm,
        entry.key.sealed,
        ms(entry.key.createdAt),
      );
    }
    this.#sql(
      `INSERT INTO certificates (id, role, subject, issuer_id, serial_hex, fingerprint_sha256, not_before, not_after,
           status, key_id, der, created_at, superseded_by)
         VALUES (@id, @role, @subject, @issuerId, @serialHex, @fingerprintSha256, @notBefore, @notAfter,
           @status, @keyId, @der, @createdAt, @supersededBy)`,
    ).run({ ...c, notBefore: ms(c.notBefore), notAfter: ms(c.notAfter), createdAt: ms(c.createdAt) });
    for (const d of entry.dependants ?? []) {
      this.#sql('INSERT OR IGNORE INTO certificate_dependants (certificate_id, kind, ref) VALUES (?, ?, ?)').run(c.id, d.kind, d.ref);
    }
  }

  async insertCertificates(entries: NewCertificate[]): Promise<void> {
    this.#db.transaction(() => entries.forEach((e) => this.#insertOne(e)))();
  }

  async replaceCertificates(replacement: NewCertificate, supersedes: string[]): Promise<void> {
    this.#db.transaction(() => {
      this.#insertOne(replacement);
      for (const id of supersedes) {
        const changed = this.#sql(
          "UPDATE certificates SET status = 'superseded', superseded_by = ? WHERE id = ? AND status = 'active'",
        ).run(replacement.certificate.id, id).changes;
        if (changed !== 1) throw new ConflictError(`certificate ${id} is no longer active`);
      }
    })();
  }

  async getCertificate(id: string): Promise<CertificateRecord | undefined> {
    const r = this.#sql('SELECT * FROM certificates WHERE id = ?').get(id) as Row | undefined;
    return r ? certificateFromRow(r) : undefined;
  }

  async getCertificateByFingerprint(fingerprintSha256: string): Promise<CertificateRecord | undefined> {
    const r = this.#sql('SELECT * FROM certificates WHERE fingerprint_sha256 = ?').get(fingerprintSha256.toLowerCase()) as Row | undefined;
    return r ? certificateFromRow(r) : undefined;
  }

  async listCertificates(query: CertificateQuery = {}): Promise<CertificateRecord[]> {
    const rows = this.#sql(
      `SELECT * FROM certificates
         WHERE (@role IS NULL OR role = @role) AND (@status IS NULL OR status = @status)
         ORDER BY not_after, id`,
    ).all({ role: query.role ?? null, status: query.status ?? null }) as Row[];
    return rows.map(certificateFromRow);
  }

  async setCertificateStatus(id: string, from: CertificateStatus, to: CertificateStatus): Promise<boolean> {
    return this.#sql('UPDATE certificates SET status = ? WHERE id = ? AND status = ?').run(to, id, from).changes === 1;
  }

  async addDependant(d: Dependant): Promise<void> {
    this.#sql('INSERT OR IGNORE INTO certificate_dependants (certificate_id, kind, ref) VALUES (?, ?, ?)').run(
      d.certificateId,
      d.kind,
      d.ref,
    );
  }

  async listDependants(certificateId: string): Promise<Dependant[]> {
    return (this.#sql('SELECT * FROM certificate_dependants WHERE certificate_id = ? ORDER BY kind, ref').all(certificateId) as Row[]).map(
      (r) => ({ certificateId: String(r.certificate_id), kind: String(r.kind), ref: String(r.ref) }),
    );
  }

  async listIssuedBy(certificateId: string): Promise<CertificateRecord[]> {
    return (this.#sql('SELECT * FROM certificates WHERE issuer_id = ? ORDER BY not_after, id').all(certificateId) as Row[]).map(
      certificateFromRow,
    );
  }

  async insertChallenge(c: ChallengeRecord): Promise<void> {
    this.#insertChallenge(c);
  }

  async getChallenge(id: string): Promise<ChallengeRecord | undefined> {
    const r = this.#sql('SELECT * FROM scep_challenges WHERE id = ?').get(id) as Row | undefined;
    return r
      ? {
          id: String(r.id),
          secretHash: Buffer.from(r.secret_hash as Uint8Array),
          purpose: String(r.purpose),
          enrollmentRef: (r.enrollment_ref as string | null) ?? null,
          createdBy: String(r.created_by),
          createdAt: date(r.created_at),
          expiresAt: date(r.expires_at),
          consumedAt: maybeDate(r.consumed_at),
          certificateId: (r.certificate_id as string | null) ?? null,
        }
      : undefined;
  }

  async insertCertificateConsumingChallenge(entry: NewCertificate, challengeId: string, now: Date): Promise<void> {
    this.#db.transaction(() => {
      this.#insertOne(entry);
      const changed = this.#sql(
        `UPDATE scep_challenges SET consumed_at = ?, certificate_id = ?
           WHERE id = ? AND consumed_at IS NULL AND expires_at > ?`,
      ).run(ms(now), entry.certificate.id, challengeId, ms(now)).changes;
      if (changed !== 1) throw new ConflictError(`challenge ${challengeId} is already used or expired`);
    })();
  }

  #insertChallenge(c: ChallengeRecord): void {
    this.#sql(
      `INSERT INTO scep_challenges (id, secret_hash, purpose, enrollment_ref, created_by, created_at, expires_at, consumed_at, certificate_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      c.id,
      c.secretHash,
      c.purpose,
      c.enrollmentRef,
      c.createdBy,
      ms(c.createdAt),
      ms(c.expiresAt),
      c.consumedAt && ms(c.consumedAt),
      c.certificateId,
    );
  }

  async insertProfile(entry: NewProfile): Promise<void> {
    const p = entry.profile;
    this.#db.transaction(() => {
      entry.certificates?.forEach((c) => this.#insertOne(c));
      if (entry.challenge) this.#insertChallenge(entry.challenge);
      this.#sql(
        `INSERT INTO profiles (id, kind, payload_identifier, payload_uuid, enrollment_ref, identity_kind, challenge_id,
           signer_certificate_id, created_by, created_at, effective_expiry)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        p.id,
        p.kind,
        p.payloadIdentifier,
        p.payloadUuid,
        p.enrollmentRef,
        p.identityKind,
        p.challengeId,
        p.signerCertificateId,
        p.createdBy,
        ms(p.createdAt),
        ms(p.effectiveExpiry),
      );
      for (const c of p.certificates) {
        this.#sql('INSERT INTO profile_certificates (profile_id, certificate_id, role) VALUES (?, ?, ?)').run(
          p.id,
          c.certificateId,
          c.role,
        );
        this.#sql('INSERT OR IGNORE INTO certificate_dependants (certificate_id, kind, ref) VALUES (?, ?, ?)').run(
          c.certificateId,
          `profile:${p.kind}`,
          p.id,
        );
      }
      if (entry.consumesLink) {
        const { id, now } = entry.consumesLink;
        const changed = this.#sql(
          'UPDATE enrollment_links SET used_at = ?, profile_id = ? WHERE id = ? AND used_at IS NULL AND expires_at > ?',
        ).run(ms(now), p.id, id, ms(now)).changes;
        if (changed !== 1) throw new ConflictError(`enrollment link ${id} is already used or expired`);
      }
    })();
  }

  #profileFromRow(r: Row): ProfileRecord {
    const certificates = (
      this.#sql('SELECT certificate_id, role FROM profile_certificates WHERE profile_id = ? ORDER BY rowid').all(r.id) as Row[]
    ).map((c) => ({
      certificateId: String(c.certificate_id),
      role: c.role as ProfileRecord['certificates'][number]['role'],
    }));
    return {
      id: String(r.id),
      kind: r.kind as ProfileRecord['kind'],
      payloadIdentifier: String(r.payload_identifier),
      payloadUuid: String(r.payload_uuid),
      enrollmentRef: (r.enrollment_ref as string | null) ?? null,
      identityKind: (r.identity_kind as ProfileRecord['identityKind']) ?? null,
      challengeId: (r.challenge_id as string | null) ?? null,
      signerCertificateId: (r.signer_certificate_id as string | null) ?? null,
      createdBy: String(r.created_by),
      createdAt: date(r.created_at),
      effectiveExpiry: date(r.effective_expiry),
      certificates,
    };
  }

  async getProfile(id: string): Promise<ProfileRecord | undefined> {
    const r = this.#sql('SELECT * FROM profiles WHERE id = ?').get(id) as Row | undefined;
    return r ? this.#profileFromRow(r) : undefined;
  }

  async listProfiles(query: { kind?: ProfileRecord['kind']; enrollmentRef?: string } = {}): Promise<ProfileRecord[]> {
    const rows = this.#sql(
      `SELECT * FROM profiles WHERE (@kind IS NULL OR kind = @kind) AND (@ref IS NULL OR enrollment_ref = @ref)
       ORDER BY created_at DESC, rowid DESC`,
    ).all({ kind: query.kind ?? null, ref: query.enrollmentRef ?? null }) as Row[];
    return rows.map((r) => this.#profileFromRow(r));
  }

  async insertEnrollmentLink(l: EnrollmentLinkRecord): Promise<void> {
    this.#sql(
      `INSERT INTO enrollment_links (id, secret_hash, identity_kind, created_by, created_at, expires_at, used_at, profile_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(l.id, l.secretHash, l.identityKind, l.createdBy, ms(l.createdAt), ms(l.expiresAt), l.usedAt && ms(l.usedAt), l.profileId);
  }

  async getEnrollmentLink(id: string): Promise<EnrollmentLinkRecord | undefined> {
    const r = this.#sql('SELECT * FROM enrollment_links WHERE id = ?').get(id) as Row | undefined;
    return r
      ? {
          id: String(r.id),
          secretHash: Buffer.from(r.secret_hash as Uint8Array),
          identityKind: r.identity_kind as EnrollmentLinkRecord['identityKind'],
          createdBy: String(r.created_by),
          createdAt: date(r.created_at),
          expiresAt: date(r.expires_at),
          usedAt: maybeDate(r.used_at),
          profileId: (r.profile_id as string | null) ?? null,
        }
      : undefined;
  }

  async insertApiToken(t: ApiTokenRecord): Promise<void> {
    this.#sql('INSERT INTO api_tokens (id, name, secret_hash, created_at, last_used_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)').run(
      t.id,
      t.name,
      t.secretHash,
      ms(t.createdAt),
      t.lastUsedAt && ms(t.lastUsedAt),
      t.revokedAt && ms(t.revokedAt),
    );
  }

  async getApiToken(id: string): Promise<ApiTokenRecord | undefined> {
    const r = this.#sql('SELECT * FROM api_tokens WHERE id = ?').get(id) as Row | undefined;
    return r ? tokenFromRow(r) : undefined;
  }

  async listApiTokens(): Promise<ApiTokenRecord[]> {
    return (this.#sql('SELECT * FROM api_tokens ORDER BY created_at, id').all() as Row[]).map(tokenFromRow);
  }

  async touchApiToken(id: string, at: Date): Promise<void> {
    this.#sql('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(ms(at), id);
  }

  async revokeApiToken(id: string, at: Date): Promise<boolean> {
    return this.#sql('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(ms(at), id).changes === 1;
  }

  async appendAudit(e: AuditEvent): Promise<number> {
    const result = this.#sql('INSERT INTO audit_log (at, actor, action, target, outcome, reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
      ms(e.at),
      e.actor,
      e.action,
      e.target ?? null,
      e.outcome,
      e.reason ?? null,
      e.detail ? JSON.stringify(e.detail) : null,
    );
    return Number(result.lastInsertRowid);
  }

  async listAudit(query: { action?: string; limit?: number } = {}): Promise<StoredAuditEvent[]> {
    const rows = this.#sql('SELECT * FROM audit_log WHERE (@action IS NULL OR action = @action) ORDER BY id DESC LIMIT @limit').all({
      action: query.action ?? null,
      limit: query.limit ?? 100,
    }) as Row[];
    return rows.map((r) => ({
      id: Number(r.id),
      at: date(r.at),
      actor: String(r.actor),
      action: String(r.action),
      target: (r.target as string | null) ?? null,
      outcome: r.outcome as AuditEvent['outcome'],
      reason: (r.reason as string | null) ?? null,
      detail: r.detail ? (JSON.parse(String(r.detail)) as Record<string, unknown>) : null,
    }));
  }
}
