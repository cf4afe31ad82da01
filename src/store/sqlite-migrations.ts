/** Numbered SQLite migrations. Append only: a released migration is never edited. */
export const SQLITE_MIGRATIONS: ReadonlyArray<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: 'foundation',
    sql: `
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE sealed_keys (
        id TEXT PRIMARY KEY,
        algorithm TEXT NOT NULL,
        sealed BLOB NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE TABLE certificates (
        id TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        subject TEXT NOT NULL,
        issuer_id TEXT REFERENCES certificates(id),
        serial_hex TEXT NOT NULL,
        fingerprint_sha256 TEXT NOT NULL UNIQUE,
        not_before INTEGER NOT NULL,
        not_after INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'superseded', 'revoked', 'expired')),
        key_id TEXT REFERENCES sealed_keys(id),
        der BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        superseded_by TEXT REFERENCES certificates(id),
        UNIQUE (issuer_id, serial_hex)
      );
      CREATE INDEX certificates_by_expiry ON certificates(not_after);
      CREATE INDEX certificates_by_role ON certificates(role, status);
      CREATE TABLE certificate_dependants (
        certificate_id TEXT NOT NULL REFERENCES certificates(id),
        kind TEXT NOT NULL,
        ref TEXT NOT NULL,
        PRIMARY KEY (certificate_id, kind, ref)
      );
      CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        secret_hash BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER,
        revoked_at INTEGER
      );
      CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        outcome TEXT NOT NULL,
        reason TEXT,
        detail TEXT
      );
      CREATE INDEX audit_by_action ON audit_log(action, id);
    `,
  },

  {
    version: 2,
    name: 'scep-challenges',
    sql: `
      CREATE TABLE scep_challenges (
        id TEXT PRIMARY KEY,
        secret_hash BLOB NOT NULL,
        purpose TEXT NOT NULL,
        enrollment_ref TEXT,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        consumed_at INTEGER,
        certificate_id TEXT REFERENCES certificates(id)
      );
      CREATE INDEX scep_challenges_by_expiry ON scep_challenges(expires_at);
    `,
  },
  {
    version: 3,
    name: 'profiles',
    sql: `
      CREATE TABLE profiles (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('enrollment', 'trust')),
        payload_identifier TEXT NOT NULL,
        payload_uuid TEXT NOT NULL UNIQUE,
        enrollment_ref TEXT,
        identity_kind TEXT,
        challenge_id TEXT REFERENCES scep_challenges(id),
        signer_certificate_id TEXT REFERENCES certificates(id),
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        effective_expiry INTEGER NOT NULL
      );
      CREATE INDEX profiles_by_enrollment ON profiles(enrollment_ref, created_at);
      CREATE TABLE profile_certificates (
        profile_id TEXT NOT NULL REFERENCES profiles(id),
        certificate_id TEXT NOT NULL REFERENCES certificates(id),
        role TEXT NOT NULL,
        PRIMARY KEY (profile_id, certificate_id)
      );
      CREATE TABLE enrollment_links (
        id TEXT PRIMARY KEY,
        secret_hash BLOB NOT NULL,
        identity_kind TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER,
        profile_id TEXT REFERENCES profiles(id)
      );
    `,
  },
  {
    version: 4,
    name: 'mdm',
    sql: `
      CREATE TABLE enrollments (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('device', 'user-enrollment')),
        status TEXT NOT NULL CHECK (status IN ('enrolled', 'checked-out')),
        identity_certificate_id TEXT REFERENCES certificates(id),
        previous_identity_certificate_id TEXT REFERENCES certificates(id),
        topic TEXT,
        push_token BLOB,
        push_magic TEXT,
        unlock_token BLOB,
        bootstrap_token BLOB,
        info TEXT NOT NULL DEFAULT '{}',
        enrolled_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        checked_out_at INTEGER
      );
      CREATE TABLE certificate_bindings (
        certificate_id TEXT PRIMARY KEY REFERENCES certificates(id),
        enrollment_id TEXT NOT NULL REFERENCES enrollments(id),
        bound_at INTEGER NOT NULL
      );
      CREATE TABLE user_channels (
        id TEXT PRIMARY KEY,
        enrollment_id TEXT NOT NULL REFERENCES enrollments(id),
        user_id TEXT,
        user_short_name TEXT,
        push_token BLOB,
        push_magic TEXT,
        last_seen_at INTEGER NOT NULL
      );
      CREATE TABLE commands (
        uuid TEXT PRIMARY KEY,
        request_type TEXT NOT NULL,
        body BLOB NOT NULL,
        priority INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE TABLE command_queue (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        channel_id TEXT NOT NULL,
        command_uuid TEXT NOT NULL REFERENCES commands(uuid),
        priority INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('queued', 'not-now', 'acknowledged', 'error', 'command-format-error')),
        result BLOB,
        updated_at INTEGER NOT NULL,
        UNIQUE (channel_id, command_uuid)
      );
      CREATE INDEX command_queue_next ON command_queue(channel_id, status, priority DESC, seq);
    `,
  },
  {
    version: 5,
    name: 'push',
    sql: `
      CREATE TABLE certificate_requests (
        id TEXT PRIMARY KEY,
        purpose TEXT NOT NULL,
        subject TEXT NOT NULL,
        key_id TEXT NOT NULL REFERENCES sealed_keys(id),
        der BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        fulfilled_by TEXT REFERENCES certificates(id)
      );
      ALTER TABLE enrollments ADD COLUMN push_token_invalid_at INTEGER;
      ALTER TABLE user_channels ADD COLUMN push_token_invalid_at INTEGER;
    `,
  },
  {
    version: 6,
    name: 'lifecycle-renewals',
    sql: `
      ALTER TABLE enrollments ADD COLUMN renewal_started_at INTEGER;
      ALTER TABLE enrollments ADD COLUMN renewal_command_uuid TEXT;
    `,
  },
  {
    version: 7,
    name: 'profile-deliveries',
    sql: `
      CREATE TABLE profile_deliveries (
        command_uuid TEXT NOT NULL REFERENCES commands(uuid),
        enrollment_id TEXT NOT NULL REFERENCES enrollments(id),
        profile_id TEXT NOT NULL REFERENCES profiles(id),
        created_at INTEGER NOT NULL,
        acknowledged_at INTEGER,
        PRIMARY KEY (command_uuid, enrollment_id)
      );
    `,
  },
  {
    version: 8,
    name: 'lookup-indexes',
    // The joins behind installed anchors and renewals ran as full scans; at fleet scale (hundreds of thousands of
    // profiles and challenges) that made every lifecycle run and every Acknowledged of a profile slow.
    sql: `
      CREATE INDEX scep_challenges_by_certificate ON scep_challenges(certificate_id);
      CREATE INDEX profiles_by_challenge ON profiles(challenge_id);
      CREATE INDEX profile_certificates_by_certificate ON profile_certificates(certificate_id, role);
      CREATE INDEX profile_deliveries_by_enrollment ON profile_deliveries(enrollment_id, acknowledged_at);
      CREATE INDEX enrollments_by_status ON enrollments(status);
    `,
  },
  {
    version: 9,
    name: 'renewal-attempts',
    sql: `ALTER TABLE enrollments ADD COLUMN renewal_attempts INTEGER NOT NULL DEFAULT 0;`,
  },
  {
    version: 10,
    name: 'identity-scope',
    sql: `
      -- Every device identity knows at issuance which enrollment it may serve (NULL: a new enrollment only) and,
      -- for a SCEP RenewalReq, which identity it renews: one renewal per identity.
      ALTER TABLE certificates ADD COLUMN serves_enrollment TEXT;
      ALTER TABLE certificates ADD COLUMN renewal_of TEXT REFERENCES certificates(id);
      CREATE UNIQUE INDEX certificates_one_renewal ON certificates(renewal_of) WHERE renewal_of IS NOT NULL;
      CREATE INDEX certificates_by_enrollment ON certificates(serves_enrollment) WHERE serves_enrollment IS NOT NULL;
      UPDATE certificates SET serves_enrollment =
        (SELECT enrollment_id FROM certificate_bindings b WHERE b.certificate_id = certificates.id)
        WHERE role = 'device-identity';
      ALTER TABLE scep_challenges ADD COLUMN enrollment_id TEXT;
      ALTER TABLE enrollment_links ADD COLUMN enrollment_id TEXT;
    `,
  },
];
