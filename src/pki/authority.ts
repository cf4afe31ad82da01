import { randomUUID, type KeyObject } from 'node:crypto';
import { addDays, type Clock } from '../clock.ts';
import type { CertificateRecord, CertificateRole, Dependant, NewCertificate, Store } from '../store/types.ts';
import { buildCertificate, readCertificate, type CertificateTemplate } from './certificate.ts';
import type { Keyring } from './keyring.ts';

/** Certificates are backdated a little so a device whose clock runs slow still accepts a fresh one. */
export const BACKDATE_MS = 5 * 60_000;

export function validityFrom(now: Date, days: number, cap?: Date): { notBefore: Date; notAfter: Date } {
  const notBefore = new Date(Math.floor((now.getTime() - BACKDATE_MS) / 1000) * 1000);
  let notAfter = addDays(notBefore, days);
  // A certificate never outlives its issuer: a chain is only as valid as its shortest link.
  if (cap && notAfter > cap) notAfter = cap;
  return { notBefore, notAfter };
}

/** The inventory row for a certificate, with every fact read back from the DER. */
export function inventoryRecord(
  der: Buffer,
  role: CertificateRole,
  issuerId: string | null,
  keyId: string | null,
  now: Date,
): CertificateRecord {
  const facts = readCertificate(der);
  return {
    id: `crt_${randomUUID()}`,
    role,
    subject: facts.subject,
    issuerId,
    serialHex: facts.serialHex,
    fingerprintSha256: facts.fingerprintSha256,
    notBefore: facts.notBefore,
    notAfter: facts.notAfter,
    status: 'active',
    keyId,
    der,
    createdAt: now,
    supersededBy: null,
    servesEnrollment: null,
    renewalOf: null,
  };
}

export interface IssueRequest {
  role: CertificateRole;
  template: Omit<CertificateTemplate, 'notBefore' | 'notAfter'>;
  validityDays: number;
  /** Sealed into the store with the certificate when certmdm holds the subject's key. */
  privateKey?: KeyObject;
  dependants?: Omit<Dependant, 'certificateId'>[];
  /** Active certificates this one replaces; they are marked superseded in the same transaction. */
  supersedes?: string[];
  /** A device identity's enrollment scope (see CertificateRecord.servesEnrollment). */
  servesEnrollment?: string | null;
  /** The identity a SCEP RenewalReq renews. */
  renewalOf?: string | null;
}

/**
 * The issuing CA: an intermediate under a root. Mechanism only; what to issue and when is decided by callers.
 */
export class CertificateAuthority {
  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
    private readonly clock: Clock,
    readonly root: CertificateRecord,
    readonly intermediate: CertificateRecord,
    private readonly intermediateKey: KeyObject,
  ) {}

  /** Chain above an end-entity certificate, nearest first. */
  chain(): Buffer[] {
    return [this.intermediate.der, this.root.der];
  }

  /** Builds, signs and records a certificate without storing it, so callers can batch it into a transaction. */
  prepare(request: IssueRequest): NewCertificate {
    const now = this.clock();
    const der = buildCertificate(
      { ...request.template, ...validityFrom(now, request.validityDays, this.intermediate.notAfter) },
      { certificate: this.intermediate.der, privateKey: this.intermediateKey },
    );
    const key = request.privateKey ? this.keyring.seal(request.privateKey) : undefined;
    const certificate = inventoryRecord(der, request.role, this.intermediate.id, key?.id ?? null, now);
    return {
      certificate: { ...certificate, servesEnrollment: request.servesEnrollment ?? null, renewalOf: request.renewalOf ?? null },
      key,
      dependants: request.dependants,
    };
  }

  async issue(request: IssueRequest): Promise<CertificateRecord> {
    const entry = this.prepare(request);
    if (request.supersedes?.length) await this.store.replaceCertificates(entry, request.supersedes);
    else await this.store.insertCertificates([entry]);
    return entry.certificate;
  }
}
