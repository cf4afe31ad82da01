import type { MasterKey } from '../pki/master-key.ts';
import type { ChannelKey, QueueEntry, Store } from '../store/types.ts';
import type { BuiltCommand } from './commands.ts';

/** The command UUID bound into the seal, so a body copied onto another command's row does not open. */
const associatedData = (uuid: string) => `command:${uuid}`;

/**
 * The command queue as the services use it. A command body can carry secrets (a renewal profile holds the device's
 * PKCS#12 and its password, or a live SCEP challenge; an administrator's InstallProfile may too), so every body is
 * sealed under the master key (AES-256-GCM, as private keys are) before it reaches the store and opened only to be
 * delivered. The store erases a body once the command is answered on every channel; `sweep` erases those whose
 * secrets expired undelivered.
 */
export class CommandQueue {
  constructor(private readonly deps: { store: Store; master: MasterKey }) {}

  async enqueue(
    command: BuiltCommand,
    channels: ChannelKey[],
    options: { priority: number; createdBy: string; createdAt: Date; secretsExpireAt?: Date },
  ): Promise<void> {
    const body = this.deps.master.seal(command.body, associatedData(command.uuid));
    await this.deps.store.enqueueCommand(
      {
        uuid: command.uuid,
        requestType: command.requestType,
        ...options,
        body,
        sealed: true,
        secretsExpireAt: options.secretsExpireAt ?? null,
      },
      channels,
    );
  }

  /** The next command for a channel, its body opened for delivery. */
  async next(channel: ChannelKey, options: { reviveNotNow: boolean; now: Date }): Promise<(QueueEntry & { body: Buffer }) | undefined> {
    const next = await this.deps.store.nextCommand(channel, options);
    if (!next) return undefined;
    // Commands queued before bodies were sealed (schema 11) are delivered as stored.
    return { ...next, body: next.sealed ? this.open(next.commandUuid, next.body) : next.body };
  }

  /** A sealed body opened; throws if it was not sealed under this key for this command. */
  open(uuid: string, sealed: Buffer): Buffer {
    return this.deps.master.open(sealed, associatedData(uuid));
  }

  /** Seals the bodies of commands queued before bodies were sealed (an upgraded database); at every open. */
  sealStoredInClear(): Promise<number> {
    return this.deps.store.sealCommandBodies((uuid, body) => this.deps.master.seal(body, associatedData(uuid)));
  }

  /** Erases the bodies whose secrets expired undelivered (the lifecycle runner calls it each run). */
  sweep(now: Date): Promise<string[]> {
    return this.deps.store.eraseExpiredCommandBodies(now);
  }
}
