import { ms, certificateFromRow, certificateRequestFromRow, sealedKeyFromRow } from '../rows.ts';
import {
  ConflictError,
  type CertificateQuery,
  type CertificateRecord,
  type CertificateRequestRecord,
  type CertificateStatus,
  type Dependant,
  type InventoryStore,
  type NewCertificate,
  type SealedKeyRecord,
} from '../types.ts';
import { PgConcern, sqlState, UNIQUE_VIOLATION, type Sql } from './connection.ts';

/** Inserts a certificate with its sealed key and dependants (inside the caller's transaction). */
export async function insertCertificate(sql: Sql, entry: NewCertificate): Promise<void> {
  const c = entry.certificate;
  if (entry.key) {
    await sql.run('INSERT INTO sealed_keys (id, algorithm, sealed, created_at) VALUES ($1, $2, $3, $4)', [
      entry.key.id,
      entry.key.algorithm,
      entry.key.sealed,
      ms(entry.key.createdAt),
    ]);
  }
  await sql.run(
    `INSERT INTO certificates (id, role, subject, issuer_id, serial_hex, fingerprint_sha256, not_before, not_after,
         status, key_id, der, created_at, superseded_by, serves_enrollment, renewal_of)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
    [
      c.id,
      c.role,
      c.subject,
      c.issuerId,
      c.serialHex,
      c.fingerprintSha256,
      ms(c.notBefore),
      ms(c.notAfter),
      c.status,
      c.keyId,
      c.der,
      ms(c.createdAt),
      c.supersededBy,
      c.servesEnrollment,
      c.renewalOf,
    ],
  );
  for (const d of entry.dependants ?? []) {
    await sql.run('INSERT INTO certificate_dependants (certificate_id, kind, ref) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [
      c.id,
      d.kind,
      d.ref,
    ]);
  }
}

/** Marks each of `ids` superseded by `by`; ConflictError (the transaction rolls back) if one is no longer active. */
export async function supersedeActive(sql: Sql, ids: string[], by: string): Promise<void> {
  for (const id of ids) {
    const changed = await sql.run("UPDATE certificates SET status = 'superseded', superseded_by = $1 WHERE id = $2 AND status = 'active'", [
      by,
      id,
    ]);
    if (changed !== 1) throw new ConflictError(`certificate ${id} is no longer active`);
  }
}

export class PgInventory extends PgConcern implements InventoryStore {
  async getSealedKey(id: string): Promise<SealedKeyRecord | undefined> {
    const r = await this.sql.one('SELECT * FROM sealed_keys WHERE id = $1', [id]);
    return r ? sealedKeyFromRow(r) : undefined;
  }

  async listSealedKeys(): Promise<SealedKeyRecord[]> {
    return (await this.sql.rows('SELECT * FROM sealed_keys ORDER BY created_at, id')).map(sealedKeyFromRow);
  }

  async insertCertificates(entries: NewCertificate[]): Promise<void> {
    try {
      await this.db.transaction(async (sql) => {
        for (const e of entries) await insertCertificate(sql, e);
      });
    } catch (err) {
      // One renewal per identity: the unique index on renewal_of decides between two at once.
      if (sqlState(err) === UNIQUE_VIOLATION && String((err as { constraint?: string }).constraint) === 'certificates_one_renewal')
        throw new ConflictError('the identity already has a renewal; one renewal per identity');
      throw err;
    }
  }

  async replaceCertificates(replacement: NewCertificate, supersedes: string[]): Promise<void> {
    await this.db.transaction(async (sql) => {
      await insertCertificate(sql, replacement);
      await supersedeActive(sql, supersedes, replacement.certificate.id);
    });
  }

  async getCertificate(id: string): Promise<CertificateRecord | undefined> {
    const r = await this.sql.one('SELECT * FROM certificates WHERE id = $1', [id]);
    return r ? certificateFromRow(r) : undefined;
  }

  async getCertificateByFingerprint(fingerprintSha256: string): Promise<CertificateRecord | undefined> {
    const r = await this.sql.one('SELECT * FROM certificates WHERE fingerprint_sha256 = $1', [fingerprintSha256.toLowerCase()]);
    return r ? certificateFromRow(r) : undefined;
  }

  async listCertificates(query: CertificateQuery = {}): Promise<CertificateRecord[]> {
    const given = Object.entries({ role: query.role, status: query.status }).filter(([, v]) => v !== undefined);
    const where = given.length ? `WHERE ${given.map(([column], i) => `${column} = $${i + 1}`).join(' AND ')}` : '';
    return (
      await this.sql.rows(
        `SELECT * FROM certificates ${where} ORDER BY not_after, id`,
        given.map(([, v]) => v),
      )
    ).map(certificateFromRow);
  }

  async setCertificateStatus(id: string, from: CertificateStatus, to: CertificateStatus): Promise<boolean> {
    return (await this.sql.run('UPDATE certificates SET status = $1 WHERE id = $2 AND status = $3', [to, id, from])) === 1;
  }

  async addDependant(d: Dependant): Promise<void> {
    await this.sql.run('INSERT INTO certificate_dependants (certificate_id, kind, ref) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [
      d.certificateId,
      d.kind,
      d.ref,
    ]);
  }

  async listDependants(certificateId: string): Promise<Dependant[]> {
    return (await this.sql.rows('SELECT * FROM certificate_dependants WHERE certificate_id = $1 ORDER BY kind, ref', [certificateId])).map(
      (r) => ({
        certificateId: String(r.certificate_id),
        kind: String(r.kind),
        ref: String(r.ref),
      }),
    );
  }

  async listIssuedBy(certificateId: string): Promise<CertificateRecord[]> {
    return (await this.sql.rows('SELECT * FROM certificates WHERE issuer_id = $1 ORDER BY not_after, id', [certificateId])).map(
      certificateFromRow,
    );
  }

  async insertCertificateRequest(request: CertificateRequestRecord, key: SealedKeyRecord): Promise<void> {
    await this.db.transaction(async (sql) => {
      await sql.run('INSERT INTO sealed_keys (id, algorithm, sealed, created_at) VALUES ($1, $2, $3, $4)', [
        key.id,
        key.algorithm,
        key.sealed,
        ms(key.createdAt),
      ]);
      await sql.run(
        'INSERT INTO certificate_requests (id, purpose, subject, key_id, der, created_at, fulfilled_by) VALUES ($1, $2, $3, $4, $5, $6, $7)',
        [request.id, request.purpose, request.subject, request.keyId, request.der, ms(request.createdAt), request.fulfilledBy],
      );
    });
  }

  async listCertificateRequests(purpose: CertificateRequestRecord['purpose']): Promise<CertificateRequestRecord[]> {
    return (await this.sql.rows('SELECT * FROM certificate_requests WHERE purpose = $1 ORDER BY created_at DESC, seq DESC', [purpose])).map(
      certificateRequestFromRow,
    );
  }

  async importCertificate(entry: NewCertificate, options: { supersedes: string[]; fulfils?: string }): Promise<void> {
    await this.db.transaction(async (sql) => {
      await insertCertificate(sql, entry);
      await supersedeActive(sql, options.supersedes, entry.certificate.id);
      if (options.fulfils)
        await sql.run('UPDATE certificate_requests SET fulfilled_by = $1 WHERE id = $2', [entry.certificate.id, options.fulfils]);
    });
  }
}
