import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { appleMdmSignature } from '../../mdm/sign-message.ts';
import * as cms from '../../pki/cms.ts';
import { buildCertificate, encodeName, readCertificate } from '../../pki/certificate.ts';
import { buildCsr } from '../../pki/csr.ts';
import { parsePlistDict } from '../../plist/parse.ts';
import { serializePlist } from '../../plist/serialize.ts';
import type { PlistDict } from '../../plist/types.ts';
import { buildPkiRequest, readCertRep } from '../../scep/client.ts';
import type { Behaviour } from './fleet.ts';

const DAY = 86_400_000;

/** The server as a device reaches it: HTTP requests (Fastify's inject in-process) and the SCEP RA certificate. */
export interface DeviceNetwork {
  request(r: { method: 'PUT' | 'POST'; url: string; payload: Buffer; headers: Record<string, string> }): Promise<{
    statusCode: number;
    rawPayload: Buffer;
    body: string;
  }>;
  raCertificate(): Buffer;
  topic: string;
  /** Counts every MDM message sent. */
  sent(): void;
}

/**
 * RSA keys for the simulated devices, generated once (key generation would otherwise dominate a large run). Each
 * key's self-signed SCEP requester certificate is made once too: it only carries the key to the RA.
 */
export class KeyPool {
  readonly #entries: { privateKey: KeyObject; publicKey: KeyObject; requester?: Buffer }[];

  constructor(
    size: number,
    private readonly validity: { notBefore: Date; notAfter: Date },
  ) {
    this.#entries = Array.from({ length: size }, () => generateKeyPairSync('rsa', { modulusLength: 2048 }));
  }

  get size(): number {
    return this.#entries.length;
  }

  key(i: number): { privateKey: KeyObject; publicKey: KeyObject; requester: Buffer } {
    const entry = this.#entries[i % this.#entries.length]!;
    entry.requester ??= buildCertificate(
      { subject: [['CN', 'SCEP requester']], publicKey: entry.publicKey, ...this.validity, keyUsage: ['digitalSignature'] },
      { selfSigningKey: entry.privateKey },
    );
    return entry as { privateKey: KeyObject; publicKey: KeyObject; requester: Buffer };
  }
}

export type SessionOutcome = 'done' | 'not-now' | { refused: number };

const fingerprint = (der: Buffer) => createHash('sha256').update(der).digest('hex');

/**
 * A simulated Apple device speaking the real protocol: it verifies and installs signed profiles (roots, then the SCEP
 * payload with a real CSR and PKIMessage), signs every MDM message with its identity (Mdm-Signature, Apple's form),
 * authenticates a renewed identity, answers NotNow when busy and Error when an installation fails.
 */
export class SimulatedDevice {
  key: KeyObject;
  certificate: Buffer = Buffer.alloc(0);
  notAfter = new Date(0);
  /** SHA-256 fingerprints of the roots installed on the device. */
  readonly anchors = new Set<string>();
  identityRenewals = 0;

  constructor(
    readonly udid: string,
    readonly behaviour: Behaviour,
    private readonly random: () => number,
    private readonly network: DeviceNetwork,
    private readonly keys: KeyPool,
  ) {
    this.key = keys.key(0).privateKey;
  }

  async #send(message: PlistDict, path = '/mdm/server') {
    const body = serializePlist({ UDID: this.udid, ...message });
    this.network.sent();
    return this.network.request({
      method: 'PUT',
      url: path,
      payload: body,
      headers: {
        'content-type': path.endsWith('checkin') ? 'application/x-apple-aspen-mdm-checkin' : 'application/x-apple-aspen-mdm',
        'mdm-signature': appleMdmSignature(body, this.certificate, this.key),
      },
    });
  }

  /** SCEP as a device does it for a profile's SCEP payload: a fresh CSR with the challenge, to the RA. */
  async #scep(payload: PlistDict): Promise<{ certificate: Buffer; key: KeyObject } | undefined> {
    const keys = this.keys.key(Math.floor(this.random() * this.keys.size));
    const requester = { signerCertificate: keys.requester, signerKey: keys.privateKey };
    const csr = buildCsr({
      subject: encodeName((payload.Subject as [string, string][][]).map(([pair]) => pair as never)),
      publicKey: keys.publicKey,
      privateKey: keys.privateKey,
      challengePassword: payload.Challenge as string,
    });
    const raCertificate = this.network.raCertificate();
    const request = buildPkiRequest({ requester, csr, raCertificate });
    const response = await this.network.request({
      method: 'POST',
      url: '/scep?operation=PKIOperation',
      payload: request.message,
      headers: { 'content-type': 'application/x-pki-message' },
    });
    if (response.statusCode !== 200) return undefined;
    const rep = readCertRep(response.rawPayload, { requester, raCertificate, ...request });
    return rep.status === 'success' ? { certificate: rep.certificates[0]!, key: keys.privateKey } : undefined;
  }

  /**
   * Installs a signed profile: its signature verified, its roots added, its SCEP payload run. Returns the new identity
   * when the profile carried one (not yet in use: the device switches to it once the installation is reported).
   */
  async installProfile(signed: Buffer): Promise<{ certificate: Buffer; key: KeyObject } | 'installed' | 'failed'> {
    const content = cms.parseSignedData(signed);
    cms.verifySignedData(content);
    const payloads = parsePlistDict(content.content!).PayloadContent as PlistDict[];
    const scep = payloads.find((p) => p.PayloadType === 'com.apple.security.scep');
    const identity = scep ? await this.#scep(scep.PayloadContent as PlistDict) : undefined;
    if (scep && !identity) return 'failed';
    for (const p of payloads) if (p.PayloadType === 'com.apple.security.root') this.anchors.add(fingerprint(p.PayloadContent as Buffer));
    return identity ?? 'installed';
  }

  /** Authenticate and TokenUpdate with the identity in use (after enrollment and after each renewal). */
  async authenticate(): Promise<void> {
    const r = await this.#send(
      { MessageType: 'Authenticate', Topic: this.network.topic, DeviceName: this.udid, Model: 'iPhone15,2', ModelName: 'iPhone' },
      '/mdm/checkin',
    );
    if (r.statusCode !== 200) throw new Error(`simulated Authenticate refused: ${r.statusCode} ${r.body}`);
    await this.#send(
      {
        MessageType: 'TokenUpdate',
        Topic: this.network.topic,
        Token: Buffer.from(fingerprint(Buffer.from(this.udid)), 'hex'),
        PushMagic: `magic-${this.udid}`,
      },
      '/mdm/checkin',
    );
  }

  useIdentity(identity: { certificate: Buffer; key: KeyObject }): void {
    this.certificate = identity.certificate;
    this.key = identity.key;
    this.notAfter = readCertificate(identity.certificate).notAfter;
  }

  /** Enrollment: the enrollment profile installed, then Authenticate with the identity it produced. */
  async enroll(profile: Buffer): Promise<void> {
    const outcome = await this.installProfile(profile);
    if (typeof outcome === 'string') throw new Error(`simulated enrollment of ${this.udid} failed: ${outcome}`);
    this.useIdentity(outcome);
    await this.authenticate();
  }

  /**
   * One connection after a push: Idle, then each command the server hands out until it has none. 'not-now' when the
   * device was busy and put a command off (it polls again later the same day, as a busy device does).
   */
  async session(): Promise<SessionOutcome> {
    let putOff = false;
    let response = await this.#send({ Status: 'Idle' });
    while (response.statusCode === 200 && response.rawPayload.length > 0) {
      const command = parsePlistDict(response.rawPayload);
      const uuid = command.CommandUUID as string;
      const body = command.Command as PlistDict;
      const isProfile = body.RequestType === 'InstallProfile';
      // A kiosk in single-app mode never takes a profile (and has no reason to poll again); other devices are busy
      // now and then, and poll again when they are not.
      const kiosk = isProfile && this.behaviour === 'kiosk';
      if (kiosk || this.random() < 0.1) {
        putOff ||= !kiosk;
        response = await this.#send({ Status: 'NotNow', CommandUUID: uuid });
        continue;
      }
      if (!isProfile) {
        response = await this.#send({ Status: 'Acknowledged', CommandUUID: uuid });
        continue;
      }
      // Now and then an installation fails on the device (storage, a passcode prompt dismissed).
      const outcome = this.random() < 0.02 ? 'failed' : await this.installProfile(body.Payload as Buffer);
      response = await this.#send(
        outcome === 'failed'
          ? { Status: 'Error', CommandUUID: uuid, ErrorChain: [{ ErrorCode: 4001, ErrorDomain: 'MCInstallationErrorDomain' }] }
          : { Status: 'Acknowledged', CommandUUID: uuid },
      );
      if (typeof outcome === 'object') {
        this.useIdentity(outcome);
        await this.authenticate();
        this.identityRenewals++;
      }
    }
    if (response.statusCode !== 200) return { refused: response.statusCode };
    return putOff ? 'not-now' : 'done';
  }

  static requesterValidity(start: Date, horizonDays: number): { notBefore: Date; notAfter: Date } {
    return { notBefore: new Date(start.getTime() - DAY), notAfter: new Date(start.getTime() + (horizonDays + 2) * DAY) };
  }
}
