import { PlistReal, type PlistDict, type PlistValue } from './types.ts';

export class PlistError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlistError';
  }
}

const MAX_DEPTH = 32;
/**
 * Control characters XML 1.0 does not allow (all of C0 but tab, LF and CR), raw or by reference. Refused: no device
 * sends them, plistlib will not write them, and PostgreSQL's text cannot hold U+0000.
 */
const NOT_XML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/;
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, name: string) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      if (!(code > 0 && code <= 0x10ffff) || NOT_XML.test(String.fromCodePoint(code)))
        throw new PlistError(`bad character reference ${whole}`);
      return String.fromCodePoint(code);
    }
    const value = ENTITIES[name];
    if (value === undefined) throw new PlistError(`unknown entity ${whole}`);
    return value;
  });
}

/**
 * A strict XML property-list parser for the check-in hot path: a single forward scan with indexOf, no DOM, no
 * general XML. It accepts what Apple devices and plistlib write (declaration, DOCTYPE, comments, self-closing empty
 * elements) and refuses everything else with a PlistError, including binary plists.
 */
class Parser {
  pos = 0;
  constructor(readonly text: string) {}

  fail(message: string): never {
    throw new PlistError(`${message} at offset ${this.pos}`);
  }

  skipMisc(): void {
    for (;;) {
      while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++;
      if (this.text.startsWith('<?', this.pos)) this.skipPast('?>');
      else if (this.text.startsWith('<!--', this.pos)) this.skipPast('-->');
      else if (this.text.startsWith('<!DOCTYPE', this.pos)) this.skipPast('>');
      else return;
    }
  }

  skipPast(marker: string): void {
    const end = this.text.indexOf(marker, this.pos);
    if (end < 0) this.fail(`unterminated ${marker}`);
    this.pos = end + marker.length;
  }

  /** Reads `<name ...>` or `<name/>`; returns the name and whether it was self-closing. */
  openTag(): { name: string; empty: boolean } {
    this.skipMisc();
    if (this.text[this.pos] !== '<') this.fail('expected an element');
    const end = this.text.indexOf('>', this.pos);
    if (end < 0) this.fail('unterminated tag');
    let inner = this.text.slice(this.pos + 1, end);
    this.pos = end + 1;
    const empty = inner.endsWith('/');
    if (empty) inner = inner.slice(0, -1);
    const name = inner.split(/\s/, 1)[0]!;
    if (!/^[a-z]+$/.test(name)) this.fail(`unexpected tag <${inner}>`);
    return { name, empty };
  }

  closeTag(name: string): void {
    this.skipMisc();
    const tag = `</${name}>`;
    if (!this.text.startsWith(tag, this.pos)) this.fail(`expected ${tag}`);
    this.pos += tag.length;
  }

  textUntil(name: string): string {
    const tag = `</${name}>`;
    const end = this.text.indexOf(tag, this.pos);
    if (end < 0) this.fail(`unterminated <${name}>`);
    const raw = this.text.slice(this.pos, end);
    if (raw.includes('<')) this.fail(`markup inside <${name}>`);
    this.pos = end + tag.length;
    return raw;
  }

  value(depth: number): PlistValue {
    if (depth > MAX_DEPTH) this.fail('plist nested too deeply');
    const { name, empty } = this.openTag();
    switch (name) {
      case 'dict': {
        const dict: PlistDict = Object.create(null) as PlistDict;
        if (empty) return dict;
        for (;;) {
          this.skipMisc();
          if (this.text.startsWith('</dict>', this.pos)) {
            this.pos += 7;
            return dict;
          }
          const key = this.openTag();
          if (key.name !== 'key') this.fail(`expected <key>, got <${key.name}>`);
          const k = key.empty ? '' : decodeEntities(this.textUntil('key'));
          if (k in dict) this.fail(`duplicate key ${k}`);
          dict[k] = this.value(depth + 1);
        }
      }
      case 'array': {
        const array: PlistValue[] = [];
        if (empty) return array;
        for (;;) {
          this.skipMisc();
          if (this.text.startsWith('</array>', this.pos)) {
            this.pos += 8;
            return array;
          }
          array.push(this.value(depth + 1));
        }
      }
      case 'string':
        return empty ? '' : decodeEntities(this.textUntil('string'));
      case 'integer': {
        const raw = empty ? '' : this.textUntil('integer').trim();
        if (!/^[+-]?\d+$/.test(raw)) this.fail(`bad integer '${raw}'`);
        const value = Number(raw);
        if (Math.abs(value) >= 2 ** 64) this.fail(`integer out of range '${raw}'`);
        return value;
      }
      case 'real': {
        const raw = empty ? '' : this.textUntil('real').trim();
        const value = Number(raw);
        if (raw === '' || Number.isNaN(value)) this.fail(`bad real '${raw}'`);
        return new PlistReal(value);
      }
      case 'true':
      case 'false':
        if (!empty) this.closeTag(name);
        return name === 'true';
      case 'data': {
        const raw = empty ? '' : this.textUntil('data').replace(/\s+/g, '');
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(raw) || raw.length % 4 !== 0) this.fail('bad base64 in <data>');
        return Buffer.from(raw, 'base64');
      }
      case 'date': {
        const raw = empty ? '' : this.textUntil('date').trim();
        const value = new Date(raw);
        if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(raw) || Number.isNaN(value.getTime())) this.fail(`bad date '${raw}'`);
        return value;
      }
      default:
        return this.fail(`unknown element <${name}>`);
    }
  }
}

// A real UTF-8 validator: U+FFFD is a character like any other (a device may be named "\uFFFD"); only bytes that are
// not UTF-8 (bad sequences, overlongs, surrogates, truncation) are refused.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeUtf8(bytes: Buffer): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new PlistError('the body is not valid UTF-8');
  }
}

export function parsePlist(input: Buffer | string): PlistValue {
  if (Buffer.isBuffer(input) && input.subarray(0, 6).toString('latin1') === 'bplist')
    throw new PlistError('binary property lists are not accepted');
  const text = Buffer.isBuffer(input) ? decodeUtf8(input) : input;
  if (NOT_XML.test(text)) throw new PlistError('the body holds a control character XML does not allow');
  const parser = new Parser(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  const root = parser.openTag();
  if (root.name !== 'plist' || root.empty) parser.fail('expected <plist>');
  const value = parser.value(0);
  parser.closeTag('plist');
  parser.skipMisc();
  if (parser.pos !== parser.text.length) parser.fail('trailing content after </plist>');
  return value;
}

/** A dictionary at the top, as every MDM message is. */
export function parsePlistDict(input: Buffer | string): PlistDict {
  const value = parsePlist(input);
  if (
    !value ||
    typeof value !== 'object' ||
    Array.isArray(value) ||
    Buffer.isBuffer(value) ||
    value instanceof Date ||
    value instanceof PlistReal
  ) {
    throw new PlistError('the property list is not a dictionary');
  }
  return value as PlistDict;
}
