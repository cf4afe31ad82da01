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
  {
    version: 11,
    name: 'sealed-command-bodies',
    // Command bodies are sealed from now on (a renewal profile holds a challenge or a private key). Bodies of commands
    // already answered everywhere are erased; those still pending stay as they are until answered.
    sql: `
      ALTER TABLE commands ADD COLUMN body_sealed INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE commands ADD COLUMN secrets_expire_at INTEGER;
      ALTER TABLE commands ADD COLUMN body_erased_at INTEGER;
      CREATE INDEX commands_by_secrets_expiry ON commands(secrets_expire_at) WHERE body_erased_at IS NULL;
      UPDATE commands SET body = zeroblob(0), body_erased_at = CAST(unixepoch('subsec') * 1000 AS INTEGER)
        WHERE NOT EXISTS (SELECT 1 FROM command_queue q WHERE q.command_uuid = commands.uuid AND q.status IN ('queued', 'not-now'));
      -- Escrowed UnlockToken and BootstrapToken are sealed too: rows from now on are born sealed, older ones are
      -- sealed when the app next opens (it holds the master key; SQL does not).
      ALTER TABLE enrollments ADD COLUMN tokens_sealed INTEGER NOT NULL DEFAULT 1;
      UPDATE enrollments SET tokens_sealed = 0 WHERE unlock_token IS NOT NULL OR bootstrap_token IS NOT NULL;
    `,
  },
  {
    version: 12,
    name: 'structural-channels',
    // Queues and user channels were keyed by '<enrollment>:<user>', which also names the device channel of an
    // enrollment called '<enrollment>:<user>'. They are keyed by (enrollment_id, user_id) now, user_id NULL for the
    // device channel. user_channels rows convert exactly (their enrollment_id is stored). A queue row converts when its
    // string has exactly one reading among the enrolled devices: the device channel of an enrollment with that id, or
    // the user channel <user> of an enrollment <prefix> for a ':' in it. A row with none or several is not guessed: it
    // moves to command_queue_unresolved, delivered to no one, and the audit log names it.
    sql: `
      CREATE TABLE user_channels_v12 (
        enrollment_id TEXT NOT NULL REFERENCES enrollments(id),
        user_id TEXT NOT NULL CHECK (length(user_id) > 0),
        user_short_name TEXT,
        push_token BLOB,
        push_magic TEXT,
        last_seen_at INTEGER NOT NULL,
        push_token_invalid_at INTEGER,
        PRIMARY KEY (enrollment_id, user_id)
      );
      INSERT INTO user_channels_v12 (enrollment_id, user_id, user_short_name, push_token, push_magic, last_seen_at, push_token_invalid_at)
        SELECT enrollment_id, substr(id, length(enrollment_id) + 2), user_short_name, push_token, push_magic, last_seen_at, push_token_invalid_at
        FROM user_channels WHERE length(id) > length(enrollment_id) + 1 AND substr(id, 1, length(enrollment_id) + 1) = enrollment_id || ':';
      DROP TABLE user_channels;
      ALTER TABLE user_channels_v12 RENAME TO user_channels;

      CREATE TEMP TABLE channel_readings (seq INTEGER NOT NULL, enrollment_id TEXT NOT NULL, user_id TEXT);
      INSERT INTO channel_readings SELECT q.seq, e.id, NULL FROM command_queue q JOIN enrollments e ON e.id = q.channel_id;
      INSERT INTO channel_readings
        WITH RECURSIVE colons(seq, channel_id, pos) AS (
          SELECT seq, channel_id, instr(channel_id, ':') FROM command_queue WHERE instr(channel_id, ':') > 0
          UNION ALL
          SELECT seq, channel_id, pos + instr(substr(channel_id, pos + 1), ':') FROM colons WHERE instr(substr(channel_id, pos + 1), ':') > 0
        )
        SELECT c.seq, e.id, substr(c.channel_id, c.pos + 1) FROM colons c
          JOIN enrollments e ON e.id = substr(c.channel_id, 1, c.pos - 1)
          WHERE c.pos < length(c.channel_id);
      CREATE TEMP TABLE channel_resolved AS
        SELECT seq, min(enrollment_id) AS enrollment_id, min(user_id) AS user_id FROM channel_readings GROUP BY seq HAVING count(*) = 1;

      CREATE TABLE command_queue_v12 (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        enrollment_id TEXT NOT NULL REFERENCES enrollments(id),
        user_id TEXT CHECK (user_id IS NULL OR length(user_id) > 0),
        command_uuid TEXT NOT NULL REFERENCES commands(uuid),
        priority INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('queued', 'not-now', 'acknowledged', 'error', 'command-format-error')),
        result BLOB,
        updated_at INTEGER NOT NULL
      );
      INSERT INTO command_queue_v12 (seq, enrollment_id, user_id, command_uuid, priority, status, result, updated_at)
        SELECT q.seq, r.enrollment_id, r.user_id, q.command_uuid, q.priority, q.status, q.result, q.updated_at
        FROM command_queue q JOIN channel_resolved r ON r.seq = q.seq;
      CREATE TABLE command_queue_unresolved AS
        SELECT q.*, (SELECT count(*) FROM channel_readings r WHERE r.seq = q.seq) AS readings
        FROM command_queue q WHERE q.seq NOT IN (SELECT seq FROM channel_resolved);
      INSERT INTO audit_log (at, actor, action, target, outcome, reason, detail)
        SELECT CAST(strftime('%s', 'now') AS INTEGER) * 1000, 'system', 'migration.channel-unresolved', channel_id, 'denied',
          CASE readings WHEN 0 THEN 'the queue names no enrolled device or user channel'
            ELSE 'the queue could name several channels; kept in command_queue_unresolved, delivered to none' END,
          json_object('command', command_uuid, 'status', status, 'readings', readings)
        FROM command_queue_unresolved;
      DROP TABLE command_queue;
      ALTER TABLE command_queue_v12 RENAME TO command_queue;
      DROP TABLE temp.channel_readings;
      DROP TABLE temp.channel_resolved;
      CREATE UNIQUE INDEX command_queue_once_device ON command_queue(enrollment_id, command_uuid) WHERE user_id IS NULL;
      CREATE UNIQUE INDEX command_queue_once_user ON command_queue(enrollment_id, user_id, command_uuid) WHERE user_id IS NOT NULL;
      CREATE INDEX command_queue_next ON command_queue(enrollment_id, user_id, status, priority DESC, seq);
    `,
  },
  {
    version: 13,
    name: 'identity-epoch',
    // One counter every change to what an identity is judged on moves, in the same transaction as the change: a
    // certificate's status, a binding, an enrollment's status or identities. Instances that remember identities
    // between requests read it at each request and forget all they remembered when it moved (mdm/identity-cache.ts).
    sql: `
      CREATE TABLE identity_epoch (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
      INSERT INTO identity_epoch (id, value) VALUES (1, 1);
      CREATE TRIGGER identity_epoch_certificate_update AFTER UPDATE ON certificates
        BEGIN UPDATE identity_epoch SET value = value + 1 WHERE id = 1; END;
      CREATE TRIGGER identity_epoch_certificate_delete AFTER DELETE ON certificates
        BEGIN UPDATE identity_epoch SET value = value + 1 WHERE id = 1; END;
      CREATE TRIGGER identity_epoch_binding_insert AFTER INSERT ON certificate_bindings
        BEGIN UPDATE identity_epoch SET value = value + 1 WHERE id = 1; END;
      CREATE TRIGGER identity_epoch_binding_update AFTER UPDATE ON certificate_bindings
        BEGIN UPDATE identity_epoch SET value = value + 1 WHERE id = 1; END;
      CREATE TRIGGER identity_epoch_binding_delete AFTER DELETE ON certificate_bindings
        BEGIN UPDATE identity_epoch SET value = value + 1 WHERE id = 1; END;
      CREATE TRIGGER identity_epoch_enrollment_insert AFTER INSERT ON enrollments
        BEGIN UPDATE identity_epoch SET value = value + 1 WHERE id = 1; END;
      CREATE TRIGGER identity_epoch_enrollment_update AFTER UPDATE ON enrollments
        WHEN OLD.status IS NOT NEW.status OR OLD.identity_certificate_id IS NOT NEW.identity_certificate_id
          OR OLD.previous_identity_certificate_id IS NOT NEW.previous_identity_certificate_id OR OLD.id IS NOT NEW.id
        BEGIN UPDATE identity_epoch SET value = value + 1 WHERE id = 1; END;
      CREATE TRIGGER identity_epoch_enrollment_delete AFTER DELETE ON enrollments
        BEGIN UPDATE identity_epoch SET value = value + 1 WHERE id = 1; END;
    `,
  },
  {
    version: 14,
    name: 'console',
    // The console's administrators and sessions (only a hash of each session's secret), and each enrollment's
    // check-in rhythm for the forecast: sessions, typical and longest gap between them.
    sql: `
      ALTER TABLE enrollments ADD COLUMN checkin_sessions INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE enrollments ADD COLUMN checkin_gap_ms INTEGER;
      ALTER TABLE enrollments ADD COLUMN checkin_gap_max_ms INTEGER;
      CREATE TABLE admin_accounts (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        password_changed_at INTEGER NOT NULL,
        last_login_at INTEGER
      );
      CREATE TABLE console_sessions (
        id_hash BLOB PRIMARY KEY,
        account TEXT NOT NULL REFERENCES admin_accounts(name),
        created_at INTEGER NOT NULL,
        last_used_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      );
      CREATE INDEX console_sessions_by_account ON console_sessions(account);
      CREATE INDEX audit_log_by_target ON audit_log(target, id);
    `,
  },
];
