import { DAY_MS } from '../clock.ts';
import type { PendingPushRequest } from '../push/pending.ts';
import type { CertificateRecord, CertificateStatus, Store } from '../store/types.ts';
import { toPem } from './certificate.ts';

export interface InventoryEntry {
  id: string;
  role: CertificateRecord['role'];
  subject: string;
  issuerId: string | null;
  serial: string;
  fingerprintSha256: string;
  notBefore: string;
  notAfter: string;
  daysLeft: number;
  /** The stored status, except that an active certificate past notAfter reads as expired. */
  status: CertificateStatus;
  hasKey: boolean;
  supersededBy: string | null;
  dependants: { kind: string; ref: string }[];
  pem?: string;
}

/**
 * A CSR whose certificate is not issued yet (the push certificate, until Apple signs it and it is imported): listed
 * with the inventory because its key is already held, and the certificate to come depends on it.
 */
export interface PendingRequestEntry {
  id: string;
  role: 'push';
  status: 'pending';
  subject: string;
  awaiting: string;
  createdAt: string;
  keyId: string;
  keySealed: boolean;
}

export function pendingEntry(p: PendingPushRequest): PendingRequestEntry {
  return {
    id: p.id,
    role: 'push',
    status: 'pending',
    subject: p.subject,
    awaiting: "CSR awaiting Apple's signature",
    createdAt: p.createdAt.toISOString(),
    keyId: p.keyId,
    keySealed: p.keySealed,
  };
}

/** A subject's CN (the name an administrator knows a certificate by), or the whole subject without one. */
export const commonName = (subject: string): string => /(?:^|,\s*)CN\s*=\s*([^,]+)/.exec(subject)?.[1]?.trim() ?? subject;

export function effectiveStatus(record: CertificateRecord, now: Date): CertificateStatus {
  return record.status === 'active' && record.notAfter <= now ? 'expired' : record.status;
}

/** The inventory as an administrator reads it: soonest expiry first, each with what depends on it. */
export async function listInventory(store: Store, now: Date, options: { pem?: boolean } = {}): Promise<InventoryEntry[]> {
  const records = await store.listCertificates();
  return Promise.all(
    records.map(async (r) => {
      const issued = await store.listIssuedBy(r.id);
      const others = await store.listDependants(r.id);
      return {
        id: r.id,
        role: r.role,
        subject: r.subject,
        issuerId: r.issuerId,
        serial: r.serialHex,
        fingerprintSha256: r.fingerprintSha256,
        notBefore: r.notBefore.toISOString(),
        notAfter: r.notAfter.toISOString(),
        daysLeft: Math.floor((r.notAfter.getTime() - now.getTime()) / DAY_MS),
        status: effectiveStatus(r, now),
        hasKey: r.keyId !== null,
        supersededBy: r.supersededBy,
        dependants: [
          ...issued.map((c) => ({ kind: `certificate:${c.role}`, ref: c.id })),
          ...others.map((d) => ({ kind: d.kind, ref: d.ref })),
        ],
        ...(options.pem ? { pem: toPem(r.der) } : {}),
      };
    }),
  );
}

export function formatInventoryTable(entries: InventoryEntry[], pending: PendingRequestEntry[] = []): string {
  const rows = entries.map((e) => [
    e.role,
    e.status,
    e.notAfter.slice(0, 10),
    String(e.daysLeft),
    e.fingerprintSha256.slice(0, 16),
    String(e.dependants.length),
    e.subject,
  ]);
  // Pending requests last: they expire never, and no certificate exists yet.
  for (const p of pending)
    rows.push([
      p.role,
      p.status,
      '-',
      '-',
      '-',
      '-',
      `${p.subject} (${p.awaiting}; created ${p.createdAt.slice(0, 10)}, key ${p.keyId}${p.keySealed ? ' sealed' : ' MISSING'})`,
    ]);
  const header = ['ROLE', 'STATUS', 'NOT AFTER', 'DAYS', 'SHA-256', 'DEPENDANTS', 'SUBJECT'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows]
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
