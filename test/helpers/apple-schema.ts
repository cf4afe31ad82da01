import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ROOT } from './cli.ts';

/**
 * Validates profile payloads against Apple's published YAML schemas, read at test time from
 * ../shared/apple-device-management (the contract; nothing is copied out of it).
 *
 * Values come from Python's plistlib through `tagged JSON`: data as {"$data": base64}, reals as {"$real": n},
 * dates as {"$date": iso}, so types are checked on what a real plist reader returned.
 */
export const SCHEMA_ROOT = join(ROOT, '..', 'shared', 'apple-device-management');

interface SchemaKey {
  key: string;
  type: string;
  presence?: 'required' | 'optional';
  rangelist?: unknown[];
  repetition?: { min?: number; max?: number };
  subkeys?: SchemaKey[];
}

interface Schema {
  payload: { payloadtype: string };
  payloadkeys: SchemaKey[];
}

const cache = new Map<string, Schema>();
export function loadProfileSchema(name: string): Schema {
  let schema = cache.get(name);
  if (!schema) {
    schema = parse(readFileSync(join(SCHEMA_ROOT, 'mdm', 'profiles', `${name}.yaml`), 'utf8')) as Schema;
    cache.set(name, schema);
  }
  return schema;
}

type Tagged = string | number | boolean | null | Tagged[] | { [k: string]: Tagged };

function typeOf(value: Tagged): string {
  if (typeof value === 'string') return '<string>';
  if (typeof value === 'boolean') return '<boolean>';
  if (typeof value === 'number') return Number.isInteger(value) ? '<integer>' : '<real>';
  if (Array.isArray(value)) return '<array>';
  if (value && typeof value === 'object') {
    if ('$data' in value) return '<data>';
    if ('$real' in value) return '<real>';
    if ('$date' in value) return '<date>';
    return '<dictionary>';
  }
  return 'null';
}

function checkValue(value: Tagged, spec: SchemaKey, path: string, errors: string[]): void {
  const actual = typeOf(value);
  if (spec.type !== '<any>' && actual !== spec.type) {
    errors.push(`${path}: expected ${spec.type}, got ${actual}`);
    return;
  }
  if (spec.rangelist && !spec.rangelist.some((allowed) => allowed === value))
    errors.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(spec.rangelist)}`);
  if (actual === '<dictionary>' && spec.subkeys?.length && spec.subkeys[0]!.key !== 'ANY') {
    checkDictionary(value as Record<string, Tagged>, spec.subkeys, path, errors);
  }
  if (actual === '<array>' && spec.subkeys?.length) {
    const item = spec.subkeys[0]!;
    const items = value as Tagged[];
    if (item.repetition?.min !== undefined && items.length < item.repetition.min)
      errors.push(`${path}: fewer than ${item.repetition.min} items`);
    if (item.repetition?.max !== undefined && items.length > item.repetition.max)
      errors.push(`${path}: more than ${item.repetition.max} items`);
    items.forEach((v, i) => checkValue(v, item, `${path}[${i}]`, errors));
  }
}

function checkDictionary(dict: Record<string, Tagged>, keys: SchemaKey[], path: string, errors: string[]): void {
  const byName = new Map(keys.map((k) => [k.key, k]));
  for (const [name, value] of Object.entries(dict)) {
    const spec = byName.get(name);
    if (!spec) errors.push(`${path}.${name}: unknown key`);
    else checkValue(value, spec, `${path}.${name}`, errors);
  }
  for (const spec of keys)
    if (spec.presence === 'required' && !(spec.key in dict)) errors.push(`${path}.${spec.key}: required key missing`);
}

/** All schema violations of one payload (the top-level Configuration or an item of its PayloadContent). */
export function validatePayload(payload: Record<string, Tagged>, topLevel = false): string[] {
  const type = String(payload.PayloadType);
  const schema = loadProfileSchema(topLevel ? 'TopLevel' : type);
  if (!topLevel && schema.payload.payloadtype !== type) return [`no schema for ${type}`];
  const keys = topLevel ? schema.payloadkeys : [...loadProfileSchema('CommonPayloadKeys').payloadkeys, ...schema.payloadkeys];
  const errors: string[] = [];
  checkDictionary(payload, keys, type, errors);
  return errors;
}

/** Python's plistlib reads the plist; its result comes back as tagged JSON. */
export const PLIST_TO_TAGGED_JSON = `
import base64, datetime, json, plistlib, sys
def tag(v):
    if isinstance(v, bool): return v
    if isinstance(v, bytes): return {"$data": base64.b64encode(v).decode()}
    if isinstance(v, float): return {"$real": v}
    if isinstance(v, datetime.datetime): return {"$date": v.isoformat()}
    if isinstance(v, dict): return {k: tag(x) for k, x in v.items()}
    if isinstance(v, list): return [tag(x) for x in v]
    return v
print(json.dumps(tag(plistlib.loads(sys.stdin.buffer.read()))))
`;
