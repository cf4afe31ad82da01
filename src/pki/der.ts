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
  /** The contents; for an indefinite-length primitive-less constructed element this is the inner encodings. */
  content: Buffer;
  constructed: boolean;
  indefinite: boolean;
}

const MAX_DEPTH = 64;

/** Reads one element at `offset`. Accepts BER indefinite lengths (Apple's Mdm-Signature uses them). */
export function readNode(buf: Buffer, offset = 0, depth = 0): Node {
  if (depth > MAX_DEPTH) throw new DerError('ASN.1 nesting too deep');
  if (offset + 2 > buf.length) throw new DerError('truncated ASN.1 element');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high-tag-number form is not supported');
  const constructed = (tag & 0x20) !== 0;
  let pos = offset + 1;
  const first = buf[pos++]!;
  if (first === 0x80) {
    if (!constructed) throw new DerError('indefinite length on a primitive element');
    const start = pos;
    while (true) {
      if (pos + 2 > buf.length) throw new DerError('unterminated indefinite-length element');
      if (buf[pos] === 0 && buf[pos + 1] === 0) break;
      pos += readNode(buf, pos, depth + 1).raw.length;
    }
    return { tag, raw: buf.subarray(offset, pos + 2), content: buf.subarray(start, pos), constructed, indefinite: true };
  }
  let length = first;
  if (first & 0x80) {
    const count = first & 0x7f;
    if (count > 4) throw new DerError('ASN.1 length too large');
    if (pos + count > buf.length) throw new DerError('truncated ASN.1 length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[pos++]!;
  }
  if (pos + length > buf.length) throw new DerError('truncated ASN.1 element');
  return { tag, raw: buf.subarray(offset, pos + length), content: buf.subarray(pos, pos + length), constructed, indefinite: false };
}

/** The child elements of a constructed element. */
export function children(node: Node, depth = 0): Node[] {
  if (!node.constructed) throw new DerError(`element with tag 0x${node.tag.toString(16)} is not constructed`);
  const out: Node[] = [];
  for (let pos = 0; pos < node.content.length;) {
    const child = readNode(node.content, pos, depth + 1);
    out.push(child);
    pos += child.raw.length;
  }
  return out;
}

/** Parses a whole buffer as exactly one element. */
export function parse(buf: Buffer): Node {
  const node = readNode(buf, 0);
  if (node.raw.length !== buf.length) throw new DerError('trailing bytes after ASN.1 element');
  return node;
}

export function expect(node: Node | undefined, tag: number, what: string): Node {
  if (!node) throw new DerError(`${what} is missing`);
  if (node.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, got 0x${node.tag.toString(16)}`);
  return node;
}

export function readOid(node: Node): string {
  if (node.tag !== TAG.OID) throw new DerError('expected an OBJECT IDENTIFIER');
  const bytes = node.content;
  if (bytes.length === 0) throw new DerError('empty OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let value = 0;
  for (const byte of bytes) {
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else arcs.push(value);
      value = 0;
    }
  }
  return arcs.join('.');
}

/**
 * The bytes of an OCTET STRING, joining the segments of a BER constructed OCTET STRING (indefinite-length
 * encoders such as openssl -stream and Apple devices split content that way).
 */
export function readOctets(node: Node): Buffer {
  if (node.tag === TAG.OCTET_STRING) return node.content;
  if (node.tag === (TAG.OCTET_STRING | 0x20)) return Buffer.concat(children(node).map(readOctets));
  throw new DerError('expected an OCTET STRING');
}

export function readString(node: Node): string {
  return node.content.toString(node.tag === TAG.UTF8_STRING ? 'utf8' : 'latin1');
}

export function readTime(node: Node): Date {
  const s = node.content.toString('latin1');
  const m =
    node.tag === TAG.UTC_TIME
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
      : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) throw new DerError(`unsupported time '${s}'`);
  let year = Number(m[1]);
  if (node.tag === TAG.UTC_TIME) year += year < 50 ? 2000 : 1900;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}
