import { effectiveStatus } from '../../pki/inventory.ts';
import { CERTIFICATE_ROLES, CERTIFICATE_STATUSES, type CertificateRecord } from '../../store/types.ts';
import { commonName, daysLeft, type ConsoleDeps } from '../facts.ts';
import { day, html, table, type Html } from '../html.ts';

export interface CertificateFilter {
  role?: string;
  status?: string;
  /** Substring of the subject, serial or SHA-256 fingerprint. */
  q?: string;
  /** Only certificates expiring within this many days. */
  expiringDays?: number;
}

export function certificateFilter(query: Record<string, string | undefined>): CertificateFilter {
  const role = CERTIFICATE_ROLES.find((r) => r === query.role);
  const status = CERTIFICATE_STATUSES.find((s) => s === query.status);
  const days = Number(query.expiring);
  return {
    role,
    status,
    q: query.q?.trim().slice(0, 200) || undefined,
    expiringDays: query.expiring && Number.isInteger(days) && days > 0 && days <= 36_500 ? days : undefined,
  };
}

/** The inventory filtered; the status is the effective one (an active certificate past notAfter reads expired). */
export async function filteredCertificates(deps: ConsoleDeps, now: Date, f: CertificateFilter): Promise<CertificateRecord[]> {
  const needle = f.q?.toLowerCase();
  return (await deps.app.store.listCertificates(f.role ? { role: f.role as CertificateRecord['role'] } : {})).filter(
    (c) =>
      (!f.status || effectiveStatus(c, now) === f.status) &&
      (!needle || [c.subject, c.serialHex, c.fingerprintSha256].some((v) => v.toLowerCase().includes(needle))) &&
      (f.expiringDays === undefined || daysLeft(c.notAfter, now) <= f.expiringDays),
  );
}

const query = (f: CertificateFilter) =>
  new URLSearchParams(
    Object.entries({ role: f.role, status: f.status, q: f.q, expiring: f.expiringDays?.toString() }).filter((e): e is [string, string] =>
      Boolean(e[1]),
    ),
  ).toString();

export async function certificatesPage(deps: ConsoleDeps, now: Date, f: CertificateFilter): Promise<Html> {
  const list = await filteredCertificates(deps, now, f);
  const shown = list.slice(0, 1000);
  const option = (value: string, current: string | undefined) =>
    html`<option value="${value}" ${value === (current ?? '') ? html` selected` : ''}>${value || 'any'}</option>`;
  return html`<form method="get" action="/console/certificates" class="filters">
      <label
        >Role
        <select name="role">
          ${['', ...CERTIFICATE_ROLES].map((r) => option(r, f.role))}
        </select></label
      >
      <label
        >Status
        <select name="status">
          ${['', ...CERTIFICATE_STATUSES].map((s) => option(s, f.status))}
        </select></label
      >
      <label>Expiring within (days) <input type="number" name="expiring" min="1" value="${f.expiringDays ?? ''}" /></label>
      <label>Subject, serial or fingerprint <input type="search" name="q" value="${f.q ?? ''}" /></label>
      <button type="submit">Filter</button>
      <a href="/console/certificates.csv?${query(f)}" download>Export CSV</a>
    </form>
    <p class="muted">
      ${list.length} certificate(s)${list.length > shown.length ? `; the first ${shown.length} shown (the CSV has all)` : ''}.
    </p>
    ${table(
      ['Role', 'Subject', 'Serial', 'Not after', 'Days left', 'Status'],
      shown.map(
        (c) =>
          html`<tr class="certificate" data-role="${c.role}" data-status="${effectiveStatus(c, now)}">
            <td>${c.role}</td>
            <td><a href="/console/certificates/${c.id}">${c.subject}</a></td>
            <td class="mono">${c.serialHex}</td>
            <td>${day(c.notAfter)}</td>
            <td>${daysLeft(c.notAfter, now)}</td>
            <td>${effectiveStatus(c, now)}</td>
          </tr>`,
      ),
    )}`;
}

/**
 * RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled. A field a spreadsheet would read as a
 * formula (=, +, -, @, tab or CR first, after any spaces) is prefixed with ' so it stays text.
 */
export function csvField(value: string): string {
  const safe = /^[\s]*[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export const CSV_COLUMNS = [
  'id',
  'role',
  'subject',
  'serial',
  'fingerprint_sha256',
  'not_before',
  'not_after',
  'days_left',
  'status',
  'issuer_id',
  'superseded_by',
];

export async function certificatesCsv(deps: ConsoleDeps, now: Date, f: CertificateFilter): Promise<string> {
  const rows = (await filteredCertificates(deps, now, f)).map((c) =>
    [
      c.id,
      c.role,
      c.subject,
      c.serialHex,
      c.fingerprintSha256,
      c.notBefore.toISOString(),
      c.notAfter.toISOString(),
      String(daysLeft(c.notAfter, now)),
      effectiveStatus(c, now),
      c.issuerId ?? '',
      c.supersededBy ?? '',
    ]
      .map(csvField)
      .join(','),
  );
  return [CSV_COLUMNS.join(','), ...rows].join('\r\n') + '\r\n';
}

/** One certificate: its facts, its chain up to the root, and what depends on it. */
export async function certificatePage(deps: ConsoleDeps, now: Date, id: string): Promise<Html | null> {
  const { store } = deps.app;
  const c = await store.getCertificate(id);
  if (!c) return null;
  const chain: CertificateRecord[] = [c];
  for (let issuer = c.issuerId; issuer && chain.length < 10;) {
    const next = await store.getCertificate(issuer);
    if (!next || next.id === chain.at(-1)!.id) break;
    chain.push(next);
    issuer = next.issuerId;
  }
  const issued = await store.listIssuedBy(c.id);
  const dependants = await store.listDependants(c.id);
  const binding = c.role === 'device-identity' ? await store.getBinding(c.id) : undefined;
  return html`<dl class="facts">
      <dt>Role</dt>
      <dd>${c.role}</dd>
      <dt>Subject</dt>
      <dd>${c.subject}</dd>
      <dt>Serial</dt>
      <dd class="mono">${c.serialHex}</dd>
      <dt>SHA-256</dt>
      <dd class="mono">${c.fingerprintSha256}</dd>
      <dt>Valid</dt>
      <dd>${day(c.notBefore)} → ${day(c.notAfter)} (${daysLeft(c.notAfter, now)} days left)</dd>
      <dt>Status</dt>
      <dd>
        ${effectiveStatus(c, now)}${c.supersededBy ? html` · superseded by <a href="/console/certificates/${c.supersededBy}">${c.supersededBy}</a>` : ''}
      </dd>
      <dt>Private key</dt>
      <dd>${c.keyId ? 'held by certmdm, sealed under the master key' : 'not held by certmdm'}</dd>
      ${
        c.servesEnrollment
          ? html`<dt>Minted for</dt>
              <dd>enrollment <a href="/console/devices/${encodeURIComponent(c.servesEnrollment)}">${c.servesEnrollment}</a></dd>`
          : ''
      }
      ${
        binding
          ? html`<dt>Bound to</dt>
              <dd><a href="/console/devices/${encodeURIComponent(binding)}">${binding}</a></dd>`
          : ''
      }
    </dl>
    <h2>Chain</h2>
    ${table(
      ['', 'Role', 'Subject', 'Not after', 'Status'],
      chain.map(
        (x, i) =>
          html`<tr class="chain" data-role="${x.role}">
            <td>${i}</td>
            <td>${x.role}</td>
            <td><a href="/console/certificates/${x.id}">${x.subject}</a></td>
            <td>${day(x.notAfter)}</td>
            <td>${effectiveStatus(x, now)}</td>
          </tr>`,
      ),
    )}
    <h2>What depends on it</h2>
    ${table(
      ['Kind', 'What'],
      [
        ...issued.slice(0, 200).map(
          (x) =>
            html`<tr class="dependant">
              <td>issued ${x.role}</td>
              <td>
                <a href="/console/certificates/${x.id}">${commonName(x.subject)}</a> · ${effectiveStatus(x, now)} · expires
                ${day(x.notAfter)}
              </td>
            </tr>`,
        ),
        ...dependants.map(
          (d) =>
            html`<tr class="dependant">
              <td>${d.kind}</td>
              <td>${d.ref}</td>
            </tr>`,
        ),
      ],
    )}
    ${issued.length > 200 ? html`<p class="muted">${issued.length} issued in all; the first 200 shown.</p>` : ''}`;
}
