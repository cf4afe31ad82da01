import { insertCertificate } from './inventory.ts';
import { SqliteConcern, onlyGiven } from './connection.ts';
import { ms, challengeFromRow, enrollmentLinkFromRow, profileFromRows, type Row, profileValues, PROFILE_COLUMNS } from '../rows.ts';
import {
  ConflictError,
  type ChallengeRecord,
  type EnrollmentLinkRecord,
  type NewProfile,
  type ProfileRecord,
  type NewCertificate,
  type EnrollmentLinkStore,
} from '../types.ts';

export class SqliteEnrollmentLinks extends SqliteConcern implements EnrollmentLinkStore {
  async insertChallenge(c: ChallengeRecord): Promise<void> {
    this.#insertChallenge(c);
  }

  async getChallenge(id: string): Promise<ChallengeRecord | undefined> {
    const r = this.sql('SELECT * FROM scep_challenges WHERE id = ?').get(id) as Row | undefined;
    return r ? challengeFromRow(r) : undefined;
  }

  async insertCertificateConsumingChallenge(entry: NewCertificate, challengeId: string, now: Date): Promise<void> {
    this.db.transaction(() => {
      insertCertificate(this.db, entry);
      const changed = this.sql(
        `UPDATE scep_challenges SET consumed_at = ?, certificate_id = ?
           WHERE id = ? AND consumed_at IS NULL AND expires_at > ?`,
      ).run(ms(now), entry.certificate.id, challengeId, ms(now)).changes;
      if (changed !== 1) throw new ConflictError(`challenge ${challengeId} is already used or expired`);
    })();
  }

  #insertChallenge(c: ChallengeRecord): void {
    this.sql(
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
    this.db.transaction(() => {
      entry.certificates?.forEach((c) => insertCertificate(this.db, c));
      if (entry.challenge) this.#insertChallenge(entry.challenge);
      this.sql(`INSERT INTO profiles (${PROFILE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(...profileValues(p));
      for (const c of p.certificates) {
        this.sql('INSERT INTO profile_certificates (profile_id, certificate_id, role) VALUES (?, ?, ?)').run(p.id, c.certificateId, c.role);
        this.sql('INSERT OR IGNORE INTO certificate_dependants (certificate_id, kind, ref) VALUES (?, ?, ?)').run(
          c.certificateId,
          `profile:${p.kind}`,
          p.id,
        );
      }
      if (entry.consumesLink) {
        const { id, now } = entry.consumesLink;
        const changed = this.sql(
          'UPDATE enrollment_links SET used_at = ?, profile_id = ? WHERE id = ? AND used_at IS NULL AND expires_at > ?',
        ).run(ms(now), p.id, id, ms(now)).changes;
        if (changed !== 1) throw new ConflictError(`enrollment link ${id} is already used or expired`);
      }
    })();
  }

  #profileFromRow(r: Row): ProfileRecord {
    return profileFromRows(
      r,
      this.sql('SELECT certificate_id, role FROM profile_certificates WHERE profile_id = ? ORDER BY rowid').all(r.id) as Row[],
    );
  }

  async getProfile(id: string): Promise<ProfileRecord | undefined> {
    const r = this.sql('SELECT * FROM profiles WHERE id = ?').get(id) as Row | undefined;
    return r ? this.#profileFromRow(r) : undefined;
  }

  async listProfiles(query: { kind?: ProfileRecord['kind']; enrollmentRef?: string } = {}): Promise<ProfileRecord[]> {
    const { where, params } = onlyGiven({ kind: query.kind, enrollment_ref: query.enrollmentRef });
    const rows = this.sql(`SELECT * FROM profiles ${where} ORDER BY created_at DESC, rowid DESC`).all(params) as Row[];
    return rows.map((r) => this.#profileFromRow(r));
  }

  async insertEnrollmentLink(l: EnrollmentLinkRecord): Promise<void> {
    this.sql(
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
    const r = this.sql('SELECT * FROM enrollment_links WHERE id = ?').get(id) as Row | undefined;
    return r ? enrollmentLinkFromRow(r) : undefined;
  }
}
