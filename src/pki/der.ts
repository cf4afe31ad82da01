/**
 * A small, fast DER encoder and BER/DER reader. The general-purpose ASN.1 schema libraries cost milliseconds per
 * certificate; the structures certmdm builds and walks on hot paths (TBSCertificate, CMS, PKIMessage) need only
 * tag-length-value handling, which this does in microseconds.
 */

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

function lengthBytes(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthBytes(content.length), content]);
}

export const seq = (...items: Uint8Array[]) => tlv(TAG.SEQUENCE, Buffer.concat(items));
/** DER SET OF: elements sorted by their encodings (X.690 §11.6). */
export const setOf = (...items: Uint8Array[]) => tlv(TAG.SET, Buffer.concat([...items].sort((a, b) => Buffer.compare(a, b))));
export const octets = (content: Uint8Array) => tlv(TAG.OCTET_STRING, content);
export const bitString = (content: Uint8Array, unusedBits = 0) => tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([unusedBits]), content]));
export const nullValue = () => Buffer.from([TAG.NULL, 0]);
export const bool = (value: boolean) => Buffer.from([TAG.BOOLEAN, 1, value ? 0xff : 0]);
export const utf8 = (s: string) => tlv(TAG.UTF8_STRING, Buffer.from(s, 'utf8'));
export const printable = (s: string) => tlv(TAG.PRINTABLE_STRING, Buffer.from(s, 'latin1'));
export const ia5 = (s: string) => tlv(TAG.IA5_STRING, Buffer.from(s, 'latin1'));
/** Context-specific tag [n]; constructed unless `primitive` (IMPLICIT tagging of a primitive). */
export const context = (n: number, content: Uint8Array, primitive = false) => tlv((primitive ? 0x80 : 0xa0) | n, content);

/** A non-negative INTEGER from big-endian magnitude bytes. */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  const content = trimmed[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : Buffer.from(trimmed);
  return tlv(TAG.INTEGER, content);
}

export function smallInteger(value: number): Buffer {
  if (value < 0 || !Number.isSafeInteger(value)) throw new Error('only non-negative safe integers');
  const bytes: number[] = [];
  for (let n = value; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return unsignedInteger(Buffer.from(bytes.length ? bytes : [0]));
}

const oidCache = new Map<string, Buffer>();
export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split('.').map(Number);
  const bytes: number[] = [arcs[0]! * 40 + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) chunk.unshift(0x80 | (n & 0x7f));
    bytes.push(...chunk);
  }
  const encoded = tlv(TAG.OID, Buffer.from(bytes));
  oidCache.set(dotted, encoded);
  return encoded;
}

/** RFC 5280: UTCTime through 2049, GeneralizedTime from 2050. */
export function time(at: Date): Buffer {
  const iso = at.toISOString();
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  return at.getUTCFullYear() < 2050
    ? tlv(TAG.UTC_TIME, Buffer.from(digits.slice(2) + 'Z', 'latin1'))
    : tlv(TAG.GENERALIZED_TIME, Buffer.from(digits + 'Z', 'latin1'));
}

export function algorithmIdentifier(dotted: string, parameters?: Uint8Array | null): Buffer {
  return parameters === undefined ? seq(oid(dotted)) : seq(oid(dotted), parameters ?? nullValue());
}

// ---------------------------------------------------------------------------------------------------------------
// Reading
//
// Every input here may come from an unauthenticated peer (a PKIOperation, an Mdm-Signature header). The reader
// therefore reads each element's header exactly once, front to back, and builds the whole tree in that one pass:
// an indefinite-length element's end is found by reading its children, which are kept, never by a separate scan.
// Work is linear in the input; nesting and the number of elements are bounded; constructed strings may hold only
// primitive segments of their own type (CER, X.690 §9.2), so strings cannot nest. Every refusal is a DerError.

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

export interface Node {
  tag: number;
  /** The whole element, header included (for a BER indefinite-length element: up to and including 00 00). */
  raw: Buffer;
  /** The contents; for an indefinite-length element this is the inner encodings without the end-of-contents. */
  content: Buffer;
  constructed: boolean;
  indefinite: boolean;
  /** The child elements of a constructed element, read in the same pass as the element itself. */
  readonly elements?: readonly Node[];
}

/** Deeper than any structure certmdm reads (a certificate inside CMS is about a dozen levels). */
export const MAX_DEPTH = 32;
/** More elements than any certificate chain, CMS message or PKCS#12 file certmdm handles (hundreds). */
export const MAX_ELEMENTS = 20_000;

/** Elements read since the process started: lets a test prove the work is linear (each element read once). */
export const readerWork = { elements: 0 };

/** Universal string types that BER allows in constructed form. */
const STRING_TAGS = new Set([0x03, 0x04, 0x0c, 0x12, 0x13, 0x14, 0x15, 0x16, 0x19, 0x1a, 0x1b, 0x1c, 0x1e]);

class Reader {
  elements = 0;
  constructor(readonly buf: Buffer) {}

  /** Reads the element at `offset`, which must end by `limit`. */
  element(offset: number, limit: number, depth: number): Node {
    if (depth > MAX_DEPTH) throw new DerError('ASN.1 nesting too deep');
    if (++this.elements > MAX_ELEMENTS) throw new DerError('too many ASN.1 elements');
    readerWork.elements++;
    const buf = this.buf;
    if (offset + 2 > limit) throw new DerError('truncated ASN.1 element');
    const tag = buf[offset]!;
    if ((tag & 0x1f) === 0x1f) throw new DerError('high-tag-number form is not supported');
    if (tag === 0) throw new DerError('unexpected end-of-contents');
    const constructed = (tag & 0x20) !== 0;
    let pos = offset + 1;
    const first = buf[pos++]!;
    if (first === 0x80) {
      if (!constructed) throw new DerError('indefinite length on a primitive element');
      const elements: Node[] = [];
      const start = pos;
      for (;;) {
        if (pos + 2 > limit) throw new DerError('unterminated indefinite-length element');
        if (buf[pos] === 0 && buf[pos + 1] === 0) break;
        const child = this.element(pos, limit, depth + 1);
        elements.push(child);
        pos += child.raw.length;
      }
      return this.#made(tag, offset, start, pos, pos + 2, true, elements);
    }
    let length = first;
    if (first & 0x80) {
      const count = first & 0x7f;
      if (count > 4) throw new DerError('ASN.1 length too large');
      if (pos + count > limit) throw new DerError('truncated ASN.1 length');
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + buf[pos++]!;
    }
    const end = pos + length;
    if (end > limit) throw new DerError('truncated ASN.1 element');
    if (!constructed) return this.#made(tag, offset, pos, end, end, false);
    const elements: Node[] = [];
    for (let at = pos; at < end;) {
      const child = this.element(at, end, depth + 1);
      elements.push(child);
      at += child.raw.length;
    }
    return this.#made(tag, offset, pos, end, end, false, elements);
  }

  #made(tag: number, offset: number, start: number, contentEnd: number, end: number, indefinite: boolean, elements?: Node[]): Node {
    if (elements && (tag & 0xc0) === 0 && STRING_TAGS.has(tag & 0x1f)) {
      // CER: a constructed string is a list of primitive segments of the same type, never nested strings.
      for (const segment of elements)
        if (segment.tag !== (tag & 0x1f)) throw new DerError('a constructed string may hold only primitive segments of its type');
    }
    return {
      tag,
      raw: this.buf.subarray(offset, end),
      content: this.buf.subarray(start, contentEnd),
      constructed: elements !== undefined,
      indefinite,
      elements,
    };
  }
}

/** Parses a whole buffer as exactly one element (and everything inside it, in one pass). */
export function parse(buf: Buffer): Node {
  if (!Buffer.isBuffer(buf)) throw new DerError('no ASN.1 input');
  const node = new Reader(buf).element(0, buf.length, 0);
  if (node.raw.length !== buf.length) throw new DerError('trailing bytes after ASN.1 element');
  return node;
}

/** The child elements of a constructed element (already read by `parse`). */
export function children(node: Node | undefined): readonly Node[] {
  if (!node) throw new DerError('an ASN.1 element is missing');
  if (!node.elements) throw new DerError(`element with tag 0x${node.tag.toString(16)} is not constructed`);
  return node.elements;
}

/** Child `index` of a constructed element, which must be there. */
export function child(node: Node | undefined, index: number, what: string): Node {
  const found = children(node)[index];
  if (!found) throw new DerError(`${what} is missing`);
  return found;
}

export function expect(node: Node | undefined, tag: number, what: string): Node {
  if (!node) throw new DerError(`${what} is missing`);
  if (node.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, got 0x${node.tag.toString(16)}`);
  return node;
}

export function readOid(node: Node | undefined): string {
  if (!node || node.tag !== TAG.OID || node.constructed) throw new DerError('expected an OBJECT IDENTIFIER');
  const bytes = node.content;
  if (bytes.length === 0 || bytes.length > 64) throw new DerError('bad OBJECT IDENTIFIER length');
  if (bytes[bytes.length - 1]! & 0x80) throw new DerError('truncated OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let value = 0;
  let digits = 0;
  for (const byte of bytes) {
    if (digits === 0 && byte === 0x80) throw new DerError('non-minimal OBJECT IDENTIFIER arc');
    // Seven bytes of seven bits stay within a safe integer.
    if (++digits > 7) throw new DerError('OBJECT IDENTIFIER arc too large');
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else arcs.push(value);
      value = 0;
      digits = 0;
    }
  }
  return arcs.join('.');
}

/**
 * The bytes of an OCTET STRING, joining the segments of a BER constructed OCTET STRING (indefinite-length
 * encoders such as openssl -stream and Apple devices split content that way; the reader allows one level only).
 */
export function readOctets(node: Node | undefined): Buffer {
  return implicitOctets(node, TAG.OCTET_STRING, 'OCTET STRING');
}

/**
 * An OCTET STRING under `tag` (its own, or an IMPLICIT context tag): primitive, or constructed from primitive
 * OCTET STRING segments (CER), never nested.
 */
export function implicitOctets(node: Node | undefined, tag: number, what: string): Buffer {
  if (!node) throw new DerError(`${what} is missing`);
  if (node.tag === tag && !node.constructed) return node.content;
  if (node.tag === (tag | 0x20) && node.elements) {
    for (const segment of node.elements)
      if (segment.tag !== TAG.OCTET_STRING) throw new DerError(`${what}: segments must be primitive OCTET STRINGs`);
    return Buffer.concat(node.elements.map((segment) => segment.content));
  }
  throw new DerError(`expected ${what}`);
}

export function readString(node: Node | undefined): string {
  if (!node || node.constructed) throw new DerError('expected a primitive string');
  return node.content.toString(node.tag === TAG.UTF8_STRING ? 'utf8' : 'latin1');
}

/** A non-negative INTEGER that fits in `max` (iteration counts, versions): refuses anything else. */
export function readSmallInteger(node: Node | undefined, max: number, what: string): number {
  if (!node || node.tag !== TAG.INTEGER) throw new DerError(`${what}: expected an INTEGER`);
  const bytes = node.content;
  if (bytes.length === 0) throw new DerError(`${what}: empty INTEGER`);
  if (bytes[0]! & 0x80) throw new DerError(`${what} is negative`);
  let value = 0;
  for (const byte of bytes) {
    value = value * 256 + byte;
    if (value > max) throw new DerError(`${what} is above ${max}`);
  }
  return value;
}

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

export function readTime(node: Node | undefined): Date {
  if (!node || (node.tag !== TAG.UTC_TIME && node.tag !== TAG.GENERALIZED_TIME))
    throw new DerError('expected a UTCTime or GeneralizedTime');
  const s = node.content.toString('latin1');
  const m =
    node.tag === TAG.UTC_TIME
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
      : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) throw new DerError(`unsupported time '${s.replace(/[^\x20-\x7e]/g, '?').slice(0, 32)}'`);
  let year = Number(m[1]);
  if (node.tag === TAG.UTC_TIME) year += year < 50 ? 2000 : 1900;
  const [month, day, hour, minute, second] = [2, 3, 4, 5, 6].map((i) => Number(m[i]));
  if (month! < 1 || month! > 12 || day! < 1 || day! > DAYS_IN_MONTH[month! - 1]! || hour! > 23 || minute! > 59 || second! > 59)
    throw new DerError(`time '${s}' is out of range`);
  const at = new Date(0);
  at.setUTCFullYear(year, month! - 1, day!); // not Date.UTC, which maps years 0-99 to 1900-1999
  at.setUTCHours(hour!, minute!, second!, 0);
  if (at.getUTCDate() !== day) throw new DerError(`time '${s}' is out of range`);
  return at;
}

/** An INTEGER's content bytes, refusing the empty and non-minimal encodings DER (and openssl) refuse. */
export function readInteger(node: Node | undefined, what: string): Buffer {
  if (!node || node.tag !== TAG.INTEGER || node.constructed) throw new DerError(`${what}: expected an INTEGER`);
  const b = node.content;
  if (b.length === 0) throw new DerError(`${what}: empty INTEGER`);
  if (b.length > 1 && ((b[0] === 0 && b[1]! < 0x80) || (b[0] === 0xff && b[1]! >= 0x80)))
    throw new DerError(`${what}: INTEGER is not minimally encoded`);
  return b;
}

export function readBoolean(node: Node | undefined, what: string): boolean {
  if (!node || node.tag !== TAG.BOOLEAN || node.content.length !== 1) throw new DerError(`${what}: expected a BOOLEAN`);
  return node.content[0] !== 0;
}

/**
 * An AlgorithmIdentifier: SEQUENCE { OID, parameters OPTIONAL }. With `noParameters`, the parameters must be absent
 * or NULL (RSA and digest algorithms) — the only forms openssl accepts for them.
 */
export function readAlgorithm(node: Node | undefined, what: string, noParameters = false): { oid: string; parameters?: Node } {
  const fields = children(expect(node, TAG.SEQUENCE, what));
  if (fields.length < 1 || fields.length > 2) throw new DerError(`${what}: an AlgorithmIdentifier has one or two fields`);
  const parameters = fields[1];
  if (noParameters && parameters && (parameters.tag !== TAG.NULL || parameters.content.length !== 0))
    throw new DerError(`${what}: parameters must be absent or NULL`);
  return { oid: readOid(fields[0]), parameters };
}
