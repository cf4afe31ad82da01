import { SqliteConcern } from './connection.ts';
import { INSTALLED_ANCHORS_SQL, enrolledDevicesSql } from '../enrolled-devices-sql.ts';
import { ms, date, enrolledDevicesFromRows, type Row } from '../rows.ts';
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
    const rows = this.sql(INSTALLED_ANCHORS_SQL).all({ identity: identityCertificateId, enrollment: enrollmentId }) as Row[];
    return rows.map((r) => String(r.certificate_id));
  }

  async listEnrolledDevices(filter?: { renewalWindowOpenBy: { at: Date; share: number } }): Promise<EnrolledDevice[]> {
    const window = filter?.renewalWindowOpenBy;
    const sql = enrolledDevicesSql(window !== undefined);
    const params = window ? { at: window.at.getTime(), share: window.share } : {};
    return enrolledDevicesFromRows(this.sql(sql.devices).all(params) as Row[], this.sql(sql.anchors).all(params) as Row[]);
  }
}
