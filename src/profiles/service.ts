import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import type { AuditLog } from '../admin/audit.ts';
import { mintSecret, parseSecret, secretMatches } from '../admin/secrets.ts';
import { addDays, type Clock } from '../clock.ts';
import { OperatorError } from '../errors.ts';
import { generateKey } from '../pki/algorithms.ts';
import { certificateParts, EKU, nameAttributes } from '../pki/certificate.ts';
import { buildPkcs12, type Pkcs12Encryption } from '../pki/pkcs12.ts';
import type { ServerPki } from '../pki/server-pki.ts';
import { serializePlist } from '../plist/serialize.ts';
import { newChallenge, newEnrollmentRef } from '../scep/challenges.ts';
import {
  ConflictError,
  type CertificateRecord,
  type EnrollmentLinkRecord,
  type IdentityKind,
  type NewProfile,
  type ProfileRecord,
  type Store,
} from '../store/types.ts';
import { enrollmentProfile, trustProfile, type IdentityPayload } from './payloads.ts';
import { signProfile } from './sign.ts';

export interface ProfileSettings {
  organization: string;
  publicUrl: string;
  scepUrl: string;
  pushTopic: string | null;
  signMessage: boolean;
  pinServerUrl: boolean;
  pkcs12Encryption: Pkcs12Encryption;
  identityDays: number;
  challengeTtlMs: number;
  enrollLinkTtlMs: number;
}

export interface GeneratedProfile {
  /** What is served: signed CMS, or the plist itself when signing was explicitly declined. */
  body: Buffer;
  plist: Buffer;
  record: ProfileRecord;
}

export class ProfileError extends Error {
  constructor(
    message: string,
    readonly status: 404 | 410 | 409,
  ) {
    super(message);
    this.name = 'ProfileError';
  }
}

const IDENTIFIER_PREFIX_META = 'profile_identifier_prefix';

/** Reverse-DNS of the public host, e.g. mdm.example.com → com.example.mdm.certmdm; fixed on first use. */
function derivePrefix(publicUrl: string): string {
  const host = new URL(publicUrl).hostname;
  const labels = host.split('.');
  if (isIP(host.replace(/^\[|\]$/g, '')) || labels.length < 2) return `local.certmdm.${randomBytes(4).toString('hex')}`;
  return `${labels.reverse().join('.').toLowerCase()}.certmdm`;
}

const uuid = () => randomUUID().toUpperCase();

/**
 * Makes enrollment and trust profiles from the current PKI and records each with what it embeds, so the lifecycle
 * engine can replace it before anything in it expires.
 */
export class ProfileService {
  #trustCache?: { key: string; generated: GeneratedProfile };

  constructor(
    private readonly deps: { store: Store; clock: Clock; audit: AuditLog; pki: ServerPki },
    readonly settings: ProfileSettings,
  ) {}

  urls() {
    const base = this.settings.publicUrl;
    return {
      serverUrl: `${base}/mdm/server`,
      checkInUrl: `${base}/mdm/checkin`,
      trustProfileUrl: `${base}/mdm/trust-profile`,
      anchorsUrl: `${base}/mdm/anchors`,
      adeEnrollmentUrl: `${base}/mdm/ade/enroll`,
      enrollUrl: (token: string) => `${base}/enroll/${token}`,
    };
  }

  /** GET /MDMServiceConfig, as Apple defines it. */
  serviceConfig() {
    const urls = this.urls();
    return { dep_enrollment_url: urls.adeEnrollmentUrl, dep_anchor_certs_url: urls.anchorsUrl, trust_profile_url: urls.trustProfileUrl };
  }

  /** Anchors a device needs to trust the server's TLS: every active root, as base64 DER. */
  async anchors(): Promise<string[]> {
    return (await this.#roots()).map((r) => r.der.toString('base64'));
  }

  async #roots(): Promise<CertificateRecord[]> {
    return this.deps.store.listCertificates({ role: 'root', status: 'active' });
  }

  async #identifierPrefix(): Promise<string> {
    await this.deps.store.setMetaIfAbsent(IDENTIFIER_PREFIX_META, derivePrefix(this.settings.publicUrl));
    return (await this.deps.store.getMeta(IDENTIFIER_PREFIX_META))!;
  }

  /** The APNs topic: from the active push certificate's UID, else the configured one. */
  async topic(): Promise<string> {
    const [push] = await this.deps.store.listCertificates({ role: 'push', status: 'active' });
    if (push) {
      const uid = nameAttributes(certificateParts(push.der).subject).find(([, , attribute]) => attribute === 'UID')?.[1];
      if (uid) return uid;
    }
    if (this.settings.pushTopic) return this.settings.pushTopic;
    throw new OperatorError('no APNs topic yet: import a push certificate or set --push-topic (com.apple.mgmt.…)');
  }

  #sign(plist: Buffer, sign: boolean): Buffer {
    const { pki, clock } = this.deps;
    return sign ? signProfile(plist, pki.profileSigning, [pki.authority.intermediate.der], clock()) : plist;
  }

  async enrollment(options: {
    identity: IdentityKind;
    createdBy: string;
    sign?: boolean;
    link?: { id: string };
    /** A renewal profile keeps the device's enrollment reference, so its new identity stays linked to it. */
    enrollmentRef?: string;
    /** The enrolled device whose enrollment the profile's identity may take over (renewal, re-enrollment link). */
    enrollmentId?: string | null;
  }): Promise<GeneratedProfile> {
    const { pki, clock, store } = this.deps;
    const now = clock();
    const topic = await this.topic();
    const prefix = await this.#identifierPrefix();
    const enrollmentRef = options.enrollmentRef ?? newEnrollmentRef();
    const enrollmentId = options.enrollmentId ?? null;
    const roots = await this.#roots();
    const intermediate = pki.authority.intermediate;
    const subject: [string, string][] = [
      ['O', this.settings.organization],
      ['CN', enrollmentRef],
    ];
    const entry: Omit<NewProfile, 'profile'> = {};
    let identity: IdentityPayload;
    let identityExpiry: Date;
    const certificates: ProfileRecord['certificates'] = [
      ...roots.map((r) => ({ certificateId: r.id, role: 'anchor' as const })),
      { certificateId: intermediate.id, role: 'intermediate' },
    ];
    if (options.identity === 'scep') {
      const { challenge, record } = newChallenge(now, {
        ttlMs: this.settings.challengeTtlMs,
        purpose: 'enrollment-profile',
        enrollmentRef,
        enrollmentId,
        createdBy: options.createdBy,
      });
      entry.challenge = record;
      identity = {
        kind: 'scep',
        url: this.settings.scepUrl,
        challenge,
        subject,
        caFingerprint: createHash('sha1').update(intermediate.der).digest(),
        keysize: 2048,
      };
      // The identity SCEP will issue: its validity is the profile's too.
      identityExpiry = new Date(Math.min(addDays(now, this.settings.identityDays).getTime(), intermediate.notAfter.getTime()));
    } else {
      const keys = await generateKey('rsa-2048');
      const issued = pki.authority.prepare({
        role: 'device-identity',
        template: {
          subject: subject as [never, string][],
          publicKey: keys.publicKey,
          keyUsage: ['digitalSignature', 'keyEncipherment'],
          extendedKeyUsage: [EKU.clientAuth],
        },
        validityDays: this.settings.identityDays,
        servesEnrollment: enrollmentId,
      });
      entry.certificates = [issued];
      certificates.push({ certificateId: issued.certificate.id, role: 'identity' });
      const password = randomBytes(18).toString('base64url');
      identity = {
        kind: 'pkcs12',
        password,
        pkcs12: buildPkcs12({
          certificate: issued.certificate.der,
          privateKey: keys.privateKey,
          chain: [intermediate.der],
          password,
          friendlyName: enrollmentRef,
          encryption: this.settings.pkcs12Encryption,
        }),
      };
      identityExpiry = issued.certificate.notAfter;
    }
    const urls = this.urls();
    const built = enrollmentProfile({
      identifierPrefix: prefix,
      organization: this.settings.organization,
      anchors: roots.map((r) => r.der),
      intermediates: [intermediate.der],
      identity,
      mdm: {
        serverUrl: urls.serverUrl,
        checkInUrl: urls.checkInUrl,
        topic,
        signMessage: this.settings.signMessage,
        pinServerUrl: this.settings.pinServerUrl,
      },
      uuid,
    });
    const plist = serializePlist(built.profile);
    const signed = options.sign ?? true;
    const record: ProfileRecord = {
      id: `prf-${randomUUID()}`,
      kind: 'enrollment',
      payloadIdentifier: built.profile.PayloadIdentifier as string,
      payloadUuid: built.payloadUuid,
      enrollmentRef,
      identityKind: options.identity,
      challengeId: entry.challenge?.id ?? null,
      signerCertificateId: signed ? pki.profileSigning.certificate.id : null,
      createdBy: options.createdBy,
      createdAt: now,
      effectiveExpiry: new Date(
        Math.min(identityExpiry.getTime(), intermediate.notAfter.getTime(), ...roots.map((r) => r.notAfter.getTime())),
      ),
      certificates,
    };
    try {
      await store.insertProfile({ ...entry, profile: record, consumesLink: options.link ? { id: options.link.id, now } : undefined });
    } catch (err) {
      if (err instanceof ConflictError) throw new ProfileError('enrollment link already used or expired', 410);
      throw err;
    }
    await this.deps.audit.record({
      actor: options.createdBy,
      action: 'profile.enrollment-created',
      target: record.id,
      outcome: 'ok',
      detail: {
        enrollmentRef,
        identity: options.identity,
        signed,
        effectiveExpiry: record.effectiveExpiry.toISOString(),
        link: options.link?.id ?? null,
        servesEnrollment: enrollmentId,
      },
    });
    return { body: this.#sign(plist, signed), plist, record };
  }

  /** The trust profile: made once per set of active roots, then served from memory. */
  async trust(options: { createdBy: string; sign?: boolean }): Promise<GeneratedProfile> {
    const roots = await this.#roots();
    const signed = options.sign ?? true;
    const key = `${signed}:${roots.map((r) => r.fingerprintSha256).join(',')}:${this.deps.pki.profileSigning.certificate.id}`;
    if (this.#trustCache?.key === key) return this.#trustCache.generated;
    const built = trustProfile({
      identifierPrefix: await this.#identifierPrefix(),
      organization: this.settings.organization,
      anchors: roots.map((r) => r.der),
      uuid,
    });
    const plist = serializePlist(built.profile);
    const now = this.deps.clock();
    const record: ProfileRecord = {
      id: `prf-${randomUUID()}`,
      kind: 'trust',
      payloadIdentifier: built.profile.PayloadIdentifier as string,
      payloadUuid: built.payloadUuid,
      enrollmentRef: null,
      identityKind: null,
      challengeId: null,
      signerCertificateId: signed ? this.deps.pki.profileSigning.certificate.id : null,
      createdBy: options.createdBy,
      createdAt: now,
      effectiveExpiry: new Date(Math.min(...roots.map((r) => r.notAfter.getTime()))),
      certificates: roots.map((r) => ({ certificateId: r.id, role: 'anchor' as const })),
    };
    await this.deps.store.insertProfile({ profile: record });
    await this.deps.audit.record({
      actor: options.createdBy,
      action: 'profile.trust-created',
      target: record.id,
      outcome: 'ok',
      detail: { roots: roots.length, signed },
    });
    const generated = { body: this.#sign(plist, signed), plist, record };
    this.#trustCache = { key, generated };
    return generated;
  }

  async createLink(options: {
    identity: IdentityKind;
    createdBy: string;
    ttlMs?: number;
    /** A re-enrollment link: its identity may take over exactly this enrolled device (wiped and re-enrolled). */
    device?: string;
  }): Promise<{ url: string; record: EnrollmentLinkRecord }> {
    if (options.device !== undefined && !(await this.deps.store.getEnrollment(options.device)))
      throw new ProfileError(`no enrollment ${JSON.stringify(options.device)}: a re-enrollment link names an enrolled device`, 404);
    const { id, text, secretHash } = mintSecret();
    const now = this.deps.clock();
    const record: EnrollmentLinkRecord = {
      id,
      secretHash,
      identityKind: options.identity,
      enrollmentId: options.device ?? null,
      createdBy: options.createdBy,
      createdAt: now,
      expiresAt: new Date(now.getTime() + (options.ttlMs ?? this.settings.enrollLinkTtlMs)),
      usedAt: null,
      profileId: null,
    };
    await this.deps.store.insertEnrollmentLink(record);
    await this.deps.audit.record({
      actor: options.createdBy,
      action: 'enroll-link.created',
      target: id,
      outcome: 'ok',
      detail: { identity: options.identity, expiresAt: record.expiresAt.toISOString(), device: record.enrollmentId },
    });
    return { url: this.urls().enrollUrl(text), record };
  }

  /** Answers GET /enroll/<token>: a fresh signed enrollment profile, once. */
  async redeemLink(token: string, peer: string): Promise<GeneratedProfile> {
    const parsed = parseSecret(token);
    const link = parsed ? await this.deps.store.getEnrollmentLink(parsed.id) : undefined;
    const refuse = async (status: 404 | 410, reason: string): Promise<never> => {
      await this.deps.audit.record({
        actor: `ip:${peer}`,
        action: 'enroll-link.redeem',
        target: parsed?.id ?? null,
        outcome: 'denied',
        reason,
      });
      throw new ProfileError(reason, status);
    };
    if (!parsed || !secretMatches(parsed.secret, link?.secretHash)) return refuse(404, 'unknown enrollment link');
    if (link!.usedAt) return refuse(410, 'enrollment link already used');
    if (link!.expiresAt <= this.deps.clock()) return refuse(410, 'enrollment link expired');
    try {
      return await this.enrollment({
        identity: link!.identityKind,
        createdBy: `link:${link!.id}`,
        link: { id: link!.id },
        enrollmentId: link!.enrollmentId,
      });
    } catch (err) {
      if (err instanceof ProfileError) return refuse(err.status === 409 ? 410 : (err.status as 404 | 410), err.message);
      throw err;
    }
  }
}
