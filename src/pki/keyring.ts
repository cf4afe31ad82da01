import { createPrivateKey, randomUUID, type KeyObject } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { SealedKeyRecord, Store } from '../store/types.ts';
import { describeKey } from './algorithms.ts';
import type { MasterKey } from './master-key.ts';

/** Seals private keys for the store and opens them again; plaintext keys live only in memory. */
export class Keyring {
  readonly #cache = new Map<string, KeyObject>();

  constructor(
    private readonly store: Store,
    private readonly master: MasterKey,
    private readonly clock: Clock,
  ) {}

  seal(privateKey: KeyObject): SealedKeyRecord {
    const id = `key_${randomUUID()}`;
    const der = privateKey.export({ type: 'pkcs8', format: 'der' });
    try {
      const record = { id, algorithm: describeKey(privateKey), sealed: this.master.seal(der, id), createdAt: this.clock() };
      this.#cache.set(id, privateKey);
      return record;
    } finally {
      der.fill(0);
    }
  }

  async open(id: string): Promise<KeyObject> {
    const cached = this.#cache.get(id);
    if (cached) return cached;
    const record = await this.store.getSealedKey(id);
    if (!record) throw new Error(`sealed key ${id} is missing from the store`);
    const der = this.master.open(record.sealed, id);
    try {
      const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
      this.#cache.set(id, key);
      return key;
    } finally {
      der.fill(0);
    }
  }

  /**
   * Seals a short-lived value that must travel through a browser and come back untouched (the console's pending push
   * upload): AES-GCM under the master key, bound to `context` (a purpose and a session), so it opens nowhere else.
   */
  sealTransient(value: Buffer, context: string): string {
    return this.master.seal(value, `transient:${context}`).toString('base64url');
  }

  /** The value sealed by sealTransient for the same context; undefined if it was altered or sealed for another. */
  openTransient(sealed: string, context: string): Buffer | undefined {
    try {
      return this.master.open(Buffer.from(sealed, 'base64url'), `transient:${context}`);
    } catch {
      return undefined;
    }
  }

  /** A keyed hash under the master key for one purpose (MasterKey.mac), hex. */
  mac(value: string, context: string): string {
    return this.master.mac(value, context).toString('hex');
  }
}
