import type { AuditLog } from '../admin/audit.ts';
import type { CommandQueue } from '../mdm/command-queue.ts';
import { commandFromJson } from '../mdm/commands.ts';
import { certificateParts, nameAttributes } from '../pki/certificate.ts';
import type { ProfileService } from '../profiles/service.ts';
import { deviceChannel, type CertificateRecord, type EnrollmentRecord, type QueueEntry, type Store } from '../store/types.ts';

/** Attempts after which a failed renewal waits for the runner's backoff instead of being retried at once. */
export const IMMEDIATE_RETRIES = 3;

/**
 * After a renewal profile was installed or failed without producing a new identity, a fresh one is sent after this
 * share of the identity's lifetime, doubling with each attempt up to the maximum (the first few failures are
 * retried at once by RenewalRetryService, while the device is still online).
 */
export const RENEWAL_RETRY_SHARE = 0.02;
export const RENEWAL_RETRY_MAX_SHARE = 0.08;

/**
 * What a device's renewal needs now: its profile still waits in the queue (`pending`: wake the device, send no
 * other), one was installed or failed too recently (`back-off`), or a fresh one is due (`send`). The runner and the
 * rescue of an expired identity (src/mdm/rescue.ts) follow the same rule, so neither sends profiles the other would not.
 */
export async function renewalStep(
  store: Store,
  enrollment: EnrollmentRecord,
  identity: Pick<CertificateRecord, 'notBefore' | 'notAfter'>,
  now: Date,
): Promise<{ next: 'pending'; sent: QueueEntry } | { next: 'back-off' } | { next: 'send' }> {
  if (!enrollment.renewalCommandUuid) return { next: 'send' };
  const sent = (await store.listQueue(deviceChannel(enrollment.id))).find((q) => q.commandUuid === enrollment.renewalCommandUuid);
  if (sent && (sent.status === 'queued' || sent.status === 'not-now')) return { next: 'pending', sent };
  // Installed or failed without a new identity yet: wait, longer after each attempt, before a fresh profile. A
  // profile that expired undelivered was never tried: a fresh one goes at once.
  const lifetime = identity.notAfter.getTime() - identity.notBefore.getTime();
  const wait = lifetime * Math.min(RENEWAL_RETRY_MAX_SHARE, RENEWAL_RETRY_SHARE * 2 ** Math.max(0, enrollment.renewalAttempts - 1));
  if (sent && sent.status !== 'expired' && now.getTime() - sent.updatedAt.getTime() < wait) return { next: 'back-off' };
  return { next: 'send' };
}

/**
 * Sends a device a renewal: InstallProfile of a fresh enrollment profile (same PayloadIdentifier, ServerURL and Topic;
 * a new one-time challenge), recorded on the enrollment so the lifecycle engine can follow it to completion.
 */
export class IdentityRenewal {
  constructor(private readonly deps: { store: Store; commands: CommandQueue; audit: AuditLog; profiles: ProfileService }) {}

  /** Queues a renewal profile for the device; false when it has no identity to renew. Waking it is the caller's job. */
  async send(enrollment: EnrollmentRecord, now: Date, actor = 'lifecycle'): Promise<boolean> {
    const { store, commands, audit, profiles } = this.deps;
    const identity = enrollment.identityCertificateId ? await store.getCertificate(enrollment.identityCertificateId) : undefined;
    if (!identity) return false;
    const ref = nameAttributes(certificateParts(identity.der).subject).find(([, , a]) => a === 'CN')?.[1];
    const [previous] = ref ? await store.listProfiles({ kind: 'enrollment', enrollmentRef: ref }) : [];
    // The renewal's identity is minted for this enrollment: it, and only it, may take the binding over.
    const generated = await profiles.enrollment({
      identity: previous?.identityKind ?? 'scep',
      createdBy: actor,
      enrollmentRef: ref,
      enrollmentId: enrollment.id,
    });
    const command = commandFromJson({ RequestType: 'InstallProfile', Payload: generated.body.toString('base64') });
    // The profile is only good while its challenge is; a PKCS#12 one gets the same delivery window. Undelivered by
    // then, its body (challenge, or key and password) is erased and the runner sends a fresh profile.
    const challenge = generated.record.challengeId ? await store.getChallenge(generated.record.challengeId) : undefined;
    const secretsExpireAt = challenge?.expiresAt ?? new Date(now.getTime() + profiles.settings.challengeTtlMs);
    await commands.enqueue(command, [deviceChannel(enrollment.id)], { priority: 50, createdBy: actor, createdAt: now, secretsExpireAt });
    await store.markRenewalStarted(enrollment.id, now, command.uuid);
    await audit.record({
      actor,
      action: 'lifecycle.renewal-started',
      target: enrollment.id,
      outcome: 'ok',
      reason: `identity expires ${identity.notAfter.toISOString()}`,
      detail: {
        profile: generated.record.id,
        command: command.uuid,
        identity: identity.fingerprintSha256,
        attempt: enrollment.renewalAttempts + 1,
      },
    });
    return true;
  }
}
