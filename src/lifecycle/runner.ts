import { ensurePki, pkiSettings, type AppContext } from '../app/context.ts';
import { createRootSuccessor, rolloverIntermediate } from '../pki/server-pki.ts';
import { commandFromJson } from '../mdm/commands.ts';
import type { ServerPki } from '../pki/server-pki.ts';
import type { WebhookSender } from '../admin/webhook.ts';
import type { ProfileService } from '../profiles/service.ts';
import { deviceChannel, type CertificateRole, type ChannelKey } from '../store/types.ts';
import { DEFAULT_POLICY, type Action, type LifecyclePolicy } from './model.ts';
import { plan } from './planner.ts';
import { IdentityRenewal, renewalStep } from './renewal.ts';
import { lifecycleState } from './state.ts';

export interface RunReport {
  at: Date;
  planned: Action[];
  /** What this run did: renewals started, certificates re-issued. */
  done: string[];
  /** Actions that need an administrator (not automated yet) or are waiting (a renewal in flight). */
  attention: string[];
}

/** Actions on the server's own certificates: carried out, and swapped in, before any device is sent a profile. */
const SERVER_ACTIONS: ReadonlySet<Action['kind']> = new Set([
  'reissue-tls',
  'reissue-profile-signing',
  'reissue-scep-ra',
  'rollover-intermediate',
  'create-root-successor',
  'switch-tls-root',
]);

/**
 * Carries out the lifecycle plan with the store, clock and APNs of the running server: device identities are renewed
 * by InstallProfile of a fresh enrollment profile (same PayloadIdentifier, ServerURL and Topic; a new one-time
 * challenge) and a push; the TLS and profile-signing certificates are re-issued and swapped in without a restart.
 * The intermediate is rolled over under the same root, the leaves following. A root rollover has two phases: a
 * successor root delivered to every device by the trust profile, then the switch of the issuing chain (and so of TLS)
 * once every device has acknowledged it, or at the deadline with the stragglers named.
 */
export class LifecycleRunner {
  constructor(
    private readonly deps: {
      app: AppContext;
      /** The live PKI the server and services use; updated in place when a certificate is re-issued. */
      pki: ServerPki;
      profiles: ProfileService;
      /** Wakes devices (APNs in the server; a recorder in the simulator). */
      push: { push(channels: ChannelKey[], actor: string): Promise<unknown> };
      onTlsChange?: (pki: ServerPki) => void;
      /** Where at-risk devices are announced besides the log (the webhook, as `lifecycle.AtRisk`). */
      webhook?: WebhookSender;
    },
    private readonly policy: LifecyclePolicy = DEFAULT_POLICY,
  ) {
    this.#renewal = new IdentityRenewal({
      store: deps.app.store,
      commands: deps.app.commands,
      audit: deps.app.audit,
      profiles: deps.profiles,
    });
  }

  readonly #renewal: IdentityRenewal;

  /** At-risk announcements already made (device and deadline): each is sent once, not every run. */
  readonly #announced = new Set<string>();

  async run(): Promise<RunReport> {
    const { app } = this.deps;
    const now = app.clock();
    const pinning = app.config.pinServerUrl;
    const planned = plan(
      await lifecycleState(app.store, now, {
        pinning,
        identityDays: app.config.identityDays,
        rescueGraceDays: app.config.rescueGraceDays,
        onlyRenewalDue: this.policy.identityRenewAt,
      }),
      this.policy,
    );
    const report: RunReport = { at: now, planned, done: [], attention: [] };
    await this.#eraseExpiredCommands(now, report);
    const force: Partial<Record<CertificateRole, string>> = {};
    // The server's certificates change first: a profile made in this run must embed the chain and CAFingerprint that
    // GetCACert and the listener present from now on, not the ones this run replaces.
    const serverFirst = [...planned.filter((a) => SERVER_ACTIONS.has(a.kind)), ...planned.filter((a) => !SERVER_ACTIONS.has(a.kind))];
    let applied = false;
    let chainChanged = false;
    for (const action of serverFirst) {
      if (!applied && !SERVER_ACTIONS.has(action.kind)) {
        applied = true;
        await this.#apply(force, report);
        if (chainChanged) await this.#withdrawStaleRenewals(now, report);
      }
      switch (action.kind) {
        case 'reissue-tls':
          force.tls = `lifecycle: ${action.reason}`;
          break;
        case 'reissue-profile-signing':
          force['profile-signing'] = `lifecycle: ${action.reason}`;
          break;
        case 'reissue-scep-ra':
          force['scep-ra'] = `lifecycle: ${action.reason}`;
          break;
        case 'rollover-intermediate':
          await rolloverIntermediate(app, pkiSettings(app.config));
          chainChanged = true;
          // Every leaf follows: ensurePki re-issues what the old intermediate signed (TLS, profile signing, RA).
          force.tls = `lifecycle: intermediate rolled over (${action.reason})`;
          report.done.push('rolled over the intermediate');
          break;
        case 'create-root-successor':
          await createRootSuccessor(app, pkiSettings(app.config));
          // Pinned devices get the successor inside their next enrollment profile: one queued before lacks it.
          if (pinning) chainChanged = true;
          report.done.push('created a successor root');
          break;
        case 'deliver-root':
          // A trust profile's roots cannot serve a device whose MDM payload pins its profile's roots: it gets a new
          // enrollment profile (all active roots, pinned), the same path as an identity renewal.
          report[
            (await (pinning ? this.#renew(action.deviceId, now) : this.#deliverTrust(action.deviceId, now))) ? 'done' : 'attention'
          ].push(`deliver-root ${action.deviceId}`);
          break;
        case 'switch-tls-root':
          // Phase 2: an intermediate under the successor root; TLS, profile signing and the RA follow it.
          await rolloverIntermediate(app, pkiSettings(app.config), action.rootId);
          chainChanged = true;
          force.tls = `lifecycle: root switch (${action.reason})`;
          report.done.push(`switched to root ${action.rootId}${action.stragglers.length ? `; lost: ${action.stragglers.join(', ')}` : ''}`);
          if (action.stragglers.length)
            app.logger.error(
              { stragglers: action.stragglers },
              'root switched at its deadline: these devices lack the new root and are lost',
            );
          break;
        case 'renew-identity':
          report[(await this.#renew(action.deviceId, now)) ? 'done' : 'attention'].push(`renew-identity ${action.deviceId}`);
          break;
        case 'device-at-risk': {
          const key = `${action.deviceId}@${action.deadline.toISOString()}`;
          if (!this.#announced.has(key)) {
            this.#announced.add(key);
            this.deps.webhook?.send('lifecycle.AtRisk', now, {
              at_risk_event: { udid: action.deviceId, lost_at: action.deadline.toISOString(), reason: action.reason },
            });
          }
          report.attention.push(`device-at-risk ${action.deviceId}: ${action.reason} (deadline ${action.deadline.toISOString()})`);
          app.logger.warn(
            { lifecycle: action.kind, deviceId: action.deviceId, deadline: action.deadline.toISOString() },
            `device at risk: ${action.reason}`,
          );
          break;
        }
        default:
          report.attention.push(
            `${action.kind}${'deviceId' in action ? ` ${action.deviceId}` : ''}: ${action.reason} (deadline ${action.deadline.toISOString()})`,
          );
          app.logger.warn(
            {
              lifecycle: action.kind,
              deadline: action.deadline.toISOString(),
              ...('deviceId' in action ? { deviceId: action.deviceId } : {}),
            },
            action.reason,
          );
      }
    }
    if (!applied) {
      await this.#apply(force, report);
      if (chainChanged) await this.#withdrawStaleRenewals(now, report);
    }
    return report;
  }

  /**
   * An administrator's "rotate now": a new TLS certificate, or a new intermediate (and every leaf it signs), made and
   * swapped in exactly as the planned actions are; undelivered renewal profiles naming the old chain are withdrawn
   * and sent again by the next run. Returns what was done.
   */
  async rotateNow(what: 'tls' | 'intermediate', actor: string): Promise<string[]> {
    const { app } = this.deps;
    const now = app.clock();
    const report: RunReport = { at: now, planned: [], done: [], attention: [] };
    if (what === 'intermediate') {
      await rolloverIntermediate(app, pkiSettings(app.config));
      report.done.push('rolled over the intermediate');
      await this.#apply({ tls: `${actor}: intermediate rolled over by hand` }, report);
      await this.#withdrawStaleRenewals(now, report);
    } else {
      await this.#apply({ tls: `${actor}: re-issued by hand` }, report);
    }
    return report.done;
  }

  /**
   * After a new intermediate, an undelivered renewal profile names the old one in CAFingerprint while GetCACert hands
   * out the new: the device's SCEP client would refuse it. With pinning, one made before a successor root lacks that
   * root. Such profiles are withdrawn (their bodies erased, so nothing delivers them) and the renewal goes out again at
   * once, made from the current chain and roots.
   */
  async #withdrawStaleRenewals(now: Date, report: RunReport): Promise<void> {
    const { app } = this.deps;
    const pending: string[] = [];
    for (const enrollment of await app.store.listEnrollments()) {
      if (enrollment.status !== 'enrolled' || !enrollment.renewalCommandUuid) continue;
      const sent = (await app.store.listQueue(deviceChannel(enrollment.id))).find((q) => q.commandUuid === enrollment.renewalCommandUuid);
      if (sent && (sent.status === 'queued' || sent.status === 'not-now')) pending.push(sent.commandUuid);
    }
    const withdrawn = await app.store.eraseCommandBodies(pending, now);
    if (!withdrawn.length) return;
    report.done.push(`withdrew ${withdrawn.length} renewal profile${withdrawn.length === 1 ? '' : 's'} made before the chain changed`);
    await app.audit.record({
      actor: 'lifecycle',
      action: 'lifecycle.renewal-withdrawn',
      outcome: 'ok',
      reason: 'the issuing chain or the roots changed since these profiles were made',
      detail: { commands: withdrawn },
    });
  }

  /** Re-issues the forced roles (and whatever a new intermediate makes stale) and swaps them into the live PKI. */
  async #apply(force: Partial<Record<CertificateRole, string>>, report: RunReport): Promise<void> {
    if (!Object.keys(force).length) return;
    Object.assign(this.deps.pki, await ensurePki(this.deps.app, force));
    report.done.push(...Object.keys(force).map((role) => `reissued ${role}`));
    if (force.tls) this.deps.onTlsChange?.(this.deps.pki);
  }

  /** Phase 1 of a root rollover: the trust profile (every active root) by InstallProfile, once per device until acknowledged. */
  async #deliverTrust(deviceId: string, now: Date): Promise<boolean> {
    const { app, profiles, push } = this.deps;
    const pending = await app.store.pendingProfileDelivery(deviceId, 'trust');
    if (pending) {
      const queued = (await app.store.listQueue(deviceChannel(deviceId))).find((q) => q.commandUuid === pending.commandUuid);
      if (queued && (queued.status === 'queued' || queued.status === 'not-now')) {
        await push.push([deviceChannel(deviceId)], 'lifecycle');
        return false;
      }
    }
    const trust = await profiles.trust({ createdBy: 'lifecycle' });
    const command = commandFromJson({ RequestType: 'InstallProfile', Payload: trust.body.toString('base64') });
    await app.commands.enqueue(command, [deviceChannel(deviceId)], { priority: 60, createdBy: 'lifecycle', createdAt: now });
    await app.store.insertProfileDelivery({
      commandUuid: command.uuid,
      enrollmentId: deviceId,
      profileId: trust.record.id,
      createdAt: now,
    });
    await app.audit.record({
      actor: 'lifecycle',
      action: 'lifecycle.root-delivery',
      target: deviceId,
      outcome: 'ok',
      detail: { profile: trust.record.id, command: command.uuid },
    });
    await push.push([deviceChannel(deviceId)], 'lifecycle');
    return true;
  }

  /** Erases command bodies whose secrets (a renewal profile's challenge, key and password) expired undelivered. */
  async #eraseExpiredCommands(now: Date, report: RunReport): Promise<void> {
    const { app } = this.deps;
    const erased = await app.commands.sweep(now);
    if (!erased.length) return;
    report.done.push(`erased ${erased.length} expired command${erased.length === 1 ? '' : 's'}`);
    await app.audit.record({ actor: 'lifecycle', action: 'command.secrets-expired', outcome: 'ok', detail: { commands: erased } });
  }

  /** Starts (or, after its backoff, restarts) a renewal; false while one is still in flight. */
  async #renew(deviceId: string, now: Date): Promise<boolean> {
    const { app, push } = this.deps;
    const enrollment = await app.store.getEnrollment(deviceId);
    const identity = enrollment?.identityCertificateId ? await app.store.getCertificate(enrollment.identityCertificateId) : undefined;
    if (!enrollment || !identity) return false;
    const step = await renewalStep(app.store, enrollment, identity, now);
    if (step.next === 'pending') {
      // The profile is still waiting for the device: wake it again rather than send another.
      await push.push([deviceChannel(deviceId)], 'lifecycle');
      return false;
    }
    if (step.next === 'back-off') return false;
    if (!(await this.#renewal.send(enrollment, now))) return false;
    await push.push([deviceChannel(deviceId)], 'lifecycle');
    return true;
  }
}
