import type { AuditLog } from '../admin/audit.ts';
import type { Clock } from '../clock.ts';
import type { Keyring } from '../pki/keyring.ts';
import type { Logger } from '../log.ts';
import type { Store } from '../store/types.ts';
import { ApnsClient, type ApnsSettings, type PushOutcome } from './apns.ts';
import { topicOf } from './certificate.ts';

export type PushResult = PushOutcome | { ok: false; status: 0; reason: 'NotPushable'; message: string; unregistered: false; attempts: 0 };

/** Wakes devices: finds each channel's token and PushMagic, pushes with the active push certificate. */
export class PushService {
  #client?: { certificateId: string; client: ApnsClient };

  constructor(
    private readonly deps: { store: Store; keyring: Keyring; clock: Clock; audit: AuditLog; logger: Logger },
    private readonly settings: Omit<ApnsSettings, 'certificate' | 'privateKey'>,
  ) {}

  async #apns(): Promise<{ client: ApnsClient; topic: string } | undefined> {
    const [current] = await this.deps.store.listCertificates({ role: 'push', status: 'active' });
    if (!current || !current.keyId) return undefined;
    if (this.#client?.certificateId !== current.id) {
      this.#client?.client.close();
      this.#client = {
        certificateId: current.id,
        client: new ApnsClient({ ...this.settings, certificate: current.der, privateKey: await this.deps.keyring.open(current.keyId) }),
      };
    }
    return { client: this.#client.client, topic: topicOf(current.der)! };
  }

  async #target(channelId: string): Promise<{ token: Buffer; pushMagic: string } | string> {
    const deviceId = channelId.split(':')[0]!;
    const enrollment = await this.deps.store.getEnrollment(deviceId);
    if (!enrollment || enrollment.status !== 'enrolled') return 'not an enrolled device';
    const source = channelId === deviceId ? enrollment : await this.deps.store.getUserChannel(channelId);
    if (!source) return 'no such user channel';
    if (!source.pushToken?.length || !source.pushMagic) return 'no push token yet (no TokenUpdate)';
    if (source.pushTokenInvalidAt)
      return `APNs reported the push token unregistered at ${source.pushTokenInvalidAt.toISOString()}; waiting for a new TokenUpdate`;
    return { token: source.pushToken, pushMagic: source.pushMagic };
  }

  async push(channelIds: string[], actor: string): Promise<Record<string, PushResult>> {
    const apns = await this.#apns();
    const results: Record<string, PushResult> = {};
    await Promise.all(
      channelIds.map(async (id) => {
        const target = apns ? await this.#target(id) : 'no active push certificate';
        if (typeof target === 'string' || !apns) {
          results[id] = {
            ok: false,
            status: 0,
            reason: 'NotPushable',
            message: typeof target === 'string' ? target : 'no active push certificate',
            unregistered: false,
            attempts: 0,
          };
          return;
        }
        const outcome = await apns.client.push({ ...target, topic: apns.topic }, this.deps.clock());
        results[id] = outcome;
        if (!outcome.ok && outcome.unregistered) {
          const now = this.deps.clock();
          if (id.includes(':')) await this.deps.store.markUserChannelTokenInvalid(id, now);
          else await this.deps.store.updateEnrollment(id, { pushTokenInvalidAt: now });
        }
      }),
    );
    const failed = Object.entries(results).filter(([, r]) => !r.ok);
    if (failed.length)
      this.deps.logger.warn({ failed: failed.map(([id, r]) => ({ id, reason: !r.ok ? r.reason : '' })) }, 'some pushes failed');
    await this.deps.audit.record({
      actor,
      action: 'push.sent',
      outcome: failed.length ? 'error' : 'ok',
      detail: { channels: channelIds.length, failed: failed.length },
    });
    return results;
  }

  close(): void {
    this.#client?.client.close();
  }
}
