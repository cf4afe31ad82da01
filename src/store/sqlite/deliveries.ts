import { SqliteConcern } from './connection.ts';
import { ms, date, maybeDate, type Row } from '../rows.ts';
import { type EnrolledDevice, type ProfileRecord, type DeliveryStore } from '../types.ts';

export class SqliteDeliveries extends SqliteConcern implements DeliveryStore {
  async insertProfileDelivery(d: { commandUuid: string; enrollmentId: string; profileId: string; createdAt: Date }): Promise<void> {
    this.sql('INSERT INTO profile_deliveries (command_uuid, enrollment_id, profile_id, created_at) VALUES (?, ?, ?, ?)').run(
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
    const r = this.sql(
      `SELECT d.* FROM profile_deliveries d JOIN profiles p ON p.id = d.profile_id
       WHERE d.enrollment_id = ? AND p.kind = ? AND d.acknowledged_at IS NULL ORDER BY d.created_at DESC LIMIT 1`,
    ).get(enrollmentId, kind) as Row | undefined;
    return r ? { commandUuid: String(r.command_uuid), profileId: String(r.profile_id), createdAt: date(r.created_at) } : undefined;
  }

  async installedAnchors(enrollmentId: string, identityCertificateId: string | null): Promise<string[]> {
    const rows = this.sql(
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
    for (const r of this.sql(
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
    const rows = this.sql(
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
}
