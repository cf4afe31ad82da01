import type { ApiTokenRecord, CertificateRecord, CertificateStatus, EnrollmentRecord, QueueEntry, QueueStatus } from './types.ts';

/**
 * Rows as both backends return them (timestamps as epoch milliseconds, binary as bytes) turned into records: one
 * mapping, so the backends cannot drift apart in what a column means.
 */
export type Row = Record<string, unknown>;

export const ms = (d: Date) => d.getTime();
export const date = (v: unknown) => new Date(Number(v));
export const maybeDate = (v: unknown) => (v === null || v === undefined ? null : date(v));
export const bytes = (v: unknown) => Buffer.from(v as Uint8Array);
export const maybeBytes = (v: unknown) => (v === null || v === undefined ? null : bytes(v));
export const maybeString = (v: unknown) => (v as string | null | undefined) ?? null;

export function certificateFromRow(r: Row): CertificateRecord {
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

export function tokenFromRow(r: Row): ApiTokenRecord {
  return {
    id: String(r.id),
    name: String(r.name),
    secretHash: Buffer.from(r.secret_hash as Uint8Array),
    createdAt: date(r.created_at),
    lastUsedAt: maybeDate(r.last_used_at),
    revokedAt: maybeDate(r.revoked_at),
  };
}

export function enrollmentFromRow(r: Row): EnrollmentRecord {
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

export function queueEntryFromRow(r: Row): QueueEntry {
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
