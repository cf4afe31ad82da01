import { SqliteConcern, SqliteDb, onlyGiven } from './connection.ts';
import { ms, certificateFromRow, certificateRequestFromRow, sealedKeyFromRow, type Row } from '../rows.ts';
import {
  ConflictError,
  type CertificateQuery,
  type CertificateRecord,
  type CertificateStatus,
  type CertificateRequestRecord,
  type Dependant,
  type NewCertificate,
  type SealedKeyRecord,
  type InventoryStore,
} from '../types.ts';

/** Inserts a certificate with its sealed key and dependants (inside the caller's transaction). */
export function insertCertificate(db: SqliteDb, entry: NewCertificate): void {
  const c = entry.certificate;
  if (entry.key) {
    db.sql('INSERT INTO sealed_keys (id, algorithm, sealed, created_at) VALUES (?, ?, ?, ?)').run(
      entry.key.id,
      entry.key.algorithm,
      entry.key.sealed,
      ms(entry.key.createdAt),
    );
  }
  db.sql(
    `INSERT INTO certificates (id, role, subject, issuer_id, serial_hex, fingerprint_sha256, not_before, not_after,
         status, key_id, der, created_at, superseded_by, serves_enrollment, renewal_of)
       VALUES (@id, @role, @subject, @issuerId, @serialHex, @fingerprintSha256, @notBefore, @notAfter,
         @status, @keyId, @der, @createdAt, @supersededBy, @servesEnrollment, @renewalOf)`,
  ).run({ ...c, notBefore: ms(c.notBefore), notAfter: ms(c.notAfter), createdAt: ms(c.createdAt) });
  for (const d of entry.dependants ?? []) {
    db.sql('INSERT OR IGNORE INTO certificate_dependants (certificate_id, kind, ref) VALUES (?, ?, ?)').run(c.id, d.kind, d.ref);
  }
}

export class SqliteInventory extends SqliteConcern implements InventoryStore {
  async getSealedKey(id: string): Promise<SealedKeyRecord | undefined> {
    const r = this.sql('SELECT * FROM sealed_keys WHERE id = ?').get(id) as Row | undefined;
    return r ? sealedKeyFromRow(r) : undefined;
  }

  async listSealedKeys(): Promise<SealedKeyRecord[]> {
    return (this.sql('SELECT * FROM sealed_keys ORDER BY created_at, id').all() as Row[]).map(sealedKeyFromRow);
  }

  async insertCertificates(entries: NewCertificate[]): Promise<void> {
    this.db.transaction(() =>
      entries.forEach((e) => {
        const renewalOf = e.certificate.renewalOf;
        if (renewalOf && this.sql('SELECT 1 FROM certificates WHERE renewal_of = ?').get(renewalOf))
          throw new ConflictError('the identity already has a renewal; one renewal per identity');
        insertCertificate(this.db, e);
      }),
    )();
  }

  async replaceCertificates(replacement: NewCertificate, supersedes: string[]): Promise<void> {
    this.db.transaction(() => {
      insertCertificate(this.db, replacement);
      for (const id of supersedes) {
        const changed = this.sql("UPDATE certificates SET status = 'superseded', superseded_by = ? WHERE id = ? AND status = 'active'").run(
          replacement.certificate.id,
          id,
        ).changes;
        if (changed !== 1) throw new ConflictError(`certificate ${id} is no longer active`);
      }
    })();
  }

  async getCertificate(id: string): Promise<CertificateRecord | undefined> {
    const r = this.sql('SELECT * FROM certificates WHERE id = ?').get(id) as Row | undefined;
    return r ? certificateFromRow(r) : undefined;
  }

  async getCertificateByFingerprint(fingerprintSha256: string): Promise<CertificateRecord | undefined> {
    const r = this.sql('SELECT * FROM certificates WHERE fingerprint_sha256 = ?').get(fingerprintSha256.toLowerCase()) as Row | undefined;
    return r ? certificateFromRow(r) : undefined;
  }

  async listCertificates(query: CertificateQuery = {}): Promise<CertificateRecord[]> {
    const { where, params } = onlyGiven({ role: query.role, status: query.status });
    const rows = this.sql(`SELECT * FROM certificates ${where} ORDER BY not_after, id`).all(params) as Row[];
    return rows.map(certificateFromRow);
  }

  async setCertificateStatus(id: string, from: CertificateStatus, to: CertificateStatus): Promise<boolean> {
    return this.sql('UPDATE certificates SET status = ? WHERE id = ? AND status = ?').run(to, id, from).changes === 1;
  }

  async addDependant(d: Dependant): Promise<void> {
    this.sql('INSERT OR IGNORE INTO certificate_dependants (certificate_id, kind, ref) VALUES (?, ?, ?)').run(
      d.certificateId,
      d.kind,
      d.ref,
    );
  }

  async listDependants(certificateId: string): Promise<Dependant[]> {
    return (this.sql('SELECT * FROM certificate_dependants WHERE certificate_id = ? ORDER BY kind, ref').all(certificateId) as Row[]).map(
      (r) => ({ certificateId: String(r.certificate_id), kind: String(r.kind), ref: String(r.ref) }),
    );
  }

  async listIssuedBy(certificateId: string): Promise<CertificateRecord[]> {
    return (this.sql('SELECT * FROM certificates WHERE issuer_id = ? ORDER BY not_after, id').all(certificateId) as Row[]).map(
      certificateFromRow,
    );
  }

  async insertCertificateRequest(request: CertificateRequestRecord, key: SealedKeyRecord): Promise<void> {
    this.db.transaction(() => {
      this.sql('INSERT INTO sealed_keys (id, algorithm, sealed, created_at) VALUES (?, ?, ?, ?)').run(
        key.id,
        key.algorithm,
        key.sealed,
        ms(key.createdAt),
      );
      this.sql(
        'INSERT INTO certificate_requests (id, purpose, subject, key_id, der, created_at, fulfilled_by) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ).run(request.id, request.purpose, request.subject, request.keyId, request.der, ms(request.createdAt), request.fulfilledBy);
    })();
  }

  async listCertificateRequests(purpose: CertificateRequestRecord['purpose']): Promise<CertificateRequestRecord[]> {
    return (
      this.sql('SELECT * FROM certificate_requests WHERE purpose = ? ORDER BY created_at DESC, rowid DESC').all(purpose) as Row[]
    ).map(certificateRequestFromRow);
  }

  async importCertificate(entry: NewCertificate, options: { supersedes: string[]; fulfils?: string }): Promise<void> {
    this.db.transaction(() => {
      insertCertificate(this.db, entry);
      for (const id of options.supersedes) {
        if (
          this.sql("UPDATE certificates SET status = 'superseded', superseded_by = ? WHERE id = ? AND status = 'active'").run(
            entry.certificate.id,
            id,
          ).changes !== 1
        ) {
          throw new ConflictError(`certificate ${id} is no longer active`);
        }
      }
      if (options.fulfils)
        this.sql('UPDATE certificate_requests SET fulfilled_by = ? WHERE id = ?').run(entry.certificate.id, options.fulfils);
    })();
  }
}
