import { checkinRhythmSet } from '../enrolled-devices-sql.ts';
import { SqliteConcern } from './connection.ts';
import {
  ms,
  certificateFromRow,
  enrollmentFromRow,
  type Row,
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

export class SqliteEnrollments extends SqliteConcern implements EnrollmentStore {
  async getEnrollment(id: string): Promise<EnrollmentRecord | undefined> {
    const r = this.sql('SELECT * FROM enrollments WHERE id = ?').get(id) as Row | undefined;
    return r ? enrollmentFromRow(r) : undefined;
  }

  async getPushRegistration(id: string): Promise<PushRegistration | undefined> {
    const r = this.sql(`SELECT ${PUSH_REGISTRATION_COLUMNS} FROM enrollments WHERE id = ?`).get(id) as Row | undefined;
    return r ? pushRegistrationFromRow(r) : undefined;
  }

  async listEnrollments(): Promise<EnrollmentRecord[]> {
    return (this.sql('SELECT * FROM enrollments ORDER BY enrolled_at, id').all() as Row[]).map((r) => enrollmentFromRow(r));
  }

  async getBinding(certificateId: string): Promise<string | undefined> {
    const r = this.sql('SELECT enrollment_id FROM certificate_bindings WHERE certificate_id = ?').get(certificateId) as Row | undefined;
    return r ? String(r.enrollment_id) : undefined;
  }

  async authenticateEnrollment(input: AuthenticateInput): Promise<AuthenticateOutcome> {
    return this.db.transaction((): AuthenticateOutcome => {
      const certificate = this.sql('SELECT * FROM certificates WHERE id = ?').get(input.certificateId) as Row | undefined;
      if (!certificate) throw new ConflictError(`certificate ${input.certificateId} is not in the inventory`);
      const bound = this.sql('SELECT enrollment_id FROM certificate_bindings WHERE certificate_id = ?').get(input.certificateId) as
        Row | undefined;
      const existing = this.sql('SELECT * FROM enrollments WHERE id = ?').get(input.id) as Row | undefined;
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
          this.sql('DELETE FROM command_queue WHERE enrollment_id = ?').run(input.id);
          this.sql('DELETE FROM user_channels WHERE enrollment_id = ?').run(input.id);
          this.sql(
            `UPDATE enrollments SET kind = ?, status = 'enrolled', identity_certificate_id = ?, previous_identity_certificate_id = NULL,
               topic = ?, push_token = NULL, push_magic = NULL, unlock_token = NULL, bootstrap_token = NULL, info = ?,
               enrolled_at = ?, last_seen_at = ?, checked_out_at = NULL, renewal_started_at = NULL, renewal_command_uuid = NULL, renewal_attempts = 0 WHERE id = ?`,
          ).run(input.kind, input.certificateId, input.topic, info, now, now, input.id);
          const replaced = existing.identity_certificate_id as string | null;
          if (replaced !== input.certificateId) {
            if (replaced) this.#supersede(replaced, input.certificateId);
            // Another identity starts the enrollment over: whatever was minted for the one before (renewal profiles'
            // identities and challenges, RenewalReq identities, never used) belongs to whoever held the old key.
            this.sql(
              `UPDATE certificates SET status = 'superseded', superseded_by = @id
                 WHERE serves_enrollment = @enrollment AND role = 'device-identity' AND status = 'active' AND id <> @id
                   AND NOT EXISTS (SELECT 1 FROM certificate_bindings b WHERE b.certificate_id = certificates.id)`,
            ).run({ id: input.certificateId, enrollment: input.id });
            // Voided at the epoch, whatever clock a redemption compares it with.
            this.sql('UPDATE scep_challenges SET expires_at = 0 WHERE enrollment_id = ? AND consumed_at IS NULL').run(input.id);
          }
        } else {
          this.sql(
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
        this.sql(
          `UPDATE enrollments SET identity_certificate_id = ?, previous_identity_certificate_id = ?, topic = ?, info = ?, last_seen_at = ?,
             renewal_started_at = NULL, renewal_command_uuid = NULL, renewal_attempts = 0 WHERE id = ?`,
        ).run(input.certificateId, current, input.topic, info, now, input.id);
        // Identities minted for this enrollment before this one and never used are retired: none may become current later.
        this.sql(
          `UPDATE certificates SET status = 'superseded', superseded_by = @id
             WHERE serves_enrollment = @enrollment AND role = 'device-identity' AND status = 'active' AND id <> @id
               AND id <> coalesce(@current, '') AND created_at <= @created
               AND NOT EXISTS (SELECT 1 FROM certificate_bindings b WHERE b.certificate_id = certificates.id)`,
        ).run({ id: input.certificateId, enrollment: input.id, current, created: certificate.created_at });
        // So are the challenges minted for it before this identity (renewal profiles sent to the identity replaced, a
        // re-enrollment profile): redeemed later they would mint an identity that takes the enrollment back.
        this.sql(
          `UPDATE scep_challenges SET expires_at = 0 WHERE enrollment_id = @enrollment AND consumed_at IS NULL AND created_at <= @created`,
        ).run({ enrollment: input.id, created: certificate.created_at });
        outcome = { fresh: false, renewedFrom: current };
      } else {
        this.sql('UPDATE enrollments SET topic = ?, info = ?, last_seen_at = ? WHERE id = ?').run(input.topic, info, now, input.id);
        outcome = { fresh: false, renewedFrom: null };
      }
      if (!bound)
        this.sql('INSERT INTO certificate_bindings (certificate_id, enrollment_id, bound_at) VALUES (?, ?, ?)').run(
          input.certificateId,
          input.id,
          now,
        );
      return outcome;
    })();
  }

  #supersede(certificateId: string, by: string): void {
    this.sql("UPDATE certificates SET status = 'superseded', superseded_by = ? WHERE id = ? AND status = 'active'").run(by, certificateId);
  }

  async touchEnrollments(seen: ReadonlyArray<{ id: string; at: Date; presentedBy?: string }>): Promise<void> {
    const touch = this.sql(
      `UPDATE enrollments SET last_seen_at = @at, ${checkinRhythmSet('@at', '@session')}
         WHERE id = @id AND last_seen_at < @at
         AND (@cert IS NULL OR @cert IN (identity_certificate_id, previous_identity_certificate_id))`,
    );
    this.db.transaction(() => {
      for (const { id, at, presentedBy } of seen) touch.run({ at: ms(at), id, cert: presentedBy ?? null, session: CHECKIN_SESSION_GAP_MS });
    })();
  }

  async updateEnrollment(id: string, patch: EnrollmentPatch, presentedBy?: string): Promise<boolean> {
    const set = enrollmentPatchColumns(patch);
    if (set.length === 0) return true;
    const whose = presentedBy === undefined ? '' : ' AND ? IN (identity_certificate_id, previous_identity_certificate_id)';
    const params = [...set.map(([, v]) => v), id, ...(presentedBy === undefined ? [] : [presentedBy])];
    return this.sql(`UPDATE enrollments SET ${set.map(([c]) => `${c} = ?`).join(', ')} WHERE id = ?${whose}`).run(...params).changes === 1;
  }

  async markRenewalStarted(id: string, at: Date, commandUuid: string): Promise<void> {
    // The first start is kept: how long a renewal has been in flight is what puts a device at risk.
    this.sql(
      'UPDATE enrollments SET renewal_started_at = coalesce(renewal_started_at, ?), renewal_command_uuid = ?, renewal_attempts = renewal_attempts + 1 WHERE id = ?',
    ).run(ms(at), commandUuid, id);
  }

  async promoteIdentity(id: string): Promise<string | null> {
    return this.db.transaction((): string | null => {
      const r = this.sql('SELECT identity_certificate_id, previous_identity_certificate_id FROM enrollments WHERE id = ?').get(id) as
        Row | undefined;
      const previous = (r?.previous_identity_certificate_id as string | null) ?? null;
      if (!r || !previous) return null;
      this.#supersede(previous, String(r.identity_certificate_id));
      this.sql('UPDATE enrollments SET previous_identity_certificate_id = NULL WHERE id = ?').run(id);
      return previous;
    })();
  }

  async checkOutEnrollment(id: string, now: Date, presentedBy?: string): Promise<boolean> {
    const whose = presentedBy === undefined ? '' : ' AND identity_certificate_id = ?';
    return (
      this.sql(`UPDATE enrollments SET status = 'checked-out', checked_out_at = ?, last_seen_at = ? WHERE id = ?${whose}`).run(
        ms(now),
        ms(now),
        id,
        ...(presentedBy === undefined ? [] : [presentedBy]),
      ).changes === 1
    );
  }

  async sealEnrollmentTokens(
    seal: (enrollmentId: string, kind: 'unlock-token' | 'bootstrap-token', token: Buffer) => Buffer,
  ): Promise<number> {
    return this.db.transaction((): number => {
      const rows = this.sql('SELECT id, unlock_token, bootstrap_token FROM enrollments WHERE tokens_sealed = 0').all() as Row[];
      const sealed = (id: string, kind: 'unlock-token' | 'bootstrap-token', v: unknown) =>
        v === null || v === undefined || (v as Uint8Array).length === 0 ? v : seal(id, kind, Buffer.from(v as Uint8Array));
      for (const r of rows)
        this.sql('UPDATE enrollments SET unlock_token = ?, bootstrap_token = ?, tokens_sealed = 1 WHERE id = ?').run(
          sealed(String(r.id), 'unlock-token', r.unlock_token),
          sealed(String(r.id), 'bootstrap-token', r.bootstrap_token),
          r.id,
        );
      return rows.length;
    })();
  }
}
