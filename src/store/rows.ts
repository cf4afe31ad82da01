import type {
  AdminAccountRecord,
  ConsoleSessionRecord,
  PushRegistration,
  ApiTokenRecord,
  AuditEvent,
  CertificateRecord,
  CertificateRequestRecord,
  CertificateStatus,
  ChallengeRecord,
  CommandRecord,
  EnrolledDevice,
  EnrollmentLinkRecord,
  EnrollmentRecord,
  ProfileRecord,
  QueueEntry,
  QueueStatus,
  SealedKeyRecord,
  StoredAuditEvent,
  UserChannelRecord,
} from './types.ts';

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

const blob = (v: unknown) => (v === null || v === undefined ? null : Buffer.from(v as Uint8Array));

/** The columns of a PushRegistration (a TokenUpdate's fields as stored). */
export const PUSH_REGISTRATION_COLUMNS = 'topic, push_token, push_magic, unlock_token, push_token_invalid_at';

export function pushRegistrationFromRow(r: Row): PushRegistration {
  return {
    topic: (r.topic as string | null) ?? null,
    pushToken: blob(r.push_token),
    pushMagic: (r.push_magic as string | null) ?? null,
    unlockToken: blob(r.unlock_token),
    pushTokenInvalidAt: maybeDate(r.push_token_invalid_at),
  };
}

export function enrollmentFromRow(r: Row): EnrollmentRecord {
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
    rhythm: {
      sessions: Number(r.checkin_sessions ?? 1),
      typicalGapMs: r.checkin_gap_ms === null || r.checkin_gap_ms === undefined ? null : Number(r.checkin_gap_ms),
      longestGapMs: r.checkin_gap_max_ms === null || r.checkin_gap_max_ms === undefined ? null : Number(r.checkin_gap_max_ms),
    },
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

export function sealedKeyFromRow(r: Row): SealedKeyRecord {
  return { id: String(r.id), algorithm: String(r.algorithm), sealed: bytes(r.sealed), createdAt: date(r.created_at) };
}

export function challengeFromRow(r: Row): ChallengeRecord {
  return {
    id: String(r.id),
    secretHash: bytes(r.secret_hash),
    purpose: String(r.purpose),
    enrollmentRef: maybeString(r.enrollment_ref),
    enrollmentId: maybeString(r.enrollment_id),
    createdBy: String(r.created_by),
    createdAt: date(r.created_at),
    expiresAt: date(r.expires_at),
    consumedAt: maybeDate(r.consumed_at),
    certificateId: maybeString(r.certificate_id),
  };
}

export function enrollmentLinkFromRow(r: Row): EnrollmentLinkRecord {
  return {
    id: String(r.id),
    secretHash: bytes(r.secret_hash),
    identityKind: r.identity_kind as EnrollmentLinkRecord['identityKind'],
    enrollmentId: maybeString(r.enrollment_id),
    createdBy: String(r.created_by),
    createdAt: date(r.created_at),
    expiresAt: date(r.expires_at),
    usedAt: maybeDate(r.used_at),
    profileId: maybeString(r.profile_id),
  };
}

/** A profile row with its certificate rows, in the order they were stored. */
export function profileFromRows(r: Row, certificates: Row[]): ProfileRecord {
  return {
    id: String(r.id),
    kind: r.kind as ProfileRecord['kind'],
    payloadIdentifier: String(r.payload_identifier),
    payloadUuid: String(r.payload_uuid),
    enrollmentRef: maybeString(r.enrollment_ref),
    identityKind: (r.identity_kind as ProfileRecord['identityKind']) ?? null,
    challengeId: maybeString(r.challenge_id),
    signerCertificateId: maybeString(r.signer_certificate_id),
    createdBy: String(r.created_by),
    createdAt: date(r.created_at),
    effectiveExpiry: date(r.effective_expiry),
    certificates: certificates.map((c) => ({
      certificateId: String(c.certificate_id),
      role: c.role as ProfileRecord['certificates'][number]['role'],
    })),
  };
}

export function userChannelFromRow(r: Row): UserChannelRecord {
  return {
    enrollmentId: String(r.enrollment_id),
    userId: String(r.user_id),
    userShortName: maybeString(r.user_short_name),
    pushToken: r.push_token ? bytes(r.push_token) : null,
    pushMagic: maybeString(r.push_magic),
    pushTokenInvalidAt: maybeDate(r.push_token_invalid_at),
    lastSeenAt: date(r.last_seen_at),
  };
}

export function certificateRequestFromRow(r: Row): CertificateRequestRecord {
  return {
    id: String(r.id),
    purpose: r.purpose as CertificateRequestRecord['purpose'],
    subject: String(r.subject),
    keyId: String(r.key_id),
    der: bytes(r.der),
    createdAt: date(r.created_at),
    fulfilledBy: maybeString(r.fulfilled_by),
  };
}

export function commandFromRow(r: Row): CommandRecord {
  return {
    uuid: String(r.uuid),
    requestType: String(r.request_type),
    body: bytes(r.body),
    priority: Number(r.priority),
    createdBy: String(r.created_by),
    createdAt: date(r.created_at),
    sealed: Number(r.body_sealed) === 1,
    secretsExpireAt: maybeDate(r.secrets_expire_at),
    bodyErasedAt: maybeDate(r.body_erased_at),
  };
}

export function auditFromRow(r: Row): StoredAuditEvent {
  return {
    id: Number(r.id),
    at: date(r.at),
    actor: String(r.actor),
    action: String(r.action),
    target: maybeString(r.target),
    outcome: r.outcome as AuditEvent['outcome'],
    reason: maybeString(r.reason),
    detail: r.detail ? (JSON.parse(String(r.detail)) as Record<string, unknown>) : null,
  };
}

/** The enrolled devices as the planner sees them, from the device rows and the (device, root, from profile) rows. */
export function enrolledDevicesFromRows(devices: Row[], anchorRows: Row[]): EnrolledDevice[] {
  const anchors = new Map<string, string[]>();
  const profileAnchors = new Map<string, string[]>();
  // Rows come sorted by device and root, and a root from both sources comes once per source: a repeat is the last.
  const add = (map: Map<string, string[]>, id: string, root: string) => {
    const list = map.get(id) ?? [];
    if (list.at(-1) !== root) list.push(root);
    map.set(id, list);
  };
  for (const r of anchorRows) {
    const id = String(r.enrollment_id);
    const root = String(r.certificate_id);
    add(anchors, id, root);
    if (Number(r.from_profile) === 1) add(profileAnchors, id, root);
  }
  return devices.map((r) => ({
    id: String(r.id),
    identity: r.certificate_id ? { id: String(r.certificate_id), notBefore: date(r.not_before), notAfter: date(r.not_after) } : null,
    anchors: anchors.get(String(r.id)) ?? [],
    profileAnchors: profileAnchors.get(String(r.id)) ?? [],
    lastSeenAt: date(r.last_seen_at),
    renewalStartedAt: maybeDate(r.renewal_started_at),
  }));
}

/** What `updateEnrollment` may change, by column. */
export type EnrollmentPatch = Partial<
  Pick<EnrollmentRecord, 'topic' | 'pushToken' | 'pushMagic' | 'unlockToken' | 'bootstrapToken' | 'lastSeenAt' | 'pushTokenInvalidAt'>
>;
const ENROLLMENT_COLUMNS: Record<keyof EnrollmentPatch, string> = {
  topic: 'topic',
  pushToken: 'push_token',
  pushMagic: 'push_magic',
  unlockToken: 'unlock_token',
  bootstrapToken: 'bootstrap_token',
  lastSeenAt: 'last_seen_at',
  pushTokenInvalidAt: 'push_token_invalid_at',
};

/** The columns and values an enrollment patch sets (given fields only). A new push token is valid until APNs says otherwise. */
export function enrollmentPatchColumns(patch: EnrollmentPatch): [column: string, value: unknown][] {
  const full = patch.pushToken && patch.pushTokenInvalidAt === undefined ? { ...patch, pushTokenInvalidAt: null } : patch;
  return (Object.entries(full) as [keyof EnrollmentPatch, unknown][])
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => [ENROLLMENT_COLUMNS[k], v instanceof Date ? ms(v) : v]);
}

/** A profile row's values, in the column order both backends insert them. */
export const PROFILE_COLUMNS =
  'id, kind, payload_identifier, payload_uuid, enrollment_ref, identity_kind, challenge_id, signer_certificate_id, created_by, created_at, effective_expiry';
export function profileValues(p: ProfileRecord): unknown[] {
  return [
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
  ];
}

export function adminAccountFromRow(r: Row): AdminAccountRecord {
  return {
    name: String(r.name),
    passwordHash: String(r.password_hash),
    createdAt: date(r.created_at),
    passwordChangedAt: date(r.password_changed_at),
    lastLoginAt: maybeDate(r.last_login_at),
  };
}

export function consoleSessionFromRow(r: Row): ConsoleSessionRecord {
  return {
    idHash: Buffer.from(r.id_hash as Uint8Array),
    account: String(r.account),
    createdAt: date(r.created_at),
    lastUsedAt: date(r.last_used_at),
    expiresAt: date(r.expires_at),
  };
}
