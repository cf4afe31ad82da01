import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { appleMdmSignature } from '../../mdm/sign-message.ts';
import * as cms from '../../pki/cms.ts';
import { buildCertificate, encodeName, readCertificate, toPem } from '../../pki/certificate.ts';
import { buildCsr } from '../../pki/csr.ts';
import { parsePlistDict } from '../../plist/parse.ts';
import { serializePlist } from '../../plist/serialize.ts';
import type { PlistDict } from '../../plist/types.ts';
import { buildPkiRequest, readCertRep } from '../../scep/client.ts';
import type { Behaviour } from './fleet.ts';
import type { ClientIdentity, ConnectOutcome, DeviceConnection, DeviceTrust, HttpResponse } from './network.ts';
import type { CertificateCache, TrustVerdict } from './trust.ts';

const DAY = 86_400_000;

/** The server as a device reaches it: real TLS connections on loopback, at the simulated time. */
export interface ServerLink {
  connect(trust: DeviceTrust, now: Date, identity?: ClientIdentity): Promise<ConnectOutcome>;
  now(): Date;
  topic: string;
  /** Counts every MDM message sent. */
  sent(): void;
}

/**
 * RSA keys for the simulated devices, generated once (key generation would otherwise dominate a large run); device i
 * always uses key i mod size. Each key's self-signed SCEP requester certificate is made once too: it only carries the
 * key to the RA.
 */
interface PoolKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  requester: Buffer;
  pem: string;
}

/** Generated once per process and shared by every simulation it runs (a sweep runs a dozen). */
const generatedKeys: { privateKey: KeyObject; publicKey: KeyObject }[] = [];

export class KeyPool {
  readonly #entries: Partial<PoolKey>[];

  constructor(
    size: number,
    private readonly validity: { notBefore: Date; notAfter: Date },
  ) {
    while (generatedKeys.length < size) generatedKeys.push(generateKeyPairSync('rsa', { modulusLength: 2048 }));
    this.#entries = generatedKeys.slice(0, size).map((k) => ({ ...k }));
  }

  key(i: number): PoolKey {
    const entry = this.#entries[i % this.#entries.length]!;
    entry.requester ??= buildCertificate(
      { subject: [['CN', 'SCEP requester']], publicKey: entry.publicKey!, ...this.validity, keyUsage: ['digitalSignature'] },
      { selfSigningKey: entry.privateKey! },
    );
    entry.pem ??= entry.privateKey!.export({ type: 'pkcs8', format: 'pem' }) as string;
    return entry as PoolKey;
  }
}

export type Untrusted = Extract<TrustVerdict, { trusted: false }>;
export type SessionOutcome = 'done' | 'not-now' | { refused: number; reason: string } | { untrusted: Untrusted };

/** A profile as installed on the device: what it added to the trust store, and what its MDM payload pins. */
interface InstalledProfile {
  anchors: Map<string, Buffer>;
  pinned?: Set<string>;
}

interface DeviceIdentity {
  certificate: Buffer;
  key: KeyObject;
  notAfter: Date;
  tls: ClientIdentity;
}

const sha256 = (der: Buffer) => createHash('sha256').update(der).digest('hex');
const sha1 = (der: Buffer) => createHash('sha1').update(der).digest();

/**
 * A simulated Apple device speaking the real protocol over real TLS: it checks the server's chain against the roots
 * its own profiles installed (pinned ones only, when its MDM payload pins), presents its identity by mutual TLS or by
 * Mdm-Signature, verifies and installs signed profiles (a profile with the same PayloadIdentifier replaces the
 * installed one, and the roots it no longer carries are gone), runs GetCACert and checks CAFingerprint and the RA's
 * validity before SCEP, answers NotNow when busy and Error when an installation fails.
 */
export class SimulatedDevice {
  identity?: DeviceIdentity;
  readonly profiles = new Map<string, InstalledProfile>();
  identityRenewals = 0;
  /** Sessions in which the server accepted the device's expired identity to renew it (rescue renewal). */
  rescues = 0;
  /** Why the last profile installation failed, for the loss report. */
  lastFailure?: string;
  #idleSignature?: { certificate: Buffer; value: string };
  #scepUntrusted?: Untrusted;

  constructor(
    readonly udid: string,
    readonly behaviour: Behaviour,
    private readonly random: () => number,
    private readonly link: ServerLink,
    private readonly keys: KeyPool,
    private readonly keyIndex: number,
    /** How the device presents its identity: mutual TLS, or an Mdm-Signature header on every message. */
    readonly transport: 'mtls' | 'signature',
    private readonly cache: CertificateCache,
  ) {}

  get notAfter(): Date {
    return this.identity?.notAfter ?? new Date(0);
  }

  /** The device's trust store for ServerURL: every installed profile's roots, or the pinned ones. */
  trust(profiles: ReadonlyMap<string, InstalledProfile> = this.profiles): DeviceTrust {
    const anchors = new Map<string, Buffer>();
    let pinned: Set<string> | undefined;
    for (const p of profiles.values()) {
      for (const [fp, der] of p.anchors) anchors.set(fp, der);
      if (p.pinned) pinned = p.pinned;
    }
    return { anchors, pinned };
  }

  #connect(identity = this.identity): Promise<ConnectOutcome> {
    return this.link.connect(this.trust(), this.link.now(), this.transport === 'mtls' ? identity?.tls : undefined);
  }

  #send(connection: DeviceConnection, message: PlistDict, path = '/mdm/server'): Promise<HttpResponse> {
    const body = serializePlist({ UDID: this.udid, ...message });
    this.link.sent();
    const headers: Record<string, string> = {
      'content-type': path.endsWith('checkin') ? 'application/x-apple-aspen-mdm-checkin' : 'application/x-apple-aspen-mdm',
    };
    if (this.transport === 'signature') headers['mdm-signature'] = this.#signature(body, message.Status === 'Idle');
    return connection.request('PUT', path, body, headers);
  }

  /** A device sends the same Idle bytes every time with one identity: the signature over them is made once. */
  #signature(body: Buffer, idle: boolean): string {
    const identity = this.identity!;
    if (idle && this.#idleSignature?.certificate === identity.certificate) return this.#idleSignature.value;
    const value = appleMdmSignature(body, identity.certificate, identity.key);
    if (idle) this.#idleSignature = { certificate: identity.certificate, value };
    return value;
  }

  /**
   * SCEP as a device runs it for a profile's SCEP payload, on its own connection: GetCACert, the CA named by
   * CAFingerprint and a valid RA found in it, then a fresh CSR with the challenge, encrypted to that RA.
   */
  async #scep(payload: PlistDict, trust: DeviceTrust): Promise<DeviceIdentity | string> {
    const opened = await this.link.connect(trust, this.link.now());
    if ('untrusted' in opened) {
      this.#scepUntrusted = opened.untrusted;
      return `SCEP server not trusted: ${opened.untrusted.reason}`;
    }
    const connection = opened.connection;
    try {
      const caCert = await connection.request('GET', '/scep?operation=GetCACert', undefined, {});
      if (caCert.statusCode !== 200) return `GetCACert answered ${caCert.statusCode}`;
      const certificates = cms.parseSignedData(caCert.body).certificates;
      const fingerprint = payload.CAFingerprint as Buffer | undefined;
      if (fingerprint && !certificates.some((c) => sha1(c).equals(fingerprint)))
        return 'CAFingerprint matches no CA certificate in GetCACert';
      const now = this.link.now();
      const ra = certificates.find((c) => !this.cache.known(c).x509.ca);
      if (!ra) return 'GetCACert carries no RA certificate';
      const raFacts = this.cache.known(ra);
      if (raFacts.notAfter <= now || raFacts.notBefore > now) return 'the SCEP RA certificate is expired or not yet valid';

      const keys = this.keys.key(this.keyIndex);
      const requester = { signerCertificate: keys.requester, signerKey: keys.privateKey };
      const csr = buildCsr({
        subject: encodeName((payload.Subject as [string, string][][]).map(([pair]) => pair as never)),
        publicKey: keys.publicKey,
        privateKey: keys.privateKey,
        challengePassword: payload.Challenge as string,
      });
      const request = buildPkiRequest({ requester, csr, raCertificate: ra });
      const response = await connection.request('POST', '/scep?operation=PKIOperation', request.message, {
        'content-type': 'application/x-pki-message',
      });
      if (response.statusCode !== 200) return `PKIOperation answered ${response.statusCode}`;
      const rep = readCertRep(response.body, { requester, raCertificate: ra, ...request });
      if (rep.status !== 'success') return `SCEP ${rep.status}`;
      const certificate = rep.certificates[0]!;
      return {
        certificate,
        key: keys.privateKey,
        notAfter: readCertificate(certificate).notAfter,
        tls: { cert: toPem(certificate), key: keys.pem },
      };
    } finally {
      connection.close();
    }
  }

  /**
   * Installs a signed profile: its signature verified, then its payloads in order — roots into the trust store, the
   * SCEP payload run against the server those roots now trust. All or nothing: a failed installation leaves the
   * profile it would have replaced in place. Returns the new identity when the profile carried one.
   */
  async installProfile(signed: Buffer): Promise<DeviceIdentity | 'installed' | 'failed'> {
    const content = cms.parseSignedData(signed);
    cms.verifySignedData(content);
    const profile = parsePlistDict(content.content!);
    const payloads = profile.PayloadContent as PlistDict[];
    const installed: InstalledProfile = { anchors: new Map() };
    const uuids = new Map<string, string>();
    for (const p of payloads.filter((p) => p.PayloadType === 'com.apple.security.root')) {
      const der = p.PayloadContent as Buffer;
      installed.anchors.set(sha256(der), der);
      uuids.set(p.PayloadUUID as string, sha256(der));
    }
    const mdm = payloads.find((p) => p.PayloadType === 'com.apple.mdm');
    const pins = mdm?.ServerURLPinningCertificateUUIDs as string[] | undefined;
    if (pins) installed.pinned = new Set(pins.map((u) => uuids.get(u)).filter((fp): fp is string => fp !== undefined));
    const after = new Map(this.profiles).set(profile.PayloadIdentifier as string, installed);

    const scep = payloads.find((p) => p.PayloadType === 'com.apple.security.scep');
    let identity: DeviceIdentity | undefined;
    if (scep) {
      const outcome = await this.#scep(scep.PayloadContent as PlistDict, this.trust(after));
      if (typeof outcome === 'string') {
        this.lastFailure = outcome;
        return 'failed';
      }
      identity = outcome;
    }
    this.profiles.set(profile.PayloadIdentifier as string, installed);
    return identity ?? 'installed';
  }

  /** Authenticate and TokenUpdate with the identity in use (after enrollment and after each renewal). */
  async #authenticate(connection: DeviceConnection): Promise<HttpResponse> {
    const r = await this.#send(
      connection,
      { MessageType: 'Authenticate', Topic: this.link.topic, DeviceName: this.udid, Model: 'iPhone15,2', ModelName: 'iPhone' },
      '/mdm/checkin',
    );
    if (r.statusCode !== 200) return r;
    return this.#send(
      connection,
      {
        MessageType: 'TokenUpdate',
        Topic: this.link.topic,
        Token: Buffer.from(sha256(Buffer.from(this.udid)), 'hex'),
        PushMagic: `magic-${this.udid}`,
      },
      '/mdm/checkin',
    );
  }

  /**
   * Enrollment: the enrollment profile installed, then Authenticate with the identity it produced. A device that
   * cannot enroll (a server it does not trust, SCEP refused) says why, as a session would.
   */
  async enroll(profile: Buffer): Promise<SessionOutcome> {
    this.#scepUntrusted = undefined;
    const outcome = await this.installProfile(profile);
    if (this.#scepUntrusted) return { untrusted: this.#scepUntrusted };
    if (typeof outcome === 'string') return { refused: 0, reason: `enrollment failed: ${this.lastFailure ?? outcome}` };
    this.identity = outcome;
    const opened = await this.#connect();
    if ('untrusted' in opened) return { untrusted: opened.untrusted };
    try {
      const r = await this.#authenticate(opened.connection);
      return r.statusCode === 200 ? 'done' : { refused: r.statusCode, reason: r.body.toString().trim() };
    } finally {
      opened.connection.close();
    }
  }

  /**
   * One connection after a push: Idle, then each command the server hands out until it has none. 'not-now' when the
   * device was busy and put a command off (it polls again later the same day, as a busy device does).
   */
  async session(): Promise<SessionOutcome> {
    const expiredAtStart = this.notAfter <= this.link.now();
    let opened = await this.#connect();
    if ('untrusted' in opened) return { untrusted: opened.untrusted };
    let connection = opened.connection;
    try {
      let putOff = false;
      let response = await this.#send(connection, { Status: 'Idle' });
      while (response.statusCode === 200 && response.body.length > 0) {
        const command = parsePlistDict(response.body);
        const uuid = command.CommandUUID as string;
        const body = command.Command as PlistDict;
        const isProfile = body.RequestType === 'InstallProfile';
        // A kiosk in single-app mode never takes a profile (and has no reason to poll again); other devices are busy
        // now and then, and poll again when they are not.
        const kiosk = isProfile && this.behaviour === 'kiosk';
        if (kiosk || this.random() < 0.1) {
          putOff ||= !kiosk;
          response = await this.#send(connection, { Status: 'NotNow', CommandUUID: uuid });
          continue;
        }
        if (!isProfile) {
          if (body.RequestType === 'RemoveProfile') this.profiles.delete(body.Identifier as string);
          response = await this.#send(connection, { Status: 'Acknowledged', CommandUUID: uuid });
          continue;
        }
        // Now and then an installation fails on the device (storage, a passcode prompt dismissed).
        const outcome = this.random() < 0.02 ? 'failed' : await this.installProfile(body.Payload as Buffer);
        response = await this.#send(
          connection,
          outcome === 'failed'
            ? { Status: 'Error', CommandUUID: uuid, ErrorChain: [{ ErrorCode: 4001, ErrorDomain: 'MCInstallationErrorDomain' }] }
            : { Status: 'Acknowledged', CommandUUID: uuid },
        );
        if (typeof outcome === 'object') {
          this.identity = outcome;
          this.identityRenewals++;
          if (expiredAtStart) this.rescues++;
          // With mutual TLS the new identity needs a new handshake; the device checks the chain again.
          if (this.transport === 'mtls') {
            connection.close();
            opened = await this.#connect();
            if ('untrusted' in opened) return { untrusted: opened.untrusted };
            connection = opened.connection;
          }
          const r = await this.#authenticate(connection);
          if (r.statusCode !== 200) return { refused: r.statusCode, reason: r.body.toString().trim() };
        }
      }
      if (response.statusCode !== 200) return { refused: response.statusCode, reason: response.body.toString().trim() };
      return putOff ? 'not-now' : 'done';
    } finally {
      connection.close();
    }
  }

  /** Whether the device could talk to the server now: a handshake it trusts and an Idle the server answers. */
  async probe(): Promise<SessionOutcome> {
    const opened = await this.#connect();
    if ('untrusted' in opened) return { untrusted: opened.untrusted };
    try {
      const response = await this.#send(opened.connection, { Status: 'Idle' });
      return response.statusCode === 200 ? 'done' : { refused: response.statusCode, reason: response.body.toString().trim() };
    } finally {
      opened.connection.close();
    }
  }

  static requesterValidity(start: Date, horizonDays: number): { notBefore: Date; notAfter: Date } {
    return { notBefore: new Date(start.getTime() - DAY), notAfter: new Date(start.getTime() + (horizonDays + 2) * DAY) };
  }
}
