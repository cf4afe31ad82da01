import type { AuditLog } from '../admin/audit.ts';
import { commandFromJson } from '../mdm/commands.ts';
import { certificateParts, nameAttributes } from '../pki/certificate.ts';
import type { ProfileService } from '../profiles/service.ts';
import { deviceChannel, type EnrollmentRecord, type Store } from '../store/types.ts';

/** Attempts after which a failed renewal waits for the runner's backoff instead of being retried at once. */
export const IMMEDIATE_RETRIES = 3;

/**
 * Sends a device a renewal: InstallProfile of a fresh enrollment profile (same PayloadIdentifier, ServerURL and Topic;
 * a new one-time challenge), recorded on the enrollment so the lifecycle engine can follow it to completion.
 */
export class IdentityRenewal {
  constructor(private readonly deps: { store: Store; audit: AuditLog; profiles: ProfileService }) {}

  /** Queues a renewal profile for the device; false when it has no identity to renew. Waking it is the caller's job. */
  async send(enrollment: EnrollmentRecord, now: Date, actor = 'lifecycle'): Promise<boolean> {
    const { store, audit, profiles } = this.deps;
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
    await store.enqueueCommand({ ...command, priority: 50, createdBy: actor, createdAt: now }, [deviceChannel(enrollment.id)]);
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
