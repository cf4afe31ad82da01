import { PlistReal, type PlistDict, type PlistValue } from './types.ts';

const HEADER =
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n' +
  '<plist version="1.0">\n';

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function write(value: PlistValue, indent: string, out: string[]): void {
  if (typeof value === 'string') out.push(`${indent}<string>${escape(value)}</string>`);
  else if (typeof value === 'boolean') out.push(`${indent}<${value}/>`);
  else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`plist integer expected, got ${value} (use PlistReal for reals)`);
    out.push(`${indent}<integer>${value}</integer>`);
  } else if (value instanceof PlistReal) out.push(`${indent}<real>${value.value}</real>`);
  else if (Buffer.isBuffer(value)) out.push(`${indent}<data>${value.toString('base64')}</data>`);
  else if (value instanceof Date) out.push(`${indent}<date>${value.toISOString().replace(/\.\d{3}Z$/, 'Z')}</date>`);
  else if (Array.isArray(value)) {
    if (value.length === 0) return void out.push(`${indent}<array/>`);
    out.push(`${indent}<array>`);
    for (const item of value) write(item, indent + '\t', out);
    out.push(`${indent}</array>`);
  } else {
    const entries = Object.entries(value as PlistDict).filter(([, v]) => v !== undefined) as [string, PlistValue][];
    if (entries.length === 0) return void out.push(`${indent}<dict/>`);
    out.push(`${indent}<dict>`);
    for (const [key, item] of entries) {
      out.push(`${indent}\t<key>${escape(key)}</key>`);
      write(item, indent + '\t', out);
    }
    out.push(`${indent}</dict>`);
  }
}

/** XML property list, keys in insertion order; undefined dictionary values are left out. */
export function serializePlist(value: PlistValue): Buffer {
  const out: string[] = [];
  write(value, '', out);
  return Buffer.from(HEADER + out.join('\n') + '\n</plist>\n', 'utf8');
}
