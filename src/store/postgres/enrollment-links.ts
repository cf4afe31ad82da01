import { ms, challengeFromRow, enrollmentLinkFromRow, profileFromRows, profileValues, PROFILE_COLUMNS, type Row } from '../rows.ts';
import {
  ConflictError,
  type ChallengeRecord,
  type EnrollmentLinkRecord,
  type EnrollmentLinkStore,
  type NewCertificate,
  type NewProfile,
  type ProfileRecord,
} from '../types.ts';
import { PgConcern, type Sql } from './connection.ts';
import { lockEnrollment } from './enrollments.ts';
import { insertCertificate } from './inventory.ts';

async function insertChallenge(sql: Sql, c: ChallengeRecord): Promise<void> {
  await sql.run(
    `INSERT INTO scep_challenges (id, secret_hash, purpose, enrollment_ref, enrollment_id, created_by, created_at, expires_at, consumed_at, certificate_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [
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
    ],
  );
}

export class PgEnrollmentLinks extends PgConcern implements EnrollmentLinkStore {
  async insertChallenge(c: ChallengeRecord): Promise<void> {
    await insertChallenge(this.sql, c);
  }

  async getChallenge(id: string): Promise<ChallengeRecord | undefined> {
    const r = await this.sql.one('SELECT * FROM scep_challenges WHERE id = $1', [id]);
    return r ? challengeFromRow(r) : undefined;
  }

  async insertCertificateConsumingChallenge(entry: NewCertificate, challengeId: string, now: Date): Promise<void> {
    // The UPDATE takes the challenge's row lock: a second request with the same challenge, on this instance or
    // another, waits for the first to commit, then finds it consumed and changes nothing. One certificate per challenge.
    await this.db.transaction(async (sql) => {
      // A challenge minted for an enrollment is redeemed under that enrollment's lock, the one Authenticate holds while
      // it retires what was minted for a replaced identity: a redemption racing a re-enrollment on another instance
      // either commits first (and its identity is retired) or finds the challenge voided.
      const scoped = await sql.one('SELECT enrollment_id FROM scep_challenges WHERE id = $1', [challengeId]);
      if (scoped?.enrollment_id) await lockEnrollment(sql, String(scoped.enrollment_id));
      await insertCertificate(sql, entry);
      const changed = await sql.run(
        'UPDATE scep_challenges SET consumed_at = $1, certificate_id = $2 WHERE id = $3 AND consumed_at IS NULL AND expires_at > $1',
        [ms(now), entry.certificate.id, challengeId],
      );
      if (changed !== 1) throw new ConflictError(`challenge ${challengeId} is already used or expired`);
    });
  }

  async insertProfile(entry: NewProfile): Promise<void> {
    const p = entry.profile;
    await this.db.transaction(async (sql) => {
      for (const c of entry.certificates ?? []) await insertCertificate(sql, c);
      if (entry.challenge) await insertChallenge(sql, entry.challenge);
      await sql.run(`INSERT INTO profiles (${PROFILE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, profileValues(p));
      for (const c of p.certificates) {
        await sql.run('INSERT INTO profile_certificates (profile_id, certificate_id, role) VALUES ($1, $2, $3)', [
          p.id,
          c.certificateId,
          c.role,
        ]);
        await sql.run('INSERT INTO certificate_dependants (certificate_id, kind, ref) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [
          c.certificateId,
          `profile:${p.kind}`,
          p.id,
        ]);
      }
      if (entry.consumesLink) {
        const { id, now } = entry.consumesLink;
        const changed = await sql.run(
          'UPDATE enrollment_links SET used_at = $1, profile_id = $2 WHERE id = $3 AND used_at IS NULL AND expires_at > $1',
          [ms(now), p.id, id],
        );
        if (changed !== 1) throw new ConflictError(`enrollment link ${id} is already used or expired`);
      }
    });
  }

  async #profile(r: Row): Promise<ProfileRecord> {
    return profileFromRows(
      r,
      await this.sql.rows('SELECT certificate_id, role FROM profile_certificates WHERE profile_id = $1 ORDER BY seq', [r.id]),
    );
  }

  async getProfile(id: string): Promise<ProfileRecord | undefined> {
    const r = await this.sql.one('SELECT * FROM profiles WHERE id = $1', [id]);
    return r ? this.#profile(r) : undefined;
  }

  async listProfiles(query: { kind?: ProfileRecord['kind']; enrollmentRef?: string } = {}): Promise<ProfileRecord[]> {
    const given = Object.entries({ kind: query.kind, enrollment_ref: query.enrollmentRef }).filter(([, v]) => v !== undefined);
    const where = given.length ? `WHERE ${given.map(([column], i) => `${column} = $${i + 1}`).join(' AND ')}` : '';
    const rows = await this.sql.rows(
      `SELECT * FROM profiles ${where} ORDER BY created_at DESC, seq DESC`,
      given.map(([, v]) => v),
    );
    return Promise.all(rows.map((r) => this.#profile(r)));
  }

  async insertEnrollmentLink(l: EnrollmentLinkRecord): Promise<void> {
    await this.sql.run(
      `INSERT INTO enrollment_links (id, secret_hash, identity_kind, enrollment_id, created_by, created_at, expires_at, used_at, profile_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        l.id,
        l.secretHash,
        l.identityKind,
        l.enrollmentId,
        l.createdBy,
        ms(l.createdAt),
        ms(l.expiresAt),
        l.usedAt && ms(l.usedAt),
        l.profileId,
      ],
    );
  }

  async getEnrollmentLink(id: string): Promise<EnrollmentLinkRecord | undefined> {
    const r = await this.sql.one('SELECT * FROM enrollment_links WHERE id = $1', [id]);
    return r ? enrollmentLinkFromRow(r) : undefined;
  }
}
