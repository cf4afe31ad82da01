import { DAY_MS } from '../clock.ts';
import { day, escape } from './html.ts';
import { commonName } from './facts.ts';

/**
 * The console's charts as SVG made on the server: no script, no CDN. Every mark carries its data in data-*
 * attributes (ISO dates, counts), which is what the browser tests read back, and a <title> a pointer shows.
 */
export interface TimelineRow {
  role: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  /** The planned replacement, if certmdm makes one automatically. */
  planned: { kind: string; at: Date } | null;
  /** A certificate presented at the public URL that certmdm did not issue (a proxy's). */
  foreign: boolean;
}

const ROLE_COLOURS: Record<string, string> = {
  root: '#6f42c1',
  intermediate: '#0b5cad',
  tls: '#1a7f37',
  'profile-signing': '#bf8700',
  'scep-ra': '#8250df',
  push: '#cf222e',
  presented: '#57606a',
};

const attr = (s: string) => escape(s);

export function timelineSvg(rows: TimelineRow[], now: Date): string {
  const width = 1100;
  const left = 300;
  const right = 20;
  const rowHeight = 28;
  const top = 34;
  const height = top + rows.length * rowHeight + 30;
  const times = rows.flatMap((r) => [r.notBefore.getTime(), r.notAfter.getTime()]).concat(now.getTime());
  const start = Math.min(...times) - 30 * DAY_MS;
  const end = Math.max(...times) + 30 * DAY_MS;
  const x = (t: number) => left + ((t - start) / (end - start)) * (width - left - right);
  const parts: string[] = [];
  // Year ticks.
  for (let year = new Date(start).getUTCFullYear() + 1; Date.UTC(year, 0, 1) < end; year++) {
    const tx = x(Date.UTC(year, 0, 1)).toFixed(1);
    parts.push(`<line x1="${tx}" y1="${top - 8}" x2="${tx}" y2="${height - 24}" stroke="#d8dee6"/>`);
    parts.push(`<text x="${tx}" y="${height - 8}" text-anchor="middle">${year}</text>`);
  }
  rows.forEach((r, i) => {
    const y = top + i * rowHeight;
    const x0 = x(r.notBefore.getTime());
    const x1 = x(r.notAfter.getTime());
    const colour = r.foreign ? ROLE_COLOURS.presented : (ROLE_COLOURS[r.role] ?? '#57606a');
    const label = `${r.foreign ? 'presented' : r.role}: ${commonName(r.subject)}`;
    parts.push(
      `<g class="certificate" data-role="${attr(r.role)}" data-subject="${attr(r.subject)}" data-not-before="${r.notBefore.toISOString()}" data-not-after="${r.notAfter.toISOString()}" data-planned="${r.planned ? r.planned.at.toISOString() : ''}" data-planned-kind="${r.planned ? attr(r.planned.kind) : ''}" data-foreign="${r.foreign}">`,
      `<title>${attr(`${label}\n${day(r.notBefore)} → ${day(r.notAfter)}${r.planned ? `\nplanned ${r.planned.kind} ${day(r.planned.at)}` : ''}`)}</title>`,
      `<text x="${left - 8}" y="${y + 17}" text-anchor="end">${attr(label.length > 40 ? `${label.slice(0, 39)}…` : label)}</text>`,
      `<rect x="${x0.toFixed(1)}" y="${y + 5}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${rowHeight - 10}" rx="3" fill="${colour}" fill-opacity="${r.foreign ? 0.55 : 0.8}"/>`,
    );
    if (r.planned) {
      const px = x(r.planned.at.getTime());
      parts.push(
        `<path class="planned" d="M${px.toFixed(1)} ${y + 2}l6 ${rowHeight / 2 - 2}l-6 ${rowHeight / 2 - 2}l-6 ${-(rowHeight / 2 - 2)}z" fill="#fff" stroke="#14202d" stroke-width="1.5"/>`,
      );
    }
    parts.push('</g>');
  });
  const nx = x(now.getTime()).toFixed(1);
  parts.push(
    `<g class="today" data-at="${now.toISOString()}"><line x1="${nx}" y1="${top - 12}" x2="${nx}" y2="${height - 24}" stroke="#cf222e" stroke-width="2"/><text x="${nx}" y="${top - 16}" text-anchor="middle" fill="#cf222e">today ${day(now)}</text></g>`,
  );
  return `<svg class="chart timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="certificate validity timeline">${parts.join('')}</svg>`;
}

export interface HistogramBin {
  start: Date;
  end: Date;
  count: number;
  /** Identities expiring in this bin are in their renewal window now. */
  inRenewalWindow: boolean;
}

/**
 * Device identities by expiry date, in bins of a week (or more, to stay within 60 bars), from the earliest expiry or
 * today, whichever is first. The renewal window is shaded: an identity expiring before today + renewAt × lifetime is
 * already being renewed.
 */
export function expiryBins(notAfters: Date[], now: Date, renewalHorizon: Date): HistogramBin[] {
  if (notAfters.length === 0) return [];
  const times = notAfters.map((d) => d.getTime());
  const start = Math.min(now.getTime(), ...times);
  const end = Math.max(...times) + 1;
  const size = Math.max(7 * DAY_MS, Math.ceil((end - start) / 60 / DAY_MS) * DAY_MS);
  const bins: HistogramBin[] = [];
  for (let t = start; t < end; t += size)
    bins.push({ start: new Date(t), end: new Date(t + size), count: 0, inRenewalWindow: t < renewalHorizon.getTime() });
  for (const t of times) bins[Math.min(bins.length - 1, Math.floor((t - start) / size))]!.count++;
  return bins;
}

export function histogramSvg(bins: HistogramBin[], now: Date, renewalHorizon: Date): string {
  const width = 1100;
  const height = 260;
  const left = 50;
  const bottom = 40;
  const top = 20;
  if (bins.length === 0)
    return `<svg class="chart histogram" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} 60" width="${width}" height="60"><text x="20" y="35">no device identities</text></svg>`;
  const max = Math.max(...bins.map((b) => b.count), 1);
  const start = bins[0]!.start.getTime();
  const end = bins.at(-1)!.end.getTime();
  const x = (t: number) => left + ((t - start) / (end - start)) * (width - left - 20);
  const y = (n: number) => height - bottom - (n / max) * (height - top - bottom);
  const parts: string[] = [];
  const shadeEnd = Math.min(Math.max(renewalHorizon.getTime(), start), end);
  const shadeStart = Math.min(Math.max(now.getTime(), start), end);
  parts.push(
    `<g class="renewal-window" data-from="${now.toISOString()}" data-until="${renewalHorizon.toISOString()}"><rect x="${x(start).toFixed(1)}" y="${top}" width="${Math.max(0, x(shadeEnd) - x(start)).toFixed(1)}" height="${height - top - bottom}" fill="#bf8700" fill-opacity="0.12"/><text x="${x(shadeStart).toFixed(1)}" y="${top - 6}" fill="#9a6700">renewal window: expiring before ${day(renewalHorizon)}</text></g>`,
  );
  for (const b of bins) {
    const x0 = x(b.start.getTime()) + 1;
    const w = Math.max(1, x(b.end.getTime()) - x(b.start.getTime()) - 2);
    parts.push(
      `<g class="bin" data-start="${b.start.toISOString()}" data-end="${b.end.toISOString()}" data-count="${b.count}" data-renewal-window="${b.inRenewalWindow}"><title>${b.count} identit${b.count === 1 ? 'y' : 'ies'} expiring ${day(b.start)} – ${day(new Date(b.end.getTime() - 1))}</title><rect x="${x0.toFixed(1)}" y="${y(b.count).toFixed(1)}" width="${w.toFixed(1)}" height="${(height - bottom - y(b.count)).toFixed(1)}" fill="${b.inRenewalWindow ? '#bf8700' : '#0b5cad'}"/></g>`,
    );
  }
  for (const n of [0, max]) parts.push(`<text x="${left - 6}" y="${y(n) + 4}" text-anchor="end">${n}</text>`);
  const ticks = Math.min(bins.length, 8);
  for (let i = 0; i <= ticks; i++) {
    const t = start + ((end - start) * i) / ticks;
    const anchor = i === 0 ? 'start' : i === ticks ? 'end' : 'middle';
    parts.push(`<text x="${x(t).toFixed(1)}" y="${height - bottom + 16}" text-anchor="${anchor}">${day(new Date(t))}</text>`);
  }
  const nx = x(Math.min(Math.max(now.getTime(), start), end)).toFixed(1);
  parts.push(`<line class="today" x1="${nx}" y1="${top}" x2="${nx}" y2="${height - bottom}" stroke="#cf222e" stroke-width="2"/>`);
  return `<svg class="chart histogram" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="device identity expiry histogram">${parts.join('')}</svg>`;
}
