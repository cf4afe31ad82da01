import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { OperatorError } from '../errors.ts';

const VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const CHECK_LABEL = 'certmdm master key check v1';

/**
 * The key every private key is sealed under (AES-256-GCM). The row id is bound in as associated data, so a sealed
 * blob copied onto another row does not open.
 */
export class MasterKey {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new OperatorError(`master key must be 32 bytes, got ${key.length}`);
    this.#key = Buffer.from(key);
  }

  seal(plaintext: Buffer, associatedData: string): Buffer {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce);
    cipher.setAAD(Buffer.from(associatedData));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), nonce, body, cipher.getAuthTag()]);
  }

  /** Throws if the blob was not sealed by this key for this associated data. */
  open(sealed: Buffer, associatedData: string): Buffer {
    if (sealed.length < 1 + NONCE_BYTES + TAG_BYTES || sealed[0] !== VERSION) {
      throw new Error('sealed key blob is malformed');
    }
    const nonce = sealed.subarray(1, 1 + NONCE_BYTES);
    const tag = sealed.subarray(sealed.length - TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.#key, nonce);
    decipher.setAAD(Buffer.from(associatedData));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(sealed.subarray(1 + NONCE_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
  }

  /**
   * A keyed hash of `data` for one purpose (`context`): a key derived from the master key by HMAC, never the master key
   * itself, so a value made for one purpose proves nothing for another.
   */
  mac(data: string, context: string): Buffer {
    const key = createHmac('sha256', this.#key).update(`certmdm mac: ${context}`).digest();
    return createHmac('sha256', key).update(data).digest();
  }

  /** A value stored beside the data so that a wrong key is recognised before anything is written. */
  checkValue(): string {
    return createHmac('sha256', this.#key).update(CHECK_LABEL).digest('base64');
  }

  matches(storedCheckValue: string): boolean {
    const expected = Buffer.from(this.checkValue());
    const stored = Buffer.from(storedCheckValue);
    return stored.length === expected.length && timingSafeEqual(stored, expected);
  }

  static generate(): MasterKey {
    return new MasterKey(randomBytes(32));
  }

  /** `CERTMDM_MASTER_KEY` form: 64 hex digits or base64 of 32 bytes. */
  static parse(text: string, source: string): MasterKey {
    const trimmed = text.trim();
    const bytes = /^[0-9a-fA-F]{64}$/.test(trimmed)
      ? Buffer.from(trimmed, 'hex')
      : /^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)
        ? Buffer.from(trimmed, 'base64')
        : undefined;
    if (!bytes || bytes.length !== 32) {
      throw new OperatorError(`${source} is not a master key (expected 32 bytes as 64 hex digits or base64)`);
    }
    return new MasterKey(bytes);
  }

  export(): string {
    return this.#key.toString('base64');
  }
}

export type MasterKeySource = { kind: 'env' } | { kind: 'file'; path: string; created: boolean };

/**
 * The master key from `CERTMDM_MASTER_KEY` when set, else from the key file, created (0600) only when `create`
 * is true, i.e. when the data directory is new. An existing but unreadable or malformed file is an error, never
 * replaced.
 */
export function loadMasterKey(options: { envValue?: string; file: string; create: boolean }): { key: MasterKey; source: MasterKeySource } {
  if (options.envValue) return { key: MasterKey.parse(options.envValue, 'CERTMDM_MASTER_KEY'), source: { kind: 'env' } };
  if (existsSync(options.file)) {
    const mode = statSync(options.file).mode & 0o777;
    if (mode & 0o077) {
      throw new OperatorError(`master key file ${options.file} is readable by others (mode ${mode.toString(8)}); chmod 600 it`);
    }
    return {
      key: MasterKey.parse(readFileSync(options.file, 'utf8'), `master key file ${options.file}`),
      source: { kind: 'file', path: options.file, created: false },
    };
  }
  if (!options.create) {
    throw new OperatorError(
      `master key file ${options.file} is missing and the data directory already holds keys; set CERTMDM_MASTER_KEY or restore the file`,
    );
  }
  const key = MasterKey.generate();
  writeFileSync(options.file, key.export() + '\n', { mode: 0o600, flag: 'wx' });
  return { key, source: { kind: 'file', path: options.file, created: true } };
}

/** The meta key under which a database keeps its master key's check value. */
export const MASTER_KEY_CHECK = 'master_key_check';
