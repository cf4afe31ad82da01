import { isoDay } from '../clock.ts';

/**
 * The console's HTML: server-rendered, no script (the Content-Security-Policy forbids all), forms for every change.
 * `html` is a tagged template whose interpolations are escaped unless they are already `Html` (made by `html` or
 * `raw`), so a device name or certificate subject can never become markup.
 */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escape = (s: string): string => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

type Part = Html | string | number | boolean | null | undefined | Part[];

function render(value: Part): string {
  if (value === null || value === undefined || value === false) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  if (value instanceof Html) return value.text;
  return escape(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => (out += render(v) + strings[i + 1]!));
  return new Html(out);
}

/** Markup made by our own code (an SVG chart, a QR code): never from input. */
export const raw = (text: string): Html => new Html(text);

export const day = (d: Date | string | null | undefined): string => (d ? isoDay(new Date(d)) : '—');
export const when = (d: Date | string | null | undefined): string =>
  d ? new Date(d).toISOString().replace('T', ' ').slice(0, 16) + ' UTC' : '—';

export const NAV: ReadonlyArray<[string, string]> = [
  ['/console', 'Overview'],
  ['/console/timeline', 'Timeline'],
  ['/console/at-risk', 'At risk'],
  ['/console/devices', 'Devices'],
  ['/console/certificates', 'Certificates'],
  ['/console/forecast', 'Forecast'],
  ['/console/actions', 'Actions'],
  ['/console/audit', 'Audit log'],
];

export interface PageContext {
  admin: string;
  csrf: string;
  now: Date;
  path: string;
}

/** A hidden CSRF field: every form that changes something carries it. */
export const csrfField = (ctx: { csrf: string }): Html => html`<input type="hidden" name="csrf" value="${ctx.csrf}" />`;

export function page(ctx: PageContext | null, title: string, body: Html): string {
  const nav = ctx
    ? html`<nav>
        <span class="brand">certmdm</span>${NAV.map(
          ([href, label]) => html`<a href="${href}" ${ctx.path === href ? raw(' aria-current="page"') : ''}>${label}</a>`,
        )}
        <form method="post" action="/console/logout" class="logout">
          ${csrfField(ctx)}<span>${ctx.admin}</span><button type="submit">Log out</button>
        </form>
      </nav>`
    : html`<nav><span class="brand">certmdm</span></nav>`;
  return `<!doctype html>${html`<html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>${title} · certmdm</title>
      <link rel="stylesheet" href="/console/assets/console.css" />
    </head>
    <body>
      ${nav}
      <main>
        <h1>${title}</h1>
        ${body}
      </main>
    </body>
  </html>`}`;
}

export const table = (head: string[], rows: Html[]): Html =>
  html`<table>
    <thead>
      <tr>
        ${head.map((h) => html`<th>${h}</th>`)}
      </tr>
    </thead>
    <tbody>
      ${
        rows.length
          ? rows
          : html`<tr>
              <td colspan="${head.length}" class="empty">none</td>
            </tr>`
      }
    </tbody>
  </table>`;
