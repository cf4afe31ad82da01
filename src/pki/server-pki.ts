import { X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import type { AuditLog } from '../admin/audit.ts';
import { DAY_MS, type Clock } from '../clock.ts';
import type { CertificateRecord, CertificateRole, NewCertificate, Store } from '../store/types.ts';
import { generateKey, keyAlgorithmOf, type KeyAlgorithm, type LeafAlgorithm } from './algorithms.ts';
import { publicKeyFromSpki } from './public-keys.ts';
import { CertificateAuthority, inventoryRecord, validityFrom } from './authority.ts';
import { buildCertificate, certificateParts, type CertificateTemplate } from './certificate.ts';
import type { Keyring } from './keyring.ts';
import * as templates from './templates.ts';

export interface PkiSettings {
  organization: string;
  rootAlgorithm: KeyAlgorithm;
  rootDays: number;
  intermediateDays: number;
  tlsDays: number;
  tlsRenewBeforeDays: number;
  signingDays: number;
  hostnames: string[];
  /**
   * The intermediate's key, which signs every leaf (device identities, TLS, profile signing, SCEP RA): RSA-2048 by
   * default, or P-256. Used when an intermediate is made (first run, rollover).
   */
  issuingAlgorithm?: LeafAlgorithm;
  /** The TLS certificate's key: a P-256 key makes each full handshake cheaper. A change re-issues it at start. */
  tlsAlgorithm?: LeafAlgorithm;
}

export interface Identity {
  certificate: CertificateRecord;
  privateKey: KeyObject;
}

export interface ServerPki {
  authority: CertificateAuthority;
  tls: Identity;
  profileSigning: Identity;
  /** Signs CertReps and receives SCEP requests' key transport, so the CA key does neither. */
  scepRa: Identity;
}

/** The newest active certificate of a role: during a rollover the successor is the one in use. */
export async function current(store: Store, role: CertificateRole): Promise<CertificateRecord | undefined> {
  const active = await store.listCertificates({ role, status: 'active' });
  return active.sort((a, b) => b.notAfter.getTime() - a.notAfter.getTime() || b.createdAt.getTime() - a.createdAt.getTime())[0];
}

async function identity(keyring: Keyring, certificate: CertificateRecord): Promise<Identity> {
  if (!certificate.keyId) throw new Error(`certificate ${certificate.id} (${certificate.role}) has no key in the store`);
  return { certificate, privateKey: await keyring.open(certificate.keyId) };
}

/** One spelling per name, so '::1' and '0:0:0:0:0:0:0:1' compare equal. */
function canonicalName(name: string): string {
  return isIP(name) === 6 ? new URL(`http://[${name}]/`).hostname : name.toLowerCase();
}

function sansOf(der: Buffer): string[] {
  const san = new X509Certificate(der).subjectAltName ?? '';
  return san
    .split(', ')
    .filter(Boolean)
    .map((entry) => canonicalName(entry.replace(/^(DNS|IP Address):/, '')))
    .sort();
}

/** A certificate the server itself holds the key of and uses for one service. */
interface ServiceIdentitySpec {
  role: CertificateRole;
  service: string;
  validityDays: number;
  template: (publicKey: KeyObject) => Omit<CertificateTemplate, 'notBefore' | 'notAfter'>;
  /** Its key; RSA-2048 unless said (the SCEP RA must stay RSA: SCEP's key transport encrypts to it). */
  keyAlgorithm?: LeafAlgorithm;
  /** A role-specific reason to re-issue (the TLS hostnames changed). */
  staleBecause?: (certificate: CertificateRecord) => string | undefined;
}

/** Why a service certificate must be re-issued now, or undefined when it can stay. */
function reissueReason(
  existing: CertificateRecord | undefined,
  spec: ServiceIdentitySpec,
  intermediate: CertificateRecord,
  settings: PkiSettings,
  now: Date,
  force?: string,
): string | undefined {
  if (!existing) return 'none yet';
  if (force) return force;
  const specific = spec.staleBecause?.(existing);
  if (specific) return specific;
  const wanted = spec.keyAlgorithm ?? 'rsa-2048';
  const held = keyAlgorithmOf(publicKeyFromSpki(certificateParts(existing.der).spki));
  if (held !== wanted) return `key algorithm changed to ${wanted}`;
  if (existing.notAfter.getTime() <= now.getTime() + settings.tlsRenewBeforeDays * DAY_MS) return 'renewal window open';
  if (existing.issuerId !== intermediate.id) return 'issuing CA changed';
  return undefined;
}

/** Loads a service identity, issuing (and superseding) it when it is missing or due. */
async function ensureServiceIdentity(
  deps: { store: Store; keyring: Keyring; clock: Clock; audit: AuditLog },
  authority: CertificateAuthority,
  settings: PkiSettings,
  spec: ServiceIdentitySpec,
  force?: string,
): Promise<Identity> {
  const existing = await current(deps.store, spec.role);
  const reason = reissueReason(existing, spec, authority.intermediate, settings, deps.clock(), force);
  if (!reason && existing) return identity(deps.keyring, existing);
  const keys = await generateKey(spec.keyAlgorithm ?? 'rsa-2048');
  const certificate = await authority.issue({
    role: spec.role,
    template: spec.template(keys.publicKey),
    validityDays: spec.validityDays,
    privateKey: keys.privateKey,
    dependants: [{ kind: 'service', ref: spec.service }],
    supersedes: existing ? [existing.id] : [],
  });
  await deps.audit.record({
    actor: 'system',
    action: `pki.${spec.role}-issued`,
    target: certificate.fingerprintSha256,
    outcome: 'ok',
    reason,
    detail: { supersedes: existing?.fingerprintSha256 ?? null },
  });
  return { certificate, privateKey: keys.privateKey };
}

/** An intermediate (pathLen 0) under `root`, never outliving it; not stored yet. */
async function newIntermediate(
  keyring: Keyring,
  now: Date,
  settings: PkiSettings,
  root: { certificate: CertificateRecord; privateKey: KeyObject },
): Promise<NewCertificate> {
  const keys = await generateKey(settings.issuingAlgorithm ?? 'rsa-2048');
  const der = buildCertificate(
    {
      ...templates.intermediateCa(settings.organization, now.toISOString().slice(0, 10), keys.publicKey),
      ...validityFrom(now, settings.intermediateDays, root.certificate.notAfter),
    },
    { certificate: root.certificate.der, privateKey: root.privateKey },
  );
  const key = keyring.seal(keys.privateKey);
  return { certificate: inventoryRecord(der, 'intermediate', root.certificate.id, key.id, now), key };
}

/**
 * A new intermediate under the current root. It issues from now on; the old one stays active, so identities it
 * issued are accepted until they are renewed or it expires. The caller then re-issues the leaves (ensureServerPki
 * does, seeing the issuing CA changed).
 */
export async function rolloverIntermediate(
  deps: { store: Store; keyring: Keyring; clock: Clock; audit: AuditLog },
  settings: PkiSettings,
  /** The root to issue under: by default the current intermediate's; a successor root at a root switch. */
  underRootId?: string,
): Promise<CertificateRecord> {
  const previous = await current(deps.store, 'intermediate');
  const rootId = underRootId ?? previous?.issuerId;
  const root = rootId ? await deps.store.getCertificate(rootId) : undefined;
  if (!root?.keyId || root.status !== 'active') throw new Error('no active root with a key to sign a new intermediate');
  const entry = await newIntermediate(deps.keyring, deps.clock(), settings, {
    certificate: root,
    privateKey: await deps.keyring.open(root.keyId),
  });
  await deps.store.insertCertificates([entry]);
  await deps.audit.record({
    actor: 'lifecycle',
    action: 'pki.intermediate-rolled-over',
    target: entry.certificate.fingerprintSha256,
    outcome: 'ok',
    detail: { previous: previous?.fingerprintSha256 ?? null, notAfter: entry.certificate.notAfter.toISOString() },
  });
  return entry.certificate;
}

/**
 * A successor root, self-signed, for a root rollover. It is delivered to devices (profiles carry every active root)
 * and issues nothing until the switch makes an intermediate under it.
 */
export async function createRootSuccessor(
  deps: { store: Store; keyring: Keyring; clock: Clock; audit: AuditLog },
  settings: PkiSettings,
): Promise<CertificateRecord> {
  const now = deps.clock();
  const keys = await generateKey(settings.rootAlgorithm);
  const der = buildCertificate(
    { ...templates.rootCa(settings.organization, now.toISOString().slice(0, 10), keys.publicKey), ...validityFrom(now, settings.rootDays) },
    { selfSigningKey: keys.privateKey },
  );
  const key = deps.keyring.seal(keys.privateKey);
  const root = inventoryRecord(der, 'root', null, key.id, now);
  await deps.store.insertCertificates([{ certificate: root, key }]);
  await deps.audit.record({
    actor: 'lifecycle',
    action: 'pki.root-successor-created',
    target: root.fingerprintSha256,
    outcome: 'ok',
    detail: { notAfter: root.notAfter.toISOString() },
  });
  return root;
}

/** Creates root and intermediate together so a half-made CA can never be stored. */
async function createCa(store: Store, keyring: Keyring, clock: Clock, settings: PkiSettings): Promise<void> {
  const now = clock();
  const label = now.toISOString().slice(0, 10);
  const rootKeys = await generateKey(settings.rootAlgorithm);
  const rootDer = buildCertificate(
    { ...templates.rootCa(settings.organization, label, rootKeys.publicKey), ...validityFrom(now, settings.rootDays) },
    { selfSigningKey: rootKeys.privateKey },
  );
  const rootKey = keyring.seal(rootKeys.privateKey);
  const root = inventoryRecord(rootDer, 'root', null, rootKey.id, now);

  const intermediate = await newIntermediate(keyring, now, settings, { certificate: root, privateKey: rootKeys.privateKey });
  const entries: NewCertificate[] = [{ certificate: root, key: rootKey }, intermediate];
  await store.insertCertificates(entries);
}

/**
 * Loads the server's PKI, creating on first run what is missing: the CA, the TLS certificate (re-issued when
 * the configured hostnames change or its renewal window opens) and the profile-signing identity.
 */
export async function ensureServerPki(
  deps: { store: Store; keyring: Keyring; clock: Clock; audit: AuditLog },
  settings: PkiSettings,
  /** Roles to re-issue now whatever their state, with the reason to record (the lifecycle runner's decisions). */
  force: Partial<Record<CertificateRole, string>> = {},
): Promise<ServerPki> {
  const { store, keyring, clock, audit } = deps;
  if (!(await current(store, 'root'))) {
    await createCa(store, keyring, clock, settings);
    await audit.record({ actor: 'system', action: 'pki.ca-created', outcome: 'ok', detail: { rootAlgorithm: settings.rootAlgorithm } });
  }
  // The issuing chain is the newest intermediate and the root that signed it: a successor root made for a rollover
  // issues nothing until an intermediate under it is made (the switch).
  const intermediate = await current(store, 'intermediate');
  const root = intermediate?.issuerId ? await store.getCertificate(intermediate.issuerId) : undefined;
  if (!root || !intermediate) throw new Error('the inventory has a root CA but no active intermediate');
  const authority = new CertificateAuthority(store, keyring, clock, root, intermediate, await keyring.open(intermediate.keyId ?? ''));

  const ensure = (spec: ServiceIdentitySpec) => ensureServiceIdentity(deps, authority, settings, spec, force[spec.role]);
  const tls = await ensure({
    role: 'tls',
    service: 'https-listener',
    validityDays: settings.tlsDays,
    template: (key) => templates.tlsServer(settings.organization, settings.hostnames, key),
    keyAlgorithm: settings.tlsAlgorithm,
    staleBecause: (c) =>
      sansOf(c.der).join(',') !== settings.hostnames.map(canonicalName).sort().join(',') ? 'hostnames changed' : undefined,
  });
  const profileSigning = await ensure({
    role: 'profile-signing',
    service: 'profile-signing',
    validityDays: settings.signingDays,
    template: (key) => templates.profileSigning(settings.organization, key),
  });
  const scepRa = await ensure({
    role: 'scep-ra',
    service: 'scep',
    validityDays: settings.signingDays,
    template: (key) => templates.scepRa(settings.organization, key),
  });
  return { authority, tls, profileSigning, scepRa };
}

/**
 * The server's PKI as it stands, issuing nothing: for commands that use the PKI of a data directory a server may be
 * serving from (enrollment links, profiles), which must never re-issue or supersede what it serves.
 */
export async function loadServerPki(deps: { store: Store; keyring: Keyring; clock: Clock }): Promise<ServerPki | undefined> {
  const { store, keyring, clock } = deps;
  const intermediate = await current(store, 'intermediate');
  const root = intermediate?.issuerId ? await store.getCertificate(intermediate.issuerId) : undefined;
  const [tls, profileSigning, scepRa] = await Promise.all(
    (['tls', 'profile-signing', 'scep-ra'] as const).map((role) => current(store, role)),
  );
  if (!intermediate || !root || !tls || !profileSigning || !scepRa) return undefined;
  const authority = new CertificateAuthority(store, keyring, clock, root, intermediate, await keyring.open(intermediate.keyId ?? ''));
  return {
    authority,
    tls: await identity(keyring, tls),
    profileSigning: await identity(keyring, profileSigning),
    scepRa: await identity(keyring, scepRa),
  };
}
