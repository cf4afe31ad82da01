import { createPrivateKey, createPublicKey, randomUUID, sign, type KeyObject } from 'node:crypto';
import type { AuditLog } from '../admin/audit.ts';
import { DAY_MS, type Clock } from '../clock.ts';
import { OperatorError } from '../errors.ts';
import { generateKey } from '../pki/algorithms.ts';
import { inventoryRecord } from '../pki/authority.ts';
import { certificateParts, encodeName, nameAttributes, readCertificate, toPem } from '../pki/certificate.ts';
import { buildCsr } from '../pki/csr.ts';
import * as der from '../pki/der.ts';
import type { Keyring } from '../pki/keyring.ts';
import { readPkcs12, Pkcs12Error } from '../pki/pkcs12-read.ts';
import { serializePlist } from '../plist/serialize.ts';
import type { CertificateRecord, CertificateRequestRecord, Store } from '../store/types.ts';

export const TOPIC_PREFIX = 'com.apple.mgmt.';
export const EXPIRY_WARNING_DAYS = [60, 30, 14, 7, 1];

/** The APNs topic of a push certificate: its subject's UID attribute (OID 0.9.2342.19200300.100.1.1). */
export function topicOf(certificate: Buffer): string | undefined {
  return nameAttributes(certificateParts(certificate).subject).find(([, , attribute]) => attribute === 'UID')?.[1];
}

/** The tightest expiry warning a push certificate has reached, or undefined. */
export function expiryWarning(certificate: CertificateRecord, now: Date): { days: number; message: string } | undefined {
  const daysLeft = (certificate.notAfter.getTime() - now.getTime()) / DAY_MS;
  const threshold = [...EXPIRY_WARNING_DAYS].reverse().find((d) => daysLeft <= d);
  if (threshold === undefined) return undefined;
  return {
    days: threshold,
    message:
      daysLeft <= 0
        ? `the APNs push certificate expired on ${certificate.notAfter.toISOString()}: devices cannot be woken; renew it with the same Apple ID`
        : `the APNs push certificate expires in ${Math.ceil(daysLeft)} day(s) (${certificate.notAfter.toISOString()}); renew it with the same Apple ID and topic`,
  };
}

interface Deps {
  store: Store;
  keyring: Keyring;
  clock: Clock;
  audit: AuditLog;
}

/** A customer CSR for Apple's push certificate portal; the key is sealed like every key. */
export async function createPushCsr(deps: Deps, options: { organization: string; actor: string }): Promise<CertificateRequestRecord> {
  const keys = await generateKey('rsa-2048');
  const subject: [never, string][] = [
    ['O', options.organization],
    ['CN', `${options.organization} MDM push`],
  ] as never;
  const csr = buildCsr({ subject: encodeName(subject), publicKey: keys.publicKey, privateKey: keys.privateKey });
  const key = deps.keyring.seal(keys.privateKey);
  const record: CertificateRequestRecord = {
    id: `csr-${randomUUID()}`,
    purpose: 'push',
    subject: `O=${options.organization}, CN=${options.organization} MDM push`,
    keyId: key.id,
    der: csr,
    createdAt: deps.clock(),
    fulfilledBy: null,
  };
  await deps.store.insertCertificateRequest(record, key);
  await deps.audit.record({ actor: options.actor, action: 'push.csr-created', target: record.id, outcome: 'ok' });
  return record;
}

function spki(key: KeyObject): Buffer {
  return createPublicKey(key).export({ type: 'spki', format: 'der' }) as Buffer;
}

function pemBlocks(text: string, label: string): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]+?)-----END ${label}-----`, 'g');
  return [...text.matchAll(re)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}

function certificatesOf(text: string, file: string): Buffer[] {
  const certs = pemBlocks(text, 'CERTIFICATE');
  if (certs.length === 0) throw new OperatorError(`${file} holds no PEM certificate`);
  return certs;
}

/**
 * The vendor-signed PushCertificateRequest that Apple's portal takes (base64 of an XML plist): the customer CSR,
 * the vendor's certificate chain (vendor, Apple intermediate, Apple root — given as files, nothing is downloaded) and
 * an RSA SHA-256 signature over the CSR DER by the vendor's key.
 */
export function vendorSign(options: { csr: Buffer; vendorCertificates: Buffer[]; vendorKey: KeyObject }): string {
  const leaf = options.vendorCertificates[0];
  if (!leaf) throw new OperatorError('the vendor chain is empty');
  if (!spki(options.vendorKey).equals(certificateParts(leaf).spki))
    throw new OperatorError('the vendor key does not match the vendor certificate (the first in the chain)');
  const plist = serializePlist({
    PushCertRequestCSR: options.csr.toString('base64'),
    PushCertCertificateChain: options.vendorCertificates.map((c) => toPem(c)).join(''),
    PushCertSignature: sign('sha256', options.csr, options.vendorKey).toString('base64'),
  });
  return plist.toString('base64');
}

export { certificatesOf, pemBlocks };

export interface ImportInput {
  /** PEM (certificate, optionally with its key), DER certificate, or PKCS#12. */
  data: Buffer;
  password?: string;
  /** A separate key file (PEM, possibly encrypted with `keyPassphrase`). */
  key?: Buffer;
  keyPassphrase?: string;
  forceNewTopic?: boolean;
  actor: string;
}

function parseKey(pem: Buffer, passphrase?: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, format: 'pem', passphrase });
  } catch (err) {
    throw new OperatorError(
      `the key cannot be read${passphrase ? ' (wrong passphrase?)' : ' (encrypted? give its passphrase)'}: ${(err as Error).message.split('\n')[0]}`,
    );
  }
}

/** Reads what an administrator hands in: certificates and perhaps a key. */
async function readInput(input: ImportInput): Promise<{ certificates: Buffer[]; key?: KeyObject }> {
  const text = input.data.toString('latin1');
  if (text.includes('-----BEGIN')) {
    const certificates = pemBlocks(text, 'CERTIFICATE');
    if (certificates.length === 0) throw new OperatorError('the PEM file holds no certificate');
    const keyPem = /-----BEGIN ([A-Z ]*PRIVATE KEY)-----[\s\S]+?-----END \1-----/.exec(text)?.[0];
    return { certificates, key: keyPem ? parseKey(Buffer.from(keyPem), input.keyPassphrase) : undefined };
  }
  let first: der.Node | undefined;
  try {
    first = der.children(der.parse(input.data))[0];
  } catch {
    throw new OperatorError('the file is neither PEM, a DER certificate nor PKCS#12');
  }
  if (first?.tag === der.TAG.INTEGER) {
    if (input.password === undefined) throw new OperatorError('this is a PKCS#12 file: give its password');
    try {
      const contents = await readPkcs12(input.data, input.password);
      return { certificates: contents.certificates, key: contents.privateKey };
    } catch (err) {
      if (err instanceof Pkcs12Error) throw new OperatorError(err.message);
      // A malformed structure inside it: the administrator's file is at fault, not the server.
      if (err instanceof der.DerError) throw new OperatorError(`the PKCS#12 file is malformed: ${err.message}`);
      throw err;
    }
  }
  return { certificates: [Buffer.from(input.data)] };
}

/** A topic different from the installed certificate's: refused unless forced, because every device would be orphaned. */
export class PushTopicChange extends OperatorError {
  constructor(
    readonly currentTopic: string | undefined,
    readonly newTopic: string,
  ) {
    super(
      `the new certificate's topic ${newTopic} differs from the current ${currentTopic}: every enrolled device would be orphaned (they only accept pushes for their topic). Renew with the same Apple ID, or pass --force-new-topic if you mean it`,
    );
  }
}

/** What an import would do, checked and nothing changed: the console shows it before the administrator confirms. */
export interface PushImportPreview {
  topic: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  current: { topic: string | undefined; notAfter: Date; fingerprintSha256: string } | null;
  /** Where the key comes from: the file itself or a CSR made here. */
  keySource: 'supplied' | 'csr';
}

/** Every check importPushCertificate makes, nothing written; a refusal throws the same OperatorError. */
export async function previewPushCertificate(deps: Deps, input: ImportInput): Promise<PushImportPreview> {
  const p = await preparePushImport(deps, input);
  return {
    topic: p.topic,
    subject: p.facts.subject,
    notBefore: p.facts.notBefore,
    notAfter: p.facts.notAfter,
    current: p.current ? { topic: p.currentTopic, notAfter: p.current.notAfter, fingerprintSha256: p.current.fingerprintSha256 } : null,
    keySource: p.newKey ? 'supplied' : 'csr',
  };
}

async function preparePushImport(deps: Deps, input: ImportInput) {
  const now = deps.clock();
  const { certificates, key: bundledKey } = await readInput(input);
  let leaf: Buffer | undefined;
  let topic: string | undefined;
  for (const c of certificates) {
    let t: string | undefined;
    try {
      t = topicOf(c);
    } catch {
      throw new OperatorError('a certificate in the file is not a valid X.509 certificate');
    }
    if (t) {
      leaf = c;
      topic = t;
      break;
    }
  }
  if (!leaf || !topic) throw new OperatorError('the certificate has no UID (topic) in its subject: it is not an APNs push certificate');
  if (!topic.startsWith(TOPIC_PREFIX))
    throw new OperatorError(`the topic '${topic}' does not start with ${TOPIC_PREFIX}: this is not an MDM push certificate`);
  const facts = readCertificate(leaf);
  if (await deps.store.getCertificateByFingerprint(facts.fingerprintSha256))
    throw new OperatorError('this push certificate is already in the inventory (installed before)');
  if (facts.notAfter <= now) throw new OperatorError(`the push certificate expired on ${facts.notAfter.toISOString()}`);
  // A certificate Apple issued a moment ago may start a little after our clock; beyond a few minutes it is wrong.
  if (facts.notBefore.getTime() > now.getTime() + 5 * 60_000)
    throw new OperatorError(`the push certificate is not valid before ${facts.notBefore.toISOString()}`);

  const leafSpki = certificateParts(leaf).spki;
  const supplied = input.key ? parseKey(input.key, input.keyPassphrase) : bundledKey;
  let keyId: string | undefined;
  let newKey: KeyObject | undefined;
  let fulfils: string | undefined;
  if (supplied) {
    if (!spki(supplied).equals(leafSpki)) throw new OperatorError('the private key does not match the push certificate');
    newKey = supplied;
  } else {
    for (const request of await deps.store.listCertificateRequests('push')) {
      const key = await deps.keyring.open(request.keyId);
      if (spki(key).equals(leafSpki)) {
        keyId = request.keyId;
        fulfils = request.id;
        break;
      }
    }
    if (!keyId)
      throw new OperatorError(
        'no key matches the push certificate: give --key, a PKCS#12 with the key, or import the certificate Apple issued for a CSR made here',
      );
  }

  const [current] = await deps.store.listCertificates({ role: 'push', status: 'active' });
  const currentTopic = current ? topicOf(current.der) : undefined;
  const topicChanges = Boolean(current && currentTopic !== topic);
  if (topicChanges && !input.forceNewTopic) throw new PushTopicChange(currentTopic, topic);
  return { now, leaf, topic, facts, newKey, keyId, fulfils, current, currentTopic, topicChanges };
}

/**
 * Imports Apple's push certificate. It must carry a `com.apple.mgmt.` topic, be within its validity and match a key
 * (its own, a supplied one, or a stored CSR's). A renewal with another topic is refused, because every enrolled
 * device would be orphaned, unless `forceNewTopic` (audited). On any refusal the current certificate stays.
 */
export async function importPushCertificate(deps: Deps, input: ImportInput): Promise<CertificateRecord> {
  const { now, leaf, topic, newKey, keyId, fulfils, current, currentTopic, topicChanges } = await preparePushImport(deps, input);
  if (topicChanges) {
    await deps.audit.record({
      actor: input.actor,
      action: 'push.topic-changed',
      outcome: 'ok',
      reason: 'forced by the administrator',
      detail: { from: currentTopic, to: topic },
    });
  }
  const sealed = newKey ? deps.keyring.seal(newKey) : undefined;
  const record = inventoryRecord(leaf, 'push', null, sealed?.id ?? keyId!, now);
  await deps.store.importCertificate(
    { certificate: record, key: sealed, dependants: [{ kind: 'service', ref: 'apns' }] },
    { supersedes: current ? [current.id] : [], fulfils },
  );
  await deps.audit.record({
    actor: input.actor,
    action: 'push.imported',
    target: record.fingerprintSha256,
    outcome: 'ok',
    detail: { topic, notAfter: record.notAfter.toISOString(), supersedes: current?.fingerprintSha256 ?? null },
  });
  return record;
}
