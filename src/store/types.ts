/**
 * The one storage interface. Every backend (SQLite now, PostgreSQL later) implements it and passes the shared
 * conformance suite in test/store/conformance.ts. Each method that changes more than one row is atomic.
 */

export const CERTIFICATE_ROLES = ['root', 'intermediate', 'tls', 'profile-signing', 'scep-ra', 'push', 'device-identity'] as const;
export type CertificateRole = (typeof CERTIFICATE_ROLES)[number];

export const CERTIFICATE_STATUSES = ['active', 'superseded', 'revoked', 'expired'] as const;
export type CertificateStatus = (typeof CERTIFICATE_STATUSES)[number];

export interface SealedKeyRecord {
  id: string;
  /** e.g. rsa-2048, ec-P-384 */
  algorithm: string;
  /** AES-256-GCM blob from MasterKey.seal, bound to `id`. Never the plaintext key. */
  sealed: Buffer;
  createdAt: Date;
}

export interface CertificateRecord {
  id: string;
  role: CertificateRole;
  subject: string;
  /** The inventory id of the issuing certificate; null for a self-signed root or an external issuer. */
  issuerId: string | null;
  serialHex: string;
  fingerprintSha256: string;
  notBefore: Date;
  notAfter: Date;
  status: CertificateStatus;
  /** The sealed private key, when certmdm holds it. */
  keyId: string | null;
  der: Buffer;
  createdAt: Date;
  supersededBy: string | null;
  /**
   * For a device identity: the enrollment (UDID or EnrollmentID) it was minted for, fixed at issuance; null means it
   * may only start a new enrollment. A binding moves only to an identity minted for that enrollment.
   */
  servesEnrollment: string | null;
  /** For an identity issued by SCEP RenewalReq: the identity that signed the request (one renewal per identity). */
  renewalOf: string | null;
}

/** Something other than a certificate that relies on a certificate: a service, profile, device, enrollment. */
export interface Dependant {
  certificateId: string;
  kind: string;
  ref: string;
}

export interface NewCertificate {
  certificate: CertificateRecord;
  key?: SealedKeyRecord;
  dependants?: Omit<Dependant, 'certificateId'>[];
}

export interface CertificateQuery {
  role?: CertificateRole;
  status?: CertificateStatus;
}

export interface ApiTokenRecord {
  id: string;
  name: string;
  /** SHA-256 of the token's secret part. */
  secretHash: Buffer;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export const AUDIT_OUTCOMES = ['ok', 'allowed', 'denied', 'error'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/** What the audit log is searched by; every field narrows. */
export interface AuditQuery {
  action?: string;
  /** Actions starting with this (`lifecycle.` for every lifecycle event). */
  actionPrefix?: string;
  actor?: string;
  target?: string;
  outcome?: AuditOutcome;
  /** Only events older than this id: the next page of a newest-first listing. */
  beforeId?: number;
  limit?: number;
}

/** An administrator of the console (console/passwords.ts hashes the password). */
export interface AdminAccountRecord {
  name: string;
  /** `scrypt$N$r$p$salt$hash`: the password's memory-hard hash with its parameters; never the password. */
  passwordHash: string;
  createdAt: Date;
  passwordChangedAt: Date;
  lastLoginAt: Date | null;
}

/** A console login. The cookie carries the secret; only its SHA-256 is stored. */
export interface ConsoleSessionRecord {
  idHash: Buffer;
  account: string;
  createdAt: Date;
  lastUsedAt: Date;
  /** The absolute end, however active the session (the idle end is lastUsedAt + the idle timeout). */
  expiresAt: Date;
}

export interface AuditEvent {
  at: Date;
  /** Who acted: `token:<id>`, `cli`, `system`, `device:<udid>`, or the peer address for the unauthenticated. */
  actor: string;
  action: string;
  target?: string | null;
  outcome: AuditOutcome;
  reason?: string | null;
  detail?: Record<string, unknown> | null;
}

export interface StoredAuditEvent extends AuditEvent {
  id: number;
}

export interface ChallengeRecord {
  id: string;
  /** SHA-256 of the secret part; the challenge itself is never stored. */
  secretHash: Buffer;
  /** What the challenge was minted for: 'scep' by hand, 'enrollment-profile' inside a profile. */
  purpose: string;
  /** The enrollment reference (the identity's subject CN) of the profile or device it belongs to. */
  enrollmentRef: string | null;
  /** The enrolled device (UDID or EnrollmentID) whose enrollment its identity may take over; null: a new device only. */
  enrollmentId: string | null;
  createdBy: string;
  createdAt: Date;
  expiresAt: Date;
  consumedAt: Date | null;
  /** The certificate whose issuance consumed it. */
  certificateId: string | null;
}

export type IdentityKind = 'scep' | 'pkcs12';

/** A generated profile and what it carries, so the lifecycle engine knows when it must be replaced. */
export interface ProfileRecord {
  id: string;
  kind: 'enrollment' | 'trust';
  payloadIdentifier: string;
  payloadUuid: string;
  /** The enrollment it belongs to (the identity's subject CN); null for trust profiles. */
  enrollmentRef: string | null;
  identityKind: IdentityKind | null;
  challengeId: string | null;
  signerCertificateId: string | null;
  createdBy: string;
  createdAt: Date;
  /** Earliest notAfter among the embedded certificates and the identity the profile will produce. */
  effectiveExpiry: Date;
  certificates: { certificateId: string; role: 'anchor' | 'intermediate' | 'identity' }[];
}

export interface EnrollmentLinkRecord {
  id: string;
  secretHash: Buffer;
  identityKind: IdentityKind;
  /** A re-enrollment link names the enrolled device it may take over; a plain link enrolls a new device only. */
  enrollmentId: string | null;
  createdBy: string;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
  profileId: string | null;
}

export interface NewProfile {
  profile: ProfileRecord;
  /** Certificates made for this profile (a PKCS#12 identity), stored in the same transaction. */
  certificates?: NewCertificate[];
  /** The SCEP challenge minted into it. */
  challenge?: ChallengeRecord;
  /** The enrollment link this profile answers; consumed in the same transaction. */
  consumesLink?: { id: string; now: Date };
}

export interface EnrollmentRecord {
  /** The device channel's id: the UDID, or the EnrollmentID of a User Enrollment. */
  id: string;
  kind: 'device' | 'user-enrollment';
  status: 'enrolled' | 'checked-out';
  identityCertificateId: string | null;
  /** The identity being renewed away from: still accepted until the new one is seen on a later message. */
  previousIdentityCertificateId: string | null;
  topic: string | null;
  pushToken: Buffer | null;
  pushMagic: string | null;
  /** Sealed under the master key (src/mdm/device-tokens.ts); an empty bootstrap token means none is escrowed. */
  unlockToken: Buffer | null;
  bootstrapToken: Buffer | null;
  /** Set when APNs answered 410 Unregistered for the push token; cleared by the next TokenUpdate. */
  pushTokenInvalidAt: Date | null;
  /** When the lifecycle engine sent this device a renewal profile that has not produced a new identity yet. */
  renewalStartedAt: Date | null;
  renewalCommandUuid: string | null;
  /** Renewal profiles sent since the renewal in flight started (0 when none is). */
  renewalAttempts: number;
  /** What Authenticate said about the device (DeviceName, Model, OSVersion, SerialNumber, ...). */
  info: Record<string, string>;
  enrolledAt: Date;
  lastSeenAt: Date;
  checkedOutAt: Date | null;
  /** The device's check-in rhythm, as the last-seen writes observed it (lifecycle/forecast.ts reads it). */
  rhythm: CheckInRhythm;
}

/**
 * Sessions are check-ins at least CHECKIN_SESSION_GAP_MS apart (the messages of one session are minutes apart);
 * the typical gap is a moving average (weight 1/4 to the newest), the longest the longest ever seen.
 */
export interface CheckInRhythm {
  sessions: number;
  typicalGapMs: number | null;
  longestGapMs: number | null;
}

export const CHECKIN_SESSION_GAP_MS = 3_600_000;

export interface EnrolledDevice {
  id: string;
  identity: { id: string; notBefore: Date; notAfter: Date } | null;
  /** Root certificate ids, sorted: every root the device has installed (its enrollment profile's and delivered ones). */
  anchors: string[];
  /**
   * The roots of the enrollment profile that produced its current identity, sorted: with ServerURL pinning these are
   * the only roots the device accepts for ServerURL (a trust profile's roots are installed but not pinned).
   */
  profileAnchors: string[];
  lastSeenAt: Date;
  renewalStartedAt: Date | null;
}

export interface AuthenticateInput {
  id: string;
  kind: EnrollmentRecord['kind'];
  certificateId: string;
  topic: string;
  info: Record<string, string>;
  now: Date;
  /** The binding policy, applied by the store to the facts it reads inside the transaction (see mdm/binding.ts). */
  decide: (facts: BindingFacts) => BindingDecision;
}

/** What the binding policy decides on, read atomically with the change it leads to. */
export interface BindingFacts {
  /** The UDID or EnrollmentID the Authenticate claims. */
  claimed: string;
  certificate: Pick<CertificateRecord, 'id' | 'status' | 'role' | 'servesEnrollment' | 'renewalOf' | 'notAfter'>;
  /** The enrollment the certificate is bound to, if it ever authenticated. */
  boundTo: string | null;
  enrollment: Pick<EnrollmentRecord, 'status' | 'identityCertificateId' | 'previousIdentityCertificateId'> | null;
  now: Date;
}

export const BINDING_REFUSALS = [
  /** The certificate is bound to a different enrollment. */
  'bound-to-another-enrollment',
  /** Superseded, revoked, expired, or a previous identity of this enrollment: never current again. */
  'identity-retired',
  /** The identity was minted for a different enrollment (renewal, renewal profile, re-enrollment link). */
  'minted-for-another-enrollment',
  /** A plain enrollment identity claims a device that is enrolled: only an identity minted for it may take it over. */
  'enrollment-exists',
  /** Not a device identity. */
  'not-a-device-identity',
] as const;
export type BindingRefusalReason = (typeof BINDING_REFUSALS)[number];

export type BindingDecision = { allow: 'fresh' | 'renewal' | 're-authenticate' } | { refuse: BindingRefusalReason; message: string };

/** The binding policy refused an Authenticate; nothing was changed. */
export class BindingRefused extends Error {
  constructor(
    readonly reason: BindingRefusalReason,
    message: string,
  ) {
    super(message);
    this.name = 'BindingRefused';
  }
}

export interface AuthenticateOutcome {
  /** A new enrollment, or one after CheckOut: it starts with an empty queue. */
  fresh: boolean;
  /** The identity this Authenticate renews, when the certificate is new for an enrolled device. */
  renewedFrom: string | null;
}

/**
 * Which command queue: an enrollment's device channel (`userId` null) or one of its user channels (`userId` is the
 * UserID, or the EnrollmentUserID of a User Enrollment). Kept as two fields, never joined into one string: a UDID may
 * contain any character, so `<UDID>:<UserID>` could name another enrollment's device channel.
 */
export interface ChannelKey {
  enrollmentId: string;
  userId: string | null;
}

/** The device channel of an enrollment. */
export function deviceChannel(enrollmentId: string): ChannelKey {
  return { enrollmentId, userId: null };
}

/** A user channel (macOS or Shared iPad user, User Enrollment user) of an enrolled device. */
export interface UserChannelInput {
  enrollmentId: string;
  /** UserID, or EnrollmentUserID of a User Enrollment: with `enrollmentId`, the channel's key. */
  userId: string;
  userShortName: string | null;
  pushToken: Buffer | null;
  pushMagic: string | null;
  now: Date;
}

/**
 * A queue entry's state. `expired` is never stored: it is how an entry still queued (or put off) reads once its
 * command's body was erased because the secrets in it expired undelivered.
 */
export type QueueStatus = 'queued' | 'not-now' | 'acknowledged' | 'error' | 'command-format-error' | 'expired';

export interface CommandRecord {
  uuid: string;
  requestType: string;
  /**
   * The command as stored: when `sealed`, the device's plist (CommandUUID and Command) sealed under the master key
   * with the UUID bound in (src/mdm/command-queue.ts); empty once erased.
   */
  body: Buffer;
  priority: number;
  createdBy: string;
  createdAt: Date;
  /** Whether `body` is sealed; false only for commands queued before bodies were sealed (schema 11). */
  sealed?: boolean;
  /** When the secrets in the body stop being usable (a renewal profile's challenge): undelivered, it is erased then. */
  secretsExpireAt?: Date | null;
  /** When the body was erased: the command was answered on every channel, or its secrets expired. */
  bodyErasedAt?: Date | null;
}

export interface QueueEntry {
  seq: number;
  channel: ChannelKey;
  commandUuid: string;
  requestType: string;
  priority: number;
  status: QueueStatus;
  /** The device's raw report for this command. */
  result: Buffer | null;
  updatedAt: Date;
}

/** A CSR certmdm made and holds the key for (the APNs push certificate's, until Apple's certificate is imported). */
export interface CertificateRequestRecord {
  id: string;
  purpose: 'push';
  subject: string;
  keyId: string;
  der: Buffer;
  createdAt: Date;
  fulfilledBy: string | null;
}

/** A stored user channel: what the last check-in said, and whether APNs has refused its token. */
export interface UserChannelRecord extends Omit<UserChannelInput, 'now'> {
  pushTokenInvalidAt: Date | null;
  lastSeenAt: Date;
}

/** The database itself: its schema and a few settings. */
export interface MetaStore {
  readonly backend: string;
  close(): Promise<void>;
  /** Highest applied migration; 0 for an empty database. */
  schemaVersion(): Promise<number>;
  /** Applies pending numbered migrations, each in its own transaction. */
  migrate(): Promise<void>;
  getMeta(key: string): Promise<string | undefined>;
  /** Sets a value only if the key is absent; returns whether it was set. */
  setMetaIfAbsent(key: string, value: string): Promise<boolean>;
  /** Sets a value, replacing any. */
  setMeta(key: string, value: string): Promise<void>;
  /**
   * Whether this process holds the named lease, taking it when free: the one instance that runs the lifecycle engine.
   * Held until the process closes the store or dies (PostgreSQL: a session advisory lock on a connection of its own,
   * released by the server when that connection ends). SQLite serves one process: always held.
   */
  holdLease(name: string): Promise<boolean>;
  /**
   * A counter that moves, in the same transaction, with every change to what a device identity is judged on: a
   * certificate's status, a binding, an enrollment's status or identities. Caches of those facts read it per
   * request and forget everything when it moved; it never moves back.
   */
  identityEpoch(): Promise<number>;
}

/** Keys and certificates: the inventory every lifecycle decision reads, and certificate requests awaiting a vendor. */
export interface InventoryStore {
  getSealedKey(id: string): Promise<SealedKeyRecord | undefined>;
  listSealedKeys(): Promise<SealedKeyRecord[]>;
  /** Inserts certificates with their keys and dependants, all or nothing. */
  insertCertificates(entries: NewCertificate[]): Promise<void>;
  /**
   * Inserts `replacement` and marks each of `supersedes` superseded by it, all or nothing. Fails without change if
   * any of them is no longer active (someone else replaced it first).
   */
  replaceCertificates(replacement: NewCertificate, supersedes: string[]): Promise<void>;
  getCertificate(id: string): Promise<CertificateRecord | undefined>;
  getCertificateByFingerprint(fingerprintSha256: string): Promise<CertificateRecord | undefined>;
  /** Soonest expiry first. */
  listCertificates(query?: CertificateQuery): Promise<CertificateRecord[]>;
  /** Changes status only if it is currently `from`; returns whether it changed. */
  setCertificateStatus(id: string, from: CertificateStatus, to: CertificateStatus): Promise<boolean>;
  addDependant(dependant: Dependant): Promise<void>;
  listDependants(certificateId: string): Promise<Dependant[]>;
  /** Certificates whose issuerId is `certificateId`. */
  listIssuedBy(certificateId: string): Promise<CertificateRecord[]>;
  insertCertificateRequest(request: CertificateRequestRecord, key: SealedKeyRecord): Promise<void>;
  listCertificateRequests(purpose: CertificateRequestRecord['purpose']): Promise<CertificateRequestRecord[]>;
  /** Stores an imported certificate (superseding `supersedes`) and marks the request it answers fulfilled, atomically. */
  importCertificate(entry: NewCertificate, options: { supersedes: string[]; fulfils?: string }): Promise<void>;
}

/** One-time SCEP challenges, enrollment links and the profiles made with them. */
export interface EnrollmentLinkStore {
  insertChallenge(challenge: ChallengeRecord): Promise<void>;
  getChallenge(id: string): Promise<ChallengeRecord | undefined>;
  /**
   * Issues under a one-time challenge: inserts the certificate and marks the challenge consumed by it, all or
   * nothing. Throws ConflictError, changing nothing, if the challenge is already consumed or expired at `now`.
   */
  insertCertificateConsumingChallenge(entry: NewCertificate, challengeId: string, now: Date): Promise<void>;
  /**
   * Stores a profile with everything made for it, all or nothing; the embedded certificates get the profile as a
   * dependant. Throws ConflictError, storing nothing, if the link it consumes is already used or expired.
   */
  insertProfile(entry: NewProfile): Promise<void>;
  getProfile(id: string): Promise<ProfileRecord | undefined>;
  /** Newest first. */
  listProfiles(query?: { kind?: ProfileRecord['kind']; enrollmentRef?: string }): Promise<ProfileRecord[]>;
  insertEnrollmentLink(link: EnrollmentLinkRecord): Promise<void>;
  getEnrollmentLink(id: string): Promise<EnrollmentLinkRecord | undefined>;
}

/** A device channel's TokenUpdate fields as stored (the UnlockToken sealed), and whether APNs refused the token. */
export type PushRegistration = Pick<EnrollmentRecord, 'topic' | 'pushToken' | 'pushMagic' | 'unlockToken' | 'pushTokenInvalidAt'>;

/** Enrollments and the certificate bindings that identify them. */
export interface EnrollmentStore {
  getEnrollment(id: string): Promise<EnrollmentRecord | undefined>;
  /** Only what a TokenUpdate writes: to tell a repeated one, which writes nothing, from a change. */
  getPushRegistration(id: string): Promise<PushRegistration | undefined>;
  listEnrollments(): Promise<EnrollmentRecord[]>;
  /** The enrollment a certificate is bound to; a certificate binds once and to one enrollment only. */
  getBinding(certificateId: string): Promise<string | undefined>;
  /**
   * An Authenticate, atomically: binds the certificate (ConflictError, changing nothing, if it is bound to another
   * enrollment), creates or refreshes the enrollment, makes the certificate its identity (keeping a renewed-away
   * one as previous), and empties the queue of a fresh enrollment.
   */
  authenticateEnrollment(input: AuthenticateInput): Promise<AuthenticateOutcome>;
  /**
   * Changes an enrollment's fields. With `presentedBy` (the certificate a device message came with), only while that
   * certificate is still the enrollment's current or previous identity: false, changing nothing, once another identity
   * took the enrollment (on any instance) after the message was checked.
   */
  updateEnrollment(
    id: string,
    patch: Partial<
      Pick<EnrollmentRecord, 'topic' | 'pushToken' | 'pushMagic' | 'unlockToken' | 'bootstrapToken' | 'lastSeenAt' | 'pushTokenInvalidAt'>
    >,
    presentedBy?: string,
  ): Promise<boolean>;
  /**
   * Last-seen times batched in memory, written at once: each enrollment's last_seen_at only moves forward (an older
   * time from a slower instance never overwrites a newer one), and, with `presentedBy`, only while that certificate is
   * still the enrollment's current or previous identity (as updateEnrollment's).
   */
  touchEnrollments(seen: ReadonlyArray<{ id: string; at: Date; presentedBy?: string }>): Promise<void>;
  /**
   * Records that a renewal profile was queued for the device (keeping the first start of a renewal in flight, and
   * counting the attempts); cleared when a renewed identity authenticates.
   */
  markRenewalStarted(id: string, at: Date, commandUuid: string): Promise<void>;
  /** The new identity was seen on a later message: the previous one is marked superseded by it. Returns it. */
  promoteIdentity(id: string): Promise<string | null>;
  /** With `presentedBy`, only while that certificate is still the enrollment's current identity (false otherwise). */
  checkOutEnrollment(id: string, now: Date, presentedBy?: string): Promise<boolean>;
  /** Seals, in one transaction, the escrowed tokens of enrollments stored before tokens were sealed; returns how many. */
  sealEnrollmentTokens(seal: (enrollmentId: string, kind: 'unlock-token' | 'bootstrap-token', token: Buffer) => Buffer): Promise<number>;
}

/** Push channels beyond the device one: user channels and their tokens. */
export interface PushStore {
  upsertUserChannel(channel: UserChannelInput): Promise<void>;
  getUserChannel(enrollmentId: string, userId: string): Promise<UserChannelRecord | undefined>;
  markUserChannelTokenInvalid(enrollmentId: string, userId: string, at: Date): Promise<void>;
}

/** Lifecycle deliveries: which profile reached which device, and the facts the planner reads. */
export interface DeliveryStore {
  /** Records that a profile was sent to a device by an InstallProfile command; its Acknowledged report marks it installed. */
  insertProfileDelivery(delivery: { commandUuid: string; enrollmentId: string; profileId: string; createdAt: Date }): Promise<void>;
  /** The newest delivery of a profile kind to a device that has not been acknowledged, if any. */
  pendingProfileDelivery(
    enrollmentId: string,
    kind: ProfileRecord['kind'],
  ): Promise<{ commandUuid: string; profileId: string; createdAt: Date } | undefined>;
  /**
   * Roots a device has installed: those of the profile that produced its current identity (its SCEP challenge or its
   * PKCS#12 identity) and of every profile delivery it acknowledged.
   */
  installedAnchors(enrollmentId: string, identityCertificateId: string | null): Promise<string[]>;
  /**
   * Every enrolled device as the lifecycle planner sees it, in one read: its identity's validity, the roots it has
   * installed (as `installedAnchors`), when it was last seen and when a renewal in flight started. Enrollment order.
   * With `renewalWindowOpenBy`, only the devices whose identity has entered its renewal window (its last `share` of
   * lifetime) by `at`: what the planner needs on a day without a root rollover, so a daily run reads a few devices,
   * not the fleet.
   */
  listEnrolledDevices(filter?: { renewalWindowOpenBy: { at: Date; share: number } }): Promise<EnrolledDevice[]>;
}

/** The command queue and its results. */
export interface CommandStore {
  /** Stores a command and queues it for each channel, all or nothing. */
  enqueueCommand(command: CommandRecord, channels: ChannelKey[]): Promise<void>;
  getCommand(uuid: string): Promise<CommandRecord | undefined>;
  /**
   * The next command for a channel: highest priority, then oldest. `reviveNotNow` (a new session: the device said
   * Idle) makes NotNow commands eligible again; within a session they are skipped.
   */
  nextCommand(
    channel: ChannelKey,
    options: { reviveNotNow: boolean; now: Date },
  ): Promise<(QueueEntry & { body: Buffer; sealed: boolean }) | undefined>;
  /**
   * Stores a device's report for a queued command; false if no such command is pending for the channel. Once the
   * command is answered (Acknowledged, Error, CommandFormatError) on every channel it was queued for, its body is
   * erased in the same transaction.
   */
  recordCommandResult(
    channel: ChannelKey,
    commandUuid: string,
    status: Exclude<QueueStatus, 'queued' | 'expired'>,
    result: Buffer,
    now: Date,
  ): Promise<boolean>;
  listQueue(channel: ChannelKey): Promise<QueueEntry[]>;
  /**
   * Seals, in one transaction, every body still stored in clear (queued before schema 11 and not erased) with
   * `seal(uuid, body)`; returns how many.
   */
  sealCommandBodies(seal: (uuid: string, body: Buffer) => Buffer): Promise<number>;
  /** Erases the bodies of commands whose secrets expired at `now` and were not erased yet; returns their UUIDs. */
  eraseExpiredCommandBodies(now: Date): Promise<string[]>;
  /** Erases these commands' bodies now (not yet erased ones); they are delivered to no one after. Returns those erased. */
  eraseCommandBodies(uuids: string[], now: Date): Promise<string[]>;
  /** Commands waiting across every channel: queued, and deferred by NotNow (the metrics' queue depth). */
  queueDepth(): Promise<{ queued: number; notNow: number }>;
}

/** Admin API tokens and the audit log. */
export interface AdminStore {
  insertApiToken(token: ApiTokenRecord): Promise<void>;
  getApiToken(id: string): Promise<ApiTokenRecord | undefined>;
  listApiTokens(): Promise<ApiTokenRecord[]>;
  touchApiToken(id: string, at: Date): Promise<void>;
  revokeApiToken(id: string, at: Date): Promise<boolean>;
  appendAudit(event: AuditEvent): Promise<number>;
  /** Newest first. */
  listAudit(query?: AuditQuery): Promise<StoredAuditEvent[]>;
}

/** The console's administrators and their sessions. */
export interface ConsoleStore {
  /** ConflictError when the name is taken. */
  insertAdminAccount(account: AdminAccountRecord): Promise<void>;
  getAdminAccount(name: string): Promise<AdminAccountRecord | undefined>;
  listAdminAccounts(): Promise<AdminAccountRecord[]>;
  /** A new password ends every session of the account, in the same transaction. False: no such account. */
  setAdminPassword(name: string, passwordHash: string, at: Date): Promise<boolean>;
  /** The account and its sessions. */
  deleteAdminAccount(name: string): Promise<boolean>;
  recordAdminLogin(name: string, at: Date): Promise<void>;
  insertConsoleSession(session: ConsoleSessionRecord): Promise<void>;
  getConsoleSession(idHash: Buffer): Promise<ConsoleSessionRecord | undefined>;
  touchConsoleSession(idHash: Buffer, at: Date): Promise<void>;
  deleteConsoleSession(idHash: Buffer): Promise<boolean>;
  /** Sessions past their absolute end or idle since before `idleSince`; how many were removed. */
  deleteStaleConsoleSessions(now: Date, idleSince: Date): Promise<number>;
}

/**
 * Everything certmdm stores, by concern. Each backend implements every part (and passes the part of the conformance
 * suite for it); services take the parts they use.
 */
export type Store = MetaStore &
  InventoryStore &
  EnrollmentLinkStore &
  EnrollmentStore &
  PushStore &
  DeliveryStore &
  CommandStore &
  AdminStore &
  ConsoleStore;

/** The parts, each implemented on its own: composeStore joins them into one Store. */
export interface StoreParts {
  meta: MetaStore;
  inventory: InventoryStore;
  enrollmentLinks: EnrollmentLinkStore;
  enrollments: EnrollmentStore;
  push: PushStore;
  deliveries: DeliveryStore;
  commands: CommandStore;
  admin: AdminStore;
  console: ConsoleStore;
}

/** A write that would break a uniqueness or state rule (already used, already exists); nothing was changed. */
export class ConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConflictError';
  }
}
