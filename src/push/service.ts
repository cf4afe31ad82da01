import type { AuditLog } from '../admin/audit.ts';
import type { Clock } from '../clock.ts';
import type { Keyring } from '../pki/keyring.ts';
import type { Logger } from '../log.ts';
import type { ChannelKey, Store } from '../store/types.ts';
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

  async #target(channel: ChannelKey): Promise<{ token: Buffer; pushMagic: string } | string> {
    const enrollment = await this.deps.store.getEnrollment(channel.enrollmentId);
    if (!enrollment || enrollment.status !== 'enrolled') return 'not an enrolled device';
    const source = channel.userId === null ? enrollment : await this.deps.store.getUserChannel(channel.enrollmentId, channel.userId);
    if (!source) return 'no such user channel';
    if (!source.pushToken?.length || !source.pushMagic) return 'no push token yet (no TokenUpdate)';
    if (source.pushTokenInvalidAt)
      return `APNs reported the push token unregistered at ${source.pushTokenInvalidAt.toISOString()}; waiting for a new TokenUpdate`;
    return { token: source.pushToken, pushMagic: source.pushMagic };
  }

  /** Pushes each channel; the results are in the order of `channels`. */
  async push(channels: ChannelKey[], actor: string): Promise<PushResult[]> {
    const apns = await this.#apns();
    const results: PushResult[] = [];
    await Promise.all(
      channels.map(async (channel, i) => {
        const target = apns ? await this.#target(channel) : 'no active push certificate';
        if (typeof target === 'string' || !apns) {
          results[i] = {
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
        results[i] = outcome;
        if (!outcome.ok && outcome.unregistered) {
          const now = this.deps.clock();
          if (channel.userId !== null) await this.deps.store.markUserChannelTokenInvalid(channel.enrollmentId, channel.userId, now);
          else await this.deps.store.updateEnrollment(channel.enrollmentId, { pushTokenInvalidAt: now });
        }
      }),
    );
    const failed = channels.flatMap((channel, i) =>
      results[i]!.ok ? [] : [{ channel, reason: (results[i] as { reason: string }).reason }],
    );
    if (failed.length) this.deps.logger.warn({ failed }, 'some pushes failed');
    await this.deps.audit.record({
      actor,
      action: 'push.sent',
      outcome: failed.length ? 'error' : 'ok',
      // By APNs reason (Success for the accepted ones): what the metrics count pushes by.
      detail: { channels: channels.length, failed: failed.length, reasons: countReasons(results) },
    });
    return results;
  }

  close(): void {
    this.#client?.client.close();
  }
}

function countReasons(results: PushResult[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of results) {
    const reason = r.ok ? 'Success' : (r as { reason: string }).reason;
    counts[reason] = (counts[reason] ?? 0) + 1;
  }
  return counts;
}
