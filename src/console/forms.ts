/**
 * The console's request bodies: URL-encoded forms, and multipart for the one file upload. Bounded (Fastify's body
 * limit per route) and linear: each byte is looked at a fixed number of times; at most MAX_FIELDS fields.
 */
export const MAX_FIELDS = 64;

export class FormError extends Error {}

export function parseUrlEncoded(body: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  let n = 0;
  for (const [k, v] of new URLSearchParams(body)) {
    if (++n > MAX_FIELDS) throw new FormError(`at most ${MAX_FIELDS} form fields`);
    if (!(k in out)) out[k] = v;
  }
  return out;
}

export interface Multipart {
  fields: Record<string, string>;
  files: Record<string, { filename: string; data: Buffer }>;
}

const MULTIPART = Symbol('multipart');

export function isMultipart(body: unknown): body is Multipart {
  return typeof body === 'object' && body !== null && MULTIPART in body;
}

/** A request body's text fields (a multipart body's, or a URL-encoded one's); nothing else the client sent. */
export function formFields(body: unknown): Record<string, string> {
  if (isMultipart(body)) return body.fields;
  const out: Record<string, string> = Object.create(null);
  if (body && typeof body === 'object' && !Array.isArray(body))
    for (const [k, v] of Object.entries(body)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** multipart/form-data (RFC 7578): parts split on the boundary, each part's headers then its bytes. */
export function parseMultipart(body: Buffer, contentType: string): Multipart {
  const boundary = /boundary=(?:"([^"]{1,70})"|([^;\s]{1,70}))/i.exec(contentType);
  if (!boundary) throw new FormError('multipart body without a boundary');
  const delimiter = Buffer.from(`--${boundary[1] ?? boundary[2]}`);
  const out: Multipart = Object.assign({ fields: Object.create(null), files: Object.create(null) }, { [MULTIPART]: true });
  let at = body.indexOf(delimiter);
  if (at < 0) throw new FormError('multipart body without its boundary');
  let n = 0;
  for (;;) {
    at += delimiter.length;
    if (body.subarray(at, at + 2).toString() === '--') return out;
    if (body.subarray(at, at + 2).toString() !== '\r\n') throw new FormError('malformed multipart body');
    at += 2;
    const headersEnd = body.indexOf('\r\n\r\n', at);
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), at);
    if (headersEnd < 0 || next < 0 || headersEnd > next) throw new FormError('malformed multipart body');
    if (++n > MAX_FIELDS) throw new FormError(`at most ${MAX_FIELDS} form fields`);
    const headers = body.subarray(at, headersEnd).toString('latin1');
    const disposition = /^content-disposition:\s*form-data;([^\r\n]*)$/im.exec(headers)?.[1] ?? '';
    const name = /\bname="([^"]*)"/.exec(disposition)?.[1];
    const filename = /\bfilename="([^"]*)"/.exec(disposition)?.[1];
    const data = body.subarray(headersEnd + 4, next);
    if (name !== undefined) {
      if (filename !== undefined) out.files[name] ??= { filename, data: Buffer.from(data) };
      else out.fields[name] ??= data.toString('utf8');
    }
    at = next + 2;
  }
}
