import Database from 'better-sqlite3';
import { OperatorError, messageOf } from '../errors.ts';
import { SQLITE_MIGRATIONS } from './sqlite-migrations.ts';
import {
  BindingRefused,
  ConflictError,
  type ApiTokenRecord,
  type AuditEvent,
  type CertificateQuery,
  type CertificateRecord,
  type CertificateStatus,
  type ChallengeRecord,
  type AuthenticateInput,
  type AuthenticateOutcome,
  type ChannelKey,
  type CommandRecord,
  type EnrollmentRecord,
  type EnrolledDevice,
  type QueueEntry,
  type QueueStatus,
  type UserChannelInput,
  type UserChannelRecord,
  type CertificateRequestRecord,
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
    servesEnrollment: (r.serves_enrollment as string | null) ?? null,
    renewalOf: (r.renewal_of as string | null) ?? null,
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

/**
 * A WHERE clause of only the filters given, so SQLite can use the index on them (the `(@x IS NULL OR x = @x)` form
 * scans the table: every device identity or profile ever made). Keys are column names, not user input.
 */
function onlyGiven(filters: Record<string, string | undefined>): { where: string; params: Record<string, string> } {
  const given = Object.entries(filters).filter((e): e is [string, string] => e[1] !== undefined);
  return {
    where: given.length ? `WHERE ${given.map(([column]) => `${column} = @${column}`).join(' AND ')}` : '',
    params: Object.fromEntries(given),
  };
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
      // Erased content (a command body once answered) is overwritten with zeros, not left in free pages.
      db.pragma('secure_delete = ON');
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
    const latest = Math.max(0, ...SQLITE_MIGRATIONS.map((m) => m.version));
    try {
      const current = this.#schemaVersionSync();
      if (current > latest) {
        throw new OperatorError(
          `database ${this.path} has schema version ${current}, newer than this certmdm knows (${latest}); upgrade certmdm`,
        );
      }
      // Each missing version, not each version above the highest: numbers may have gaps that are filled later
      // (branches reserve numbers), and a migration must still run once, in version order.
      const applied = new Set(
        current === 0 ? [] : (this.#db.prepare('SELECT version FROM schema_migrations').all() as Row[]).map((r) => Number(r.version)),
      );
      const known = new Set(SQLITE_MIGRATIONS.map((m) => m.version));
      const unknown = [...applied].filter((v) => !known.has(v));
      if (unknown.length) {
        throw new OperatorError(
          `database ${this.path} has migration ${unknown.join(', ')} that this certmdm does not know; use the certmdm that applied it`,
        );
      }
      for (const migration of [...SQLITE_MIGRATIONS].sort((a, b) => a.version - b.version)) {
        if (applied.has(migration.version)) continue;
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

  async setMeta(key: string, value: string): Promise<void> {
    this.#sql('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
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
           status, key_id, der, created_at, superseded_by, serves_enrollment, renewal_of)
         VALUES (@id, @role, @subject, @issuerId, @serialHex, @fingerprintSha256, @notBefore, @notAfter,
           @status, @keyId, @der, @createdAt, @supersededBy, @servesEnrollment, @renewalOf)`,
    ).run({ ...c, notBefore: ms(c.notBefore), notAfter: ms(c.notAfter), createdAt: ms(c.createdAt) });
    for (const d of entry.dependants ?? []) {
      this.#sql('INSERT OR IGNORE INTO certificate_dependants (certificate_id, kind, ref) VALUES (?, ?, ?)').run(c.id, d.kind, d.ref);
    }
  }

  async insertCertificates(entries: NewCertificate[]): Promise<void> {
    this.#db.transaction(() =>
      entries.forEach((e) => {
        const renewalOf = e.certificate.renewalOf;
        if (renewalOf && this.#sql('SELECT 1 FROM certificates WHERE renewal_of = ?').get(renewalOf))
          throw new ConflictError('the identity already has a renewal; one renewal per identity');
        this.#insertOne(e);
      }),
    )();
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
    const { where, params } = onlyGiven({ role: query.role, status: query.status });
    const rows = this.#sql(`SELECT * FROM certificates ${where} ORDER BY not_after, id`).all(params) as Row[];
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
          enrollmentId: (r.enrollment_id as string | null) ?? null,
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
      `INSERT INTO scep_challenges (id, secret_hash, purpose, enrollment_ref, enrollment_id, created_by, created_at, expires_at, consumed_at, certificate_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      c.id,
      c.secretHash,
      c.purpose,
      c.enrollmentRef,
      c.enrollmentId,
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
    const { where, params } = onlyGiven({ kind: query.kind, enrollment_ref: query.enrollmentRef });
    const rows = this.#sql(`SELECT * FROM profiles ${where} ORDER BY created_at DESC, rowid DESC`).all(params) as Row[];
    return rows.map((r) => this.#profileFromRow(r));
  }

  async insertEnrollmentLink(l: EnrollmentLinkRecord): Promise<void> {
    this.#sql(
      `INSERT INTO enrollment_links (id, secret_hash, identity_kind, enrollment_id, created_by, created_at, expires_at, used_at, profile_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      l.id,
      l.secretHash,
      l.identityKind,
      l.enrollmentId,
      l.createdBy,
      ms(l.createdAt),
      ms(l.expiresAt),
      l.usedAt && ms(l.usedAt),
      l.profileId,
    );
  }

  async getEnrollmentLink(id: string): Promise<EnrollmentLinkRecord | undefined> {
    const r = this.#sql('SELECT * FROM enrollment_links WHERE id = ?').get(id) as Row | undefined;
    return r
      ? {
          id: String(r.id),
          secretHash: Buffer.from(r.secret_hash as Uint8Array),
          identityKind: r.identity_kind as EnrollmentLinkRecord['identityKind'],
          enrollmentId: (r.enrollment_id as string | null) ?? null,
          createdBy: String(r.created_by),
          createdAt: date(r.created_at),
          expiresAt: date(r.expires_at),
          usedAt: maybeDate(r.used_at),
          profileId: (r.profile_id as string | null) ?? null,
        }
      : undefined;
  }

  #enrollmentFromRow(r: Row): EnrollmentRecord {
    const blob = (v: unknown) => (v === null || v === undefined ? null : Buffer.from(v as Uint8Array));
    return {
      id: String(r.id),
      kind: r.kind as EnrollmentRecord['kind'],
      status: r.status as EnrollmentRecord['status'],
      identityCertificateId: (r.identity_certificate_id as string | null) ?? null,
      previousIdentityCertificateId: (r.previous_identity_certificate_id as string | null) ?? null,
      topic: (r.topic as string | null) ?? null,
      pushToken: blob(r.push_token),
      pushMagic: (r.push_magic as string | null) ?? null,
      unlockToken: blob(r.unlock_token),
      bootstrapToken: blob(r.bootstrap_token),
      pushTokenInvalidAt: maybeDate(r.push_token_invalid_at),
      renewalStartedAt: maybeDate(r.renewal_started_at),
      renewalCommandUuid: (r.renewal_command_uuid as string | null) ?? null,
      renewalAttempts: Number(r.renewal_attempts ?? 0),
      info: JSON.parse(String(r.info)) as Record<string, string>,
      enrolledAt: date(r.enrolled_at),
      lastSeenAt: date(r.last_seen_at),
      checkedOutAt: maybeDate(r.checked_out_at),
    };
  }

  async getEnrollment(id: string): Promise<EnrollmentRecord | undefined> {
    const r = this.#sql('SELECT * FROM enrollments WHERE id = ?').get(id) as Row | undefined;
    return r ? this.#enrollmentFromRow(r) : undefined;
  }

  async listEnrollments(): Promise<EnrollmentRecord[]> {
    return (this.#sql('SELECT * FROM enrollments ORDER BY enrolled_at, id').all() as Row[]).map((r) => this.#enrollmentFromRow(r));
  }

  async getBinding(certificateId: string): Promise<string | undefined> {
    const r = this.#sql('SELECT enrollment_id FROM certificate_bindings WHERE certificate_id = ?').get(certificateId) as Row | undefined;
    return r ? String(r.enrollment_id) : undefined;
  }

  async authenticateEnrollment(input: AuthenticateInput): Promise<AuthenticateOutcome> {
    return this.#db.transaction((): AuthenticateOutcome => {
      const certificate = this.#sql('SELECT * FROM certificates WHERE id = ?').get(input.certificateId) as Row | undefined;
      if (!certificate) throw new ConflictError(`certificate ${input.certificateId} is not in the inventory`);
      const bound = this.#sql('SELECT enrollment_id FROM certificate_bindings WHERE certificate_id = ?').get(input.certificateId) as
        Row | undefined;
      const existing = this.#sql('SELECT * FROM enrollments WHERE id = ?').get(input.id) as Row | undefined;
      const decision = input.decide({
        claimed: input.id,
        certificate: certificateFromRow(certificate),
        boundTo: bound ? String(bound.enrollment_id) : null,
        enrollment: existing ? this.#enrollmentFromRow(existing) : null,
        now: input.now,
      });
      if ('refuse' in decision) throw new BindingRefused(decision.refuse, decision.message);
      const now = ms(input.now);
      const info = JSON.stringify(input.info);
      let outcome: AuthenticateOutcome;
      if (decision.allow === 'fresh') {
        if (existing) {
          // A fresh enrollment after CheckOut starts clean: no queue (its device and user channels), no tokens from before.
          this.#sql('DELETE FROM command_queue WHERE enrollment_id = ?').run(input.id);
          this.#sql('DELETE FROM user_channels WHERE enrollment_id = ?').run(input.id);
          this.#sql(
            `UPDATE enrollments SET kind = ?, status = 'enrolled', identity_certificate_id = ?, previous_identity_certificate_id = NULL,
               topic = ?, push_token = NULL, push_magic = NULL, unlock_token = NULL, bootstrap_token = NULL, info = ?,
               enrolled_at = ?, last_seen_at = ?, checked_out_at = NULL, renewal_started_at = NULL, renewal_command_uuid = NULL, renewal_attempts = 0 WHERE id = ?`,
          ).run(input.kind, input.certificateId, input.topic, info, now, now, input.id);
          const replaced = existing.identity_certificate_id as string | null;
          if (replaced !== input.certificateId) {
            if (replaced) this.#supersede(replaced, input.certificateId);
            // Another identity starts the enrollment over: whatever was minted for the one before (renewal profiles'
            // identities and challenges, RenewalReq identities, never used) belongs to whoever held the old key.
            this.#sql(
              `UPDATE certificates SET status = 'superseded', superseded_by = @id
                 WHERE serves_enrollment = @enrollment AND role = 'device-identity' AND status = 'active' AND id <> @id
                   AND NOT EXISTS (SELECT 1 FROM certificate_bindings b WHERE b.certificate_id = certificates.id)`,
            ).run({ id: input.certificateId, enrollment: input.id });
            this.#sql('UPDATE scep_challenges SET expires_at = min(expires_at, ?) WHERE enrollment_id = ? AND consumed_at IS NULL').run(
              now,
              input.id,
            );
          }
        } else {
          this.#sql(
            `INSERT INTO enrollments (id, kind, status, identity_certificate_id, topic, info, enrolled_at, last_seen_at)
             VALUES (?, ?, 'enrolled', ?, ?, ?, ?, ?)`,
          ).run(input.id, input.kind, input.certificateId, input.topic, info, now, now);
        }
        outcome = { fresh: true, renewedFrom: null };
      } else if (decision.allow === 'renewal') {
        const current = existing!.identity_certificate_id as string | null;
        const previous = existing!.previous_identity_certificate_id as string | null;
        // A second renewal before the first was seen: the oldest identity is superseded now.
        if (previous && current) this.#supersede(previous, current);
        this.#sql(
          `UPDATE enrollments SET identity_certificate_id = ?, previous_identity_certificate_id = ?, topic = ?, info = ?, last_seen_at = ?,
             renewal_started_at = NULL, renewal_command_uuid = NULL, renewal_attempts = 0 WHERE id = ?`,
        ).run(input.certificateId, current, input.topic, info, now, input.id);
        // Identities minted for this enrollment before this one and never used are retired: none may become current later.
        this.#sql(
          `UPDATE certificates SET status = 'superseded', superseded_by = @id
             WHERE serves_enrollment = @enrollment AND role = 'device-identity' AND status = 'active' AND id <> @id
               AND id <> coalesce(@current, '') AND created_at <= @created
               AND NOT EXISTS (SELECT 1 FROM certificate_bindings b WHERE b.certificate_id = certificates.id)`,
        ).run({ id: input.certificateId, enrollment: input.id, current, created: certificate.created_at });
        // So are the challenges minted for it before this identity (renewal profiles sent to the identity replaced, a
        // re-enrollment profile): redeemed later they would mint an identity that takes the enrollment back.
        this.#sql(
          `UPDATE scep_challenges SET expires_at = min(expires_at, @now)
             WHERE enrollment_id = @enrollment AND consumed_at IS NULL AND created_at <= @created`,
        ).run({ now, enrollment: input.id, created: certificate.created_at });
        outcome = { fresh: false, renewedFrom: current };
      } else {
        this.#sql('UPDATE enrollments SET topic = ?, info = ?, last_seen_at = ? WHERE id = ?').run(input.topic, info, now, input.id);
        outcome = { fresh: false, renewedFrom: null };
      }
      if (!bound)
        this.#sql('INSERT INTO certificate_bindings (certificate_id, enrollment_id, bound_at) VALUES (?, ?, ?)').run(
          input.certificateId,
          input.id,
          now,
        );
      return outcome;
    })();
  }

  #supersede(certificateId: string, by: string): void {
    this.#sql("UPDATE certificates SET status = 'superseded', superseded_by = ? WHERE id = ? AND status = 'active'").run(by, certificateId);
  }

  async updateEnrollment(
    id: string,
    patch: Partial<
      Pick<EnrollmentRecord, 'topic' | 'pushToken' | 'pushMagic' | 'unlockToken' | 'bootstrapToken' | 'lastSeenAt' | 'pushTokenInvalidAt'>
    >,
  ): Promise<void> {
    const columns: Record<string, string> = {
      topic: 'topic',
      pushToken: 'push_token',
      pushMagic: 'push_magic',
      unlockToken: 'unlock_token',
      bootstrapToken: 'bootstrap_token',
      lastSeenAt: 'last_seen_at',
      pushTokenInvalidAt: 'push_token_invalid_at',
    };
    // A new push token is valid until APNs says otherwise.
    if (patch.pushToken && patch.pushTokenInvalidAt === undefined) patch = { ...patch, pushTokenInvalidAt: null };
    const entries = Object.entries(patch).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return;
    const sets = entries.map(([k]) => `${columns[k]} = ?`).join(', ');
    this.#sql(`UPDATE enrollments SET ${sets} WHERE id = ?`).run(...entries.map(([, v]) => (v instanceof Date ? ms(v) : v)), id);
  }

  async insertProfileDelivery(d: { commandUuid: string; enrollmentId: string; profileId: string; createdAt: Date }): Promise<void> {
    this.#sql('INSERT INTO profile_deliveries (command_uuid, enrollment_id, profile_id, created_at) VALUES (?, ?, ?, ?)').run(
      d.commandUuid,
      d.enrollmentId,
      d.profileId,
      ms(d.createdAt),
    );
  }

  async pendingProfileDelivery(
    enrollmentId: string,
    kind: ProfileRecord['kind'],
  ): Promise<{ commandUuid: string; profileId: string; createdAt: Date } | undefined> {
    const r = this.#sql(
      `SELECT d.* FROM profile_deliveries d JOIN profiles p ON p.id = d.profile_id
       WHERE d.enrollment_id = ? AND p.kind = ? AND d.acknowledged_at IS NULL ORDER BY d.created_at DESC LIMIT 1`,
    ).get(enrollmentId, kind) as Row | undefined;
    return r ? { commandUuid: String(r.command_uuid), profileId: String(r.profile_id), createdAt: date(r.created_at) } : undefined;
  }

  async installedAnchors(enrollmentId: string, identityCertificateId: string | null): Promise<string[]> {
    const rows = this.#sql(
      `SELECT DISTINCT pc.certificate_id FROM profile_certificates pc WHERE pc.role = 'anchor' AND pc.profile_id IN (
         SELECT p.id FROM profiles p JOIN scep_challenges c ON c.id = p.challenge_id WHERE c.certificate_id = @identity
         UNION SELECT profile_id FROM profile_certificates WHERE certificate_id = @identity AND role = 'identity'
         UNION SELECT profile_id FROM profile_deliveries WHERE enrollment_id = @enrollment AND acknowledged_at IS NOT NULL)
       ORDER BY pc.certificate_id`,
    ).all({ identity: identityCertificateId, enrollment: enrollmentId }) as Row[];
    return rows.map((r) => String(r.certificate_id));
  }

  async listEnrolledDevices(filter?: { renewalWindowOpenBy: { at: Date; share: number } }): Promise<EnrolledDevice[]> {
    // The renewal window opens at notAfter - share × lifetime: one primary-key lookup per enrolled device.
    const due = filter ? { at: filter.renewalWindowOpenBy.at.getTime(), share: filter.renewalWindowOpenBy.share } : undefined;
    const dueEnrollments = due
      ? `AND (SELECT w.not_after - @share * (w.not_after - w.not_before) FROM certificates w WHERE w.id = e.identity_certificate_id) <= @at`
      : '';
    const dueDeliveries = due ? `AND d.enrollment_id IN (SELECT id FROM enrollments e WHERE e.status = 'enrolled' ${dueEnrollments})` : '';
    // The same three sources as installedAnchors, for the whole fleet at once (one pass, indexed joins); the first
    // two (the identity's own enrollment profile) are also its profile anchors.
    const anchors = new Map<string, string[]>();
    const profileAnchors = new Map<string, string[]>();
    // Rows come sorted by device and root, and a root from both sources comes once per source: a repeat is the last.
    const add = (map: Map<string, string[]>, id: string, root: string) => {
      const list = map.get(id) ?? [];
      if (list.at(-1) !== root) list.push(root);
      map.set(id, list);
    };
    for (const r of this.#sql(
      `SELECT e.id AS enrollment_id, pc.certificate_id, 1 AS from_profile FROM enrollments e
         JOIN scep_challenges ch ON ch.certificate_id = e.identity_certificate_id
         JOIN profiles p ON p.challenge_id = ch.id
         JOIN profile_certificates pc ON pc.profile_id = p.id AND pc.role = 'anchor'
       WHERE e.status = 'enrolled' ${dueEnrollments}
       UNION
       SELECT e.id, pc.certificate_id, 1 FROM enrollments e
         JOIN profile_certificates pi ON pi.certificate_id = e.identity_certificate_id AND pi.role = 'identity'
         JOIN profile_certificates pc ON pc.profile_id = pi.profile_id AND pc.role = 'anchor'
       WHERE e.status = 'enrolled' ${dueEnrollments}
       UNION
       SELECT d.enrollment_id, pc.certificate_id, 0 FROM profile_deliveries d
         JOIN profile_certificates pc ON pc.profile_id = d.profile_id AND pc.role = 'anchor'
       WHERE d.acknowledged_at IS NOT NULL ${dueDeliveries}
       ORDER BY 1, 2`,
    ).all(due ?? {}) as Row[]) {
      const id = String(r.enrollment_id);
      const root = String(r.certificate_id);
      add(anchors, id, root);
      if (r.from_profile === 1) add(profileAnchors, id, root);
    }
    const rows = this.#sql(
      `SELECT e.id, e.last_seen_at, e.renewal_started_at, c.id AS certificate_id, c.not_before, c.not_after
       FROM enrollments e LEFT JOIN certificates c ON c.id = e.identity_certificate_id
       WHERE e.status = 'enrolled' ${dueEnrollments} ORDER BY e.enrolled_at, e.id`,
    ).all(due ?? {}) as Row[];
    return rows.map((r) => ({
      id: String(r.id),
      identity: r.certificate_id ? { id: String(r.certificate_id), notBefore: date(r.not_before), notAfter: date(r.not_after) } : null,
      anchors: anchors.get(String(r.id)) ?? [],
      profileAnchors: profileAnchors.get(String(r.id)) ?? [],
      lastSeenAt: date(r.last_seen_at),
      renewalStartedAt: maybeDate(r.renewal_started_at),
    }));
  }

  async markRenewalStarted(id: string, at: Date, commandUuid: string): Promise<void> {
    // The first start is kept: how long a renewal has been in flight is what puts a device at risk.
    this.#sql(
      'UPDATE enrollments SET renewal_started_at = coalesce(renewal_started_at, ?), renewal_command_uuid = ?, renewal_attempts = renewal_attempts + 1 WHERE id = ?',
    ).run(ms(at), commandUuid, id);
  }

  async promoteIdentity(id: string): Promise<string | null> {
    return this.#db.transaction((): string | null => {
      const r = this.#sql('SELECT identity_certificate_id, previous_identity_certificate_id FROM enrollments WHERE id = ?').get(id) as
        Row | undefined;
      const previous = (r?.previous_identity_certificate_id as string | null) ?? null;
      if (!r || !previous) return null;
      this.#supersede(previous, String(r.identity_certificate_id));
      this.#sql('UPDATE enrollments SET previous_identity_certificate_id = NULL WHERE id = ?').run(id);
      return previous;
    })();
  }

  async checkOutEnrollment(id: string, now: Date): Promise<void> {
    this.#sql("UPDATE enrollments SET status = 'checked-out', checked_out_at = ?, last_seen_at = ? WHERE id = ?").run(ms(now), ms(now), id);
  }

  async upsertUserChannel(c: UserChannelInput): Promise<void> {
    this.#sql(
      `INSERT INTO user_channels (enrollment_id, user_id, user_short_name, push_token, push_magic, last_seen_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (enrollment_id, user_id) DO UPDATE SET user_short_name = excluded.user_short_name,
         push_token = coalesce(excluded.push_token, push_token), push_magic = coalesce(excluded.push_magic, push_magic), last_seen_at = excluded.last_seen_at`,
    ).run(c.enrollmentId, c.userId, c.userShortName, c.pushToken, c.pushMagic, ms(c.now));
  }

  async getUserChannel(enrollmentId: string, userId: string): Promise<UserChannelRecord | undefined> {
    const r = this.#sql('SELECT * FROM user_channels WHERE enrollment_id = ? AND user_id = ?').get(enrollmentId, userId) as Row | undefined;
    return r
      ? {
          enrollmentId: String(r.enrollment_id),
          userId: String(r.user_id),
          userShortName: (r.user_short_name as string | null) ?? null,
          pushToken: r.push_token ? Buffer.from(r.push_token as Uint8Array) : null,
          pushMagic: (r.push_magic as string | null) ?? null,
          pushTokenInvalidAt: maybeDate(r.push_token_invalid_at),
          lastSeenAt: date(r.last_seen_at),
        }
      : undefined;
  }

  async markUserChannelTokenInvalid(enrollmentId: string, userId: string, at: Date): Promise<void> {
    this.#sql('UPDATE user_channels SET push_token_invalid_at = ? WHERE enrollment_id = ? AND user_id = ?').run(
      ms(at),
      enrollmentId,
      userId,
    );
  }

  async insertCertificateRequest(request: CertificateRequestRecord, key: SealedKeyRecord): Promise<void> {
    this.#db.transaction(() => {
      this.#sql('INSERT INTO sealed_keys (id, algorithm, sealed, created_at) VALUES (?, ?, ?, ?)').run(
        key.id,
        key.algorithm,
        key.sealed,
        ms(key.createdAt),
      );
      this.#sql(
        'INSERT INTO certificate_requests (id, purpose, subject, key_id, der, created_at, fulfilled_by) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ).run(request.id, request.purpose, request.subject, request.keyId, request.der, ms(request.createdAt), request.fulfilledBy);
    })();
  }

  async listCertificateRequests(purpose: CertificateRequestRecord['purpose']): Promise<CertificateRequestRecord[]> {
    return (
      this.#sql('SELECT * FROM certificate_requests WHERE purpose = ? ORDER BY created_at DESC, rowid DESC').all(purpose) as Row[]
    ).map((r) => ({
      id: String(r.id),
      purpose: r.purpose as CertificateRequestRecord['purpose'],
      subject: String(r.subject),
      keyId: String(r.key_id),
      der: Buffer.from(r.der as Uint8Array),
      createdAt: date(r.created_at),
      fulfilledBy: (r.fulfilled_by as string | null) ?? null,
    }));
  }

  async importCertificate(entry: NewCertificate, options: { supersedes: string[]; fulfils?: string }): Promise<void> {
    this.#db.transaction(() => {
      this.#insertOne(entry);
      for (const id of options.supersedes) {
        if (
          this.#sql("UPDATE certificates SET status = 'superseded', superseded_by = ? WHERE id = ? AND status = 'active'").run(
            entry.certificate.id,
            id,
          ).changes !== 1
        ) {
          throw new ConflictError(`certificate ${id} is no longer active`);
        }
      }
      if (options.fulfils)
        this.#sql('UPDATE certificate_requests SET fulfilled_by = ? WHERE id = ?').run(entry.certificate.id, options.fulfils);
    })();
  }

  async enqueueCommand(command: CommandRecord, channels: ChannelKey[]): Promise<void> {
    try {
      this.#db.transaction(() => {
        this.#sql(
          `INSERT INTO commands (uuid, request_type, body, priority, created_by, created_at, body_sealed, secrets_expire_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          command.uuid,
          command.requestType,
          command.body,
          command.priority,
          command.createdBy,
          ms(command.createdAt),
          command.sealed ? 1 : 0,
          command.secretsExpireAt ? ms(command.secretsExpireAt) : null,
        );
        for (const channel of channels) {
          this.#sql(
            "INSERT INTO command_queue (enrollment_id, user_id, command_uuid, priority, status, updated_at) VALUES (?, ?, ?, ?, 'queued', ?)",
          ).run(channel.enrollmentId, channel.userId, command.uuid, command.priority, ms(command.createdAt));
        }
      })();
    } catch (err) {
      // The UUID names the command in every report: a second command under one UUID would answer for the first.
      if (String((err as { code?: string }).code).startsWith('SQLITE_CONSTRAINT'))
        throw new ConflictError(`a command with UUID ${command.uuid} already exists`);
      throw err;
    }
  }

  async getCommand(uuid: string): Promise<CommandRecord | undefined> {
    const r = this.#sql('SELECT * FROM commands WHERE uuid = ?').get(uuid) as Row | undefined;
    return r
      ? {
          uuid: String(r.uuid),
          requestType: String(r.request_type),
          body: Buffer.from(r.body as Uint8Array),
          priority: Number(r.priority),
          createdBy: String(r.created_by),
          createdAt: date(r.created_at),
          sealed: r.body_sealed === 1,
          secretsExpireAt: maybeDate(r.secrets_expire_at),
          bodyErasedAt: maybeDate(r.body_erased_at),
        }
      : undefined;
  }

  #queueEntryFromRow(r: Row): QueueEntry {
    const pending = r.status === 'queued' || r.status === 'not-now';
    return {
      seq: Number(r.seq),
      channel: { enrollmentId: String(r.enrollment_id), userId: (r.user_id as string | null) ?? null },
      commandUuid: String(r.command_uuid),
      requestType: String(r.request_type),
      priority: Number(r.priority),
      status: pending && r.body_erased_at !== null && r.body_erased_at !== undefined ? 'expired' : (r.status as QueueStatus),
      result: r.result ? Buffer.from(r.result as Uint8Array) : null,
      updatedAt: date(r.updated_at),
    };
  }

  async nextCommand(
    channel: ChannelKey,
    options: { reviveNotNow: boolean; now: Date },
  ): Promise<(QueueEntry & { body: Buffer; sealed: boolean }) | undefined> {
    return this.#db.transaction(() => {
      if (options.reviveNotNow)
        this.#sql(
          "UPDATE command_queue SET status = 'queued', updated_at = ? WHERE enrollment_id = ? AND user_id IS ? AND status = 'not-now'",
        ).run(ms(options.now), channel.enrollmentId, channel.userId);
      // A command whose secrets expired is not delivered, even before the sweep erases it.
      const r = this.#sql(
        `SELECT q.*, c.request_type, c.body, c.body_sealed, c.body_erased_at FROM command_queue q JOIN commands c ON c.uuid = q.command_uuid
         WHERE q.enrollment_id = ? AND q.user_id IS ? AND q.status = 'queued' AND c.body_erased_at IS NULL
           AND (c.secrets_expire_at IS NULL OR c.secrets_expire_at > ?)
         ORDER BY q.priority DESC, q.seq LIMIT 1`,
      ).get(channel.enrollmentId, channel.userId, ms(options.now)) as Row | undefined;
      return r ? { ...this.#queueEntryFromRow(r), body: Buffer.from(r.body as Uint8Array), sealed: r.body_sealed === 1 } : undefined;
    })();
  }

  async recordCommandResult(
    channel: ChannelKey,
    commandUuid: string,
    status: Exclude<QueueStatus, 'queued' | 'expired'>,
    result: Buffer,
    now: Date,
  ): Promise<boolean> {
    return this.#db.transaction((): boolean => {
      const changed =
        this.#sql(
          `UPDATE command_queue SET status = ?, result = ?, updated_at = ?
           WHERE enrollment_id = ? AND user_id IS ? AND command_uuid = ? AND status IN ('queued', 'not-now')`,
        ).run(status, result, ms(now), channel.enrollmentId, channel.userId, commandUuid).changes === 1;
      // An acknowledged InstallProfile means the profile, and the roots in it, are on the device (its device channel).
      if (changed && status === 'acknowledged' && channel.userId === null) {
        this.#sql(
          'UPDATE profile_deliveries SET acknowledged_at = ? WHERE command_uuid = ? AND enrollment_id = ? AND acknowledged_at IS NULL',
        ).run(ms(now), commandUuid, channel.enrollmentId);
      }
      // Answered on every channel: nothing will deliver the body again, so it goes (it may hold a key or challenge).
      if (changed && status !== 'not-now') {
        this.#sql(
          `UPDATE commands SET body = zeroblob(0), body_erased_at = ? WHERE uuid = ? AND body_erased_at IS NULL
             AND NOT EXISTS (SELECT 1 FROM command_queue WHERE command_uuid = ? AND status IN ('queued', 'not-now'))`,
        ).run(ms(now), commandUuid, commandUuid);
      }
      return changed;
    })();
  }

  async sealCommandBodies(seal: (uuid: string, body: Buffer) => Buffer): Promise<number> {
    return this.#db.transaction((): number => {
      const rows = this.#sql('SELECT uuid, body FROM commands WHERE body_sealed = 0 AND body_erased_at IS NULL').all() as Row[];
      for (const r of rows)
        this.#sql('UPDATE commands SET body = ?, body_sealed = 1 WHERE uuid = ?').run(
          seal(String(r.uuid), Buffer.from(r.body as Uint8Array)),
          r.uuid,
        );
      return rows.length;
    })();
  }

  async sealEnrollmentTokens(
    seal: (enrollmentId: string, kind: 'unlock-token' | 'bootstrap-token', token: Buffer) => Buffer,
  ): Promise<number> {
    return this.#db.transaction((): number => {
      const rows = this.#sql('SELECT id, unlock_token, bootstrap_token FROM enrollments WHERE tokens_sealed = 0').all() as Row[];
      const sealed = (id: string, kind: 'unlock-token' | 'bootstrap-token', v: unknown) =>
        v === null || v === undefined || (v as Uint8Array).length === 0 ? v : seal(id, kind, Buffer.from(v as Uint8Array));
      for (const r of rows)
        this.#sql('UPDATE enrollments SET unlock_token = ?, bootstrap_token = ?, tokens_sealed = 1 WHERE id = ?').run(
          sealed(String(r.id), 'unlock-token', r.unlock_token),
          sealed(String(r.id), 'bootstrap-token', r.bootstrap_token),
          r.id,
        );
      return rows.length;
    })();
  }

  async eraseExpiredCommandBodies(now: Date): Promise<string[]> {
    return this.#db.transaction((): string[] => {
      const uuids = (
        this.#sql('SELECT uuid FROM commands WHERE body_erased_at IS NULL AND secrets_expire_at <= ? ORDER BY uuid').all(ms(now)) as Row[]
      ).map((r) => String(r.uuid));
      for (const uuid of uuids) this.#sql('UPDATE commands SET body = zeroblob(0), body_erased_at = ? WHERE uuid = ?').run(ms(now), uuid);
      return uuids;
    })();
  }

  async eraseCommandBodies(uuids: string[], now: Date): Promise<string[]> {
    return this.#db.transaction((): string[] =>
      uuids.filter(
        (uuid) =>
          this.#sql('UPDATE commands SET body = zeroblob(0), body_erased_at = ? WHERE uuid = ? AND body_erased_at IS NULL').run(
            ms(now),
            uuid,
          ).changes === 1,
      ),
    )();
  }

  async listQueue(channel: ChannelKey): Promise<QueueEntry[]> {
    return (
      this.#sql(
        'SELECT q.*, c.request_type, c.body_erased_at FROM command_queue q JOIN commands c ON c.uuid = q.command_uuid WHERE q.enrollment_id = ? AND q.user_id IS ? ORDER BY q.seq',
      ).all(channel.enrollmentId, channel.userId) as Row[]
    ).map((r) => this.#queueEntryFromRow(r));
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
    const { where, params } = onlyGiven({ action: query.action });
    const rows = this.#sql(`SELECT * FROM audit_log ${where} ORDER BY id DESC LIMIT @limit`).all({
      ...params,
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
