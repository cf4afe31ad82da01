import { INSTALLED_ANCHORS_SQL, enrolledDevicesSql } from '../enrolled-devices-sql.ts';
import { ms, date, enrolledDevicesFromRows } from '../rows.ts';
import type { DeliveryStore, EnrolledDevice, ProfileRecord } from '../types.ts';
import { PgConcern } from './connection.ts';

export class PgDeliveries extends PgConcern implements DeliveryStore {
  async insertProfileDelivery(d: { commandUuid: string; enrollmentId: string; profileId: string; createdAt: Date }): Promise<void> {
    await this.sql.run('INSERT INTO profile_deliveries (command_uuid, enrollment_id, profile_id, created_at) VALUES ($1, $2, $3, $4)', [
      d.commandUuid,
      d.enrollmentId,
      d.profileId,
      ms(d.createdAt),
    ]);
  }

  async pendingProfileDelivery(
    enrollmentId: string,
    kind: ProfileRecord['kind'],
  ): Promise<{ commandUuid: string; profileId: string; createdAt: Date } | undefined> {
    const r = await this.sql.one(
      `SELECT d.* FROM profile_deliveries d JOIN profiles p ON p.id = d.profile_id
       WHERE d.enrollment_id = $1 AND p.kind = $2 AND d.acknowledged_at IS NULL ORDER BY d.created_at DESC LIMIT 1`,
      [enrollmentId, kind],
    );
    return r ? { commandUuid: String(r.command_uuid), profileId: String(r.profile_id), createdAt: date(r.created_at) } : undefined;
  }

  async installedAnchors(enrollmentId: string, identityCertificateId: string | null): Promise<string[]> {
    const rows = await this.sql.rows(INSTALLED_ANCHORS_SQL, { identity: identityCertificateId, enrollment: enrollmentId });
    return rows.map((r) => String(r.certificate_id));
  }

  async listEnrolledDevices(filter?: { renewalWindowOpenBy: { at: Date; share: number } }): Promise<EnrolledDevice[]> {
    const window = filter?.renewalWindowOpenBy;
    const sql = enrolledDevicesSql(window !== undefined);
    const params = window ? { at: window.at.getTime(), share: window.share } : {};
    // One snapshot for both reads: a delivery acknowledged in between cannot be half seen.
    return this.db.transaction(async (tx) => {
      await tx.run('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
      return enrolledDevicesFromRows(await tx.rows(sql.devices, params), await tx.rows(sql.anchors, params));
    });
  }
}
