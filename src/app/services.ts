import type { AppContext } from './context.ts';
import type { ServerPki } from '../pki/server-pki.ts';
import { CachedIdentityFacts, type IdentityFacts } from '../mdm/identity-cache.ts';
import { LastSeen } from '../mdm/last-seen.ts';
import { Metrics } from '../ops/metrics.ts';
import { ProfileService } from '../profiles/service.ts';
import { ScepService } from '../scep/service.ts';
import { bindingPolicy } from '../mdm/binding.ts';
import { CertAuthService } from '../mdm/cert-auth.ts';
import { CertificateVerifier } from '../mdm/cert-verify.ts';
import { CoreMdmService } from '../mdm/core.ts';
import type { IdentitySettings } from '../mdm/identity.ts';
import type { MdmService } from '../mdm/service.ts';
import { WebhookService } from '../mdm/webhook.ts';
import { RescueService } from '../mdm/rescue.ts';
import { DAY_MS } from '../clock.ts';
import { WebhookSender } from '../admin/webhook.ts';
import { PushService } from '../push/service.ts';
import { IdentityRenewal } from '../lifecycle/renewal.ts';
import { RenewalRetryService } from '../lifecycle/renewal-retry.ts';
import { readFileSync } from 'node:fs';
import { OperatorError } from '../errors.ts';

/** The protocol services over one app context and PKI: what the HTTP edge, the CLI and the simulator share. */
export function createScepService(app: AppContext, pki: ServerPki): ScepService {
  return new ScepService(
    { store: app.store, pki, clock: app.clock, audit: app.audit },
    {
      identityDays: app.config.identityDays,
      ciphers: app.config.scepCiphers,
      maxClockSkewMs: app.config.scepMaxClockSkewMinutes * 60_000,
      organization: app.config.organization,
      allowedSans: app.config.scepAllowedSans,
    },
  );
}

export function createProfileService(app: AppContext, pki: ServerPki): ProfileService {
  const c = app.config;
  return new ProfileService(
    { store: app.store, clock: app.clock, audit: app.audit, pki },
    {
      organization: c.organization,
      publicUrl: c.publicUrl,
      scepUrl: c.scepUrl,
      pushTopic: c.pushTopic,
      signMessage: c.signMessage,
      pinServerUrl: c.pinServerUrl,
      pkcs12Encryption: c.pkcs12Encryption,
      identityDays: c.identityDays,
      challengeTtlMs: c.challengeTtlHours * 3_600_000,
      enrollLinkTtlMs: c.enrollLinkTtlHours * 3_600_000,
    },
  );
}

export function createPushService(app: AppContext): PushService {
  const c = app.config;
  let ca: string[] | undefined;
  try {
    ca = c.apnsCaFile ? [readFileSync(c.apnsCaFile, 'utf8')] : undefined;
  } catch (err) {
    throw new OperatorError(`cannot read --apns-ca-file: ${(err as Error).message}`);
  }
  return new PushService(
    { store: app.store, keyring: app.keyring, clock: app.clock, audit: app.audit, logger: app.logger },
    { url: c.apnsUrl, ca, concurrency: c.pushConcurrency, expirationSeconds: c.pushExpirationDays * 86_400, retries: 3, backoffMs: 200 },
  );
}

export interface Services {
  /** Prometheus metrics; the audit log's events are counted as they are recorded. */
  metrics: Metrics;
  scep: ScepService;
  profiles: ProfileService;
  mdm: MdmServices;
  push: PushService;
}

export function createServices(app: AppContext, pki: ServerPki): Services {
  const profiles = createProfileService(app, pki);
  const metrics = new Metrics({ store: app.store, clock: app.clock, config: app.config });
  app.audit.subscribe((event) => metrics.observe(event));
  return {
    metrics,
    scep: createScepService(app, pki),
    profiles,
    mdm: createMdmServices(app, new IdentityRenewal({ store: app.store, commands: app.commands, audit: app.audit, profiles })),
    push: createPushService(app),
  };
}

/** The configured webhook, if any (MDM events and lifecycle warnings share it). */
export function webhookSender(app: AppContext): WebhookSender | undefined {
  return app.config.webhookUrl
    ? new WebhookSender({ url: app.config.webhookUrl, secret: app.config.webhookSecret, logger: app.logger })
    : undefined;
}

export interface MdmServices {
  service: MdmService;
  verifier: CertificateVerifier;
  /** Identity facts remembered between requests; the edge calls `sync` at the start of each request. */
  facts: IdentityFacts;
  /** Devices' last check-in times, written in batches; flushed when the server closes. */
  lastSeen: LastSeen;
  identity: IdentitySettings;
  webhook?: WebhookService;
}

/**
 * The MDM service stack: storage behaviour, wrapped by the immediate retry of a failed renewal (when the profiles are
 * at hand), by the certificate-binding policy, by the rescue of expired identities (unless `--rescue-grace-days 0`),
 * then by the webhook.
 */
export function createMdmServices(app: AppContext, renewal?: IdentityRenewal): MdmServices {
  const deps = { store: app.store, audit: app.audit };
  const facts = new CachedIdentityFacts(app.store);
  const lastSeen = new LastSeen(app.store, { flushMs: app.config.lastSeenFlushSeconds * 1000, logger: app.logger });
  const core = new CoreMdmService({
    ...deps,
    lastSeen,
    commands: app.commands,
    tokens: app.deviceTokens,
    binding: bindingPolicy({ permissiveReenrollment: app.config.permissiveReenrollment }),
  });
  const bound = new CertAuthService(renewal ? new RenewalRetryService(core, { store: app.store, renewal }) : core, { ...deps, facts });
  const sender = webhookSender(app);
  const rescueGraceMs = app.config.rescueGraceDays * DAY_MS;
  // Outside the binding policy: a rescued request never reaches what stores a device's messages (mdm/rescue.ts).
  const rescued =
    rescueGraceMs > 0
      ? new RescueService(bound, { ...deps, commands: app.commands, renewal, webhook: sender, graceMs: rescueGraceMs })
      : bound;
  const webhook = sender ? new WebhookService(rescued, sender) : undefined;
  return {
    service: webhook ?? rescued,
    webhook,
    verifier: new CertificateVerifier(app.store, facts, { rescueGraceMs }),
    facts,
    lastSeen,
    identity: {
      sources: app.config.mdmIdentitySources,
      trustedProxies: app.config.trustedProxies,
      proxyHeader: app.config.proxyCertHeader,
      proxyFormat: app.config.proxyCertFormat,
      signingTimeSkewMs: app.config.signingTimeSkewMinutes * 60_000,
      rescueGraceMs,
    },
  };
}
