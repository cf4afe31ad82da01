import type { MasterKey } from '../pki/master-key.ts';

/** Tokens a device escrows with its MDM server: each hands over control of the device to whoever holds it. */
export type DeviceTokenKind = 'unlock-token' | 'bootstrap-token';

/**
 * Seals a device's escrowed tokens under the master key: the UnlockToken clears the device's passcode and the
 * BootstrapToken unlocks macOS accounts and updates, so a database backup alone must not yield them. The enrollment
 * id and the kind are bound as associated data: a blob copied to another device or kind does not open.
 */
export class DeviceTokens {
  constructor(private readonly master: MasterKey) {}

  seal(enrollmentId: string, kind: DeviceTokenKind, token: Buffer): Buffer {
    return this.master.seal(token, `enrollment:${enrollmentId}:${kind}`);
  }

  open(enrollmentId: string, kind: DeviceTokenKind, sealed: Buffer): Buffer {
    return this.master.open(sealed, `enrollment:${enrollmentId}:${kind}`);
  }
}
