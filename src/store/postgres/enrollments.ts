import { checkinRhythmSet } from '../enrolled-devices-sql.ts';
import {
  ms,
  certificateFromRow,
  enrollmentFromRow,
  enrollmentPatchColumns,
  type EnrollmentPatch,
  PUSH_REGISTRATION_COLUMNS,
  pushRegistrationFromRow,
} from '../rows.ts';
import {
  BindingRefused,
  ConflictError,
  type AuthenticateInput,
  type AuthenticateOutcome,
  type EnrollmentRecord,
  type EnrollmentStore,
  type PushRegistration,
  CHECKIN_SESSION_GAP_MS,
} from '../types.ts';
import { PgConcern, type Sql } from './connection.ts';

const supersede = (sql: Sql, certificateId: string, by: string) =>
  sql.run("UPDATE certificates SET status = 'superseded', superseded_by = $1 WHERE id = $2 AND status = 'active'", [by, certificateId]);

/** Every change to one enrollment runs under this lock, taken first: instances decide about a device one at a time. */
export const lockEnrollment = (sql: Sql, id: string) =>
  sql.run('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`enrollment:${id}`]);

export class PgEnrollments extends PgConcern implements EnrollmentStore {
  async getEnrollment(id: string): Promise<EnrollmentRecord | undefined> {
    const r = await this.sql.one('SELECT * FROM enrollments WHERE id = $1', [id]);
    return r ? enrollmentFromRow(r) : undefined;
  }

  async getPushRegistration(id: string): Promise<PushRegistration | undefined> {
    const r = await this.sql.one(`SELECT ${PUSH_REGISTRATION_COLUMNS} FROM enrollments WHERE id = $1`, [id]);
    return r ? pushRegistrationFromRow(r) : undefined;
  }

  async listEnrollments(): Promise<EnrollmentRecord[]> {
    return (await this.sql.rows('SELECT * FROM enrollments ORDER BY enrolled_at, id')).map(enrollmentFromRow);
  }

  async getBinding(certificateId: string): Promise<string | undefined> {
    const r = await this.sql.one('SELECT enrollment_id FROM certificate_bindings WHERE certificate_id = $1', [certificateId]);
    return r ? String(r.enrollment_id) : undefined;
  }

  async authenticateEnrollment(input: AuthenticateInput): Promise<AuthenticateOutcome> {
    return this.db.transaction(async (sql): Promise<AuthenticateOutcome> => {
      // The enrollment first, then the certificate's row: two instances binding one certificate to two enrollments,
      // or moving one enrollment to two certificates, decide one after the other on what the first committed.
      await lockEnrollment(sql, input.id);
      const certificate = await sql.one('SELECT * FROM certificates WHERE id = $1 FOR UPDATE', [input.certificateId]);
      if (!certificate) throw new ConflictError(`certificate ${input.certificateId} is not in the inventory`);
      const bound = await sql.one('SELECT enrollment_id FROM certificate_bindings WHERE certificate_id = $1', [input.certificateId]);
      const existing = await sql.one('SELECT * FROM enrollments WHERE id = $1 FOR UPDATE', [input.id]);
      const decision = input.decide({
        claimed: input.id,
        certificate: certificateFromRow(certificate),
        boundTo: bound ? String(bound.enrollment_id) : null,
        enrollment: existing ? enrollmentFromRow(existing) : null,
        now: input.now,
      });
      if ('refuse' in decision) throw new BindingRefused(decision.refuse, decision.message);
      const now = ms(input.now);
      const info = JSON.stringify(input.info);
      let outcome: AuthenticateOutcome;
      if (decision.allow === 'fresh') {
        if (existing) {
          // A fresh enrollment after CheckOut starts clean: no queue (its device and user channels), no tokens from before.
          await sql.run('DELETE FROM command_queue WHERE enrollment_id = $1', [input.id]);
          await sql.run('DELETE FROM user_channels WHERE enrollment_id = $1', [input.id]);
          await sql.run(
            `UPDATE enrollments SET kind = $1, status = 'enrolled', identity_certificate_id = $2, previous_identity_certificate_id = NULL,
               topic = $3, push_token = NULL, push_magic = NULL, unlock_token = NULL, bootstrap_token = NULL, info = $4,
               enrolled_at = $5, last_seen_at = $5, checked_out_at = NULL, renewal_started_at = NULL, renewal_command_uuid = NULL,
               renewal_attempts = 0 WHERE id = $6`,
            [input.kind, input.certificateId, input.topic, info, now, input.id],
          );
          const replaced = existing.identity_certificate_id as string | null;
          if (replaced !== input.certificateId) {
            if (replaced) await supersede(sql, replaced, input.certificateId);
            // Another identity starts the enrollment over: whatever was minted for the one before belongs to whoever
            // held the old key.
            await sql.run(
              `UPDATE certificates SET status = 'superseded', superseded_by = @id
                 WHERE serves_enrollment = @enrollment AND role = 'device-identity' AND status = 'active' AND id <> @id
                   AND NOT EXISTS (SELECT 1 FROM certificate_bindings b WHERE b.certificate_id = certificates.id)`,
              { id: input.certificateId, enrollment: input.id },
            );
            // Voided at the epoch, not at this instance's "now": a redemption that read its clock a moment earlier, on
            // any instance, still finds the challenge expired.
            await sql.run('UPDATE scep_challenges SET expires_at = 0 WHERE enrollment_id = $1 AND consumed_at IS NULL', [input.id]);
          }
        } else {
          await sql.run(
            `INSERT INTO enrollments (id, kind, status, identity_certificate_id, topic, info, enrolled_at, last_seen_at)
             VALUES ($1, $2, 'enrolled', $3, $4, $5, $6, $6)`,
            [input.id, input.kind, input.certificateId, input.topic, info, now],
          );
        }
        outcome = { fresh: true, renewedFrom: null };
      } else if (decision.allow === 'renewal') {
        const current = existing!.identity_certificate_id as string | null;
        const previous = existing!.previous_identity_certificate_id as string | null;
        // A second renewal before the first was seen: the oldest identity is superseded now.
        if (previous && current) await supersede(sql, previous, current);
        await sql.run(
          `UPDATE enrollments SET identity_certificate_id = $1, previous_identity_certificate_id = $2, topic = $3, info = $4, last_seen_at = $5,
             renewal_started_at = NULL, renewal_command_uuid = NULL, renewal_attempts = 0 WHERE id = $6`,
          [input.certificateId, current, input.topic, info, now, input.id],
        );
        // Identities minted for this enrollment before this one and never used are retired: none may become current later.
        await sql.run(
          `UPDATE certificates SET status = 'superseded', superseded_by = @id
             WHERE serves_enrollment = @enrollment AND role = 'device-identity' AND status = 'active' AND id <> @id
               AND id <> coalesce(@current, '') AND created_at <= CAST(@created AS BIGINT)
               AND NOT EXISTS (SELECT 1 FROM certificate_bindings b WHERE b.certificate_id = certificates.id)`,
          { id: input.certificateId, enrollment: input.id, current, created: certificate.created_at },
        );
        // So are the challenges minted for it before this identity: redeemed later they would mint an identity that
        // takes the enrollment back.
        await sql.run(`UPDATE scep_challenges SET expires_at = 0 WHERE enrollment_id = $1 AND consumed_at IS NULL AND created_at <= $2`, [
          input.id,
          certificate.created_at,
        ]);
        outcome = { fresh: false, renewedFrom: current };
      } else {
        await sql.run('UPDATE enrollments SET topic = $1, info = $2, last_seen_at = $3 WHERE id = $4', [input.topic, info, now, input.id]);
        outcome = { fresh: false, renewedFrom: null };
      }
      if (!bound)
        await sql.run('INSERT INTO certificate_bindings (certificate_id, enrollment_id, bound_at) VALUES ($1, $2, $3)', [
          input.certificateId,
          input.id,
          now,
        ]);
      return outcome;
    });
  }

  async touchEnrollments(seen: ReadonlyArray<{ id: string; at: Date; presentedBy?: string }>): Promise<void> {
    if (seen.length === 0) return;
    // Rows are locked in id order first: two instances flushing overlapping devices wait for each other, never deadlock.
    await this.sql.run(
      `WITH v AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[]) AS v(id, at, cert)),
            locked AS (SELECT e.id FROM enrollments e JOIN v ON v.id = e.id ORDER BY e.id FOR UPDATE OF e)
       UPDATE enrollments e SET last_seen_at = v.at, ${checkinRhythmSet('v.at', '$4::bigint', 'e.')} FROM v
         WHERE e.id = v.id AND e.id IN (SELECT id FROM locked) AND e.last_seen_at < v.at
           AND (v.cert IS NULL OR v.cert IN (e.identity_certificate_id, e.previous_identity_certificate_id))`,
      [seen.map((s) => s.id), seen.map((s) => ms(s.at)), seen.map((s) => s.presentedBy ?? null), CHECKIN_SESSION_GAP_MS],
    );
  }

  async updateEnrollment(id: string, patch: EnrollmentPatch, presentedBy?: string): Promise<boolean> {
    const set = enrollmentPatchColumns(patch);
    if (set.length === 0) return true;
    const n = set.length;
    // The presenter's standing is checked by the UPDATE itself: a takeover committed by another instance after the
    // message was checked leaves this write with nothing to change.
    const whose = presentedBy === undefined ? '' : ` AND $${n + 2} IN (identity_certificate_id, previous_identity_certificate_id)`;
    return (
      (await this.sql.run(`UPDATE enrollments SET ${set.map(([c], i) => `${c} = $${i + 1}`).join(', ')} WHERE id = $${n + 1}${whose}`, [
        ...set.map(([, v]) => v),
        id,
        ...(presentedBy === undefined ? [] : [presentedBy]),
      ])) === 1
    );
  }

  async markRenewalStarted(id: string, at: Date, commandUuid: string): Promise<void> {
    // The first start is kept: how long a renewal has been in flight is what puts a device at risk.
    await this.sql.run(
      'UPDATE enrollments SET renewal_started_at = coalesce(renewal_started_at, $1), renewal_command_uuid = $2, renewal_attempts = renewal_attempts + 1 WHERE id = $3',
      [ms(at), commandUuid, id],
    );
  }

  async promoteIdentity(id: string): Promise<string | null> {
    return this.db.transaction(async (sql) => {
      await lockEnrollment(sql, id);
      const r = await sql.one('SELECT identity_certificate_id, previous_identity_certificate_id FROM enrollments WHERE id = $1', [id]);
      const previous = (r?.previous_identity_certificate_id as string | null) ?? null;
      if (!r || !previous) return null;
      await supersede(sql, previous, String(r.identity_certificate_id));
      await sql.run('UPDATE enrollments SET previous_identity_certificate_id = NULL WHERE id = $1', [id]);
      return previous;
    });
  }

  async checkOutEnrollment(id: string, now: Date, presentedBy?: string): Promise<boolean> {
    const whose = presentedBy === undefined ? '' : ' AND identity_certificate_id = $3';
    return (
      (await this.sql.run(`UPDATE enrollments SET status = 'checked-out', checked_out_at = $1, last_seen_at = $1 WHERE id = $2${whose}`, [
        ms(now),
        id,
        ...(presentedBy === undefined ? [] : [presentedBy]),
      ])) === 1
    );
  }

  async sealEnrollmentTokens(
    seal: (enrollmentId: string, kind: 'unlock-token' | 'bootstrap-token', token: Buffer) => Buffer,
  ): Promise<number> {
    return this.db.transaction(async (sql) => {
      const rows = await sql.rows('SELECT id, unlock_token, bootstrap_token FROM enrollments WHERE tokens_sealed = 0 FOR UPDATE');
      const sealed = (id: string, kind: 'unlock-token' | 'bootstrap-token', v: unknown) =>
        v === null || v === undefined || (v as Uint8Array).length === 0 ? v : seal(id, kind, Buffer.from(v as Uint8Array));
      for (const r of rows)
        await sql.run('UPDATE enrollments SET unlock_token = $1, bootstrap_token = $2, tokens_sealed = 1 WHERE id = $3', [
          sealed(String(r.id), 'unlock-token', r.unlock_token),
          sealed(String(r.id), 'bootstrap-token', r.bootstrap_token),
          r.id,
        ]);
      return rows.length;
    });
  }
}
