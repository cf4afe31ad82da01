import { createHash } from 'node:crypto';
import type { PlistDict } from '../plist/types.ts';

/**
 * Enrollment and trust profiles as plain values (pure: certificates, URLs and fresh UUIDs in, plist dictionary
 * out). Payload order is Apple's rule: anchors, then intermediates, then the identity, then the MDM payload.
 */

/** Access rights for the MDM payload: every right (1 + 2 + ... + 4096). */
export const ALL_ACCESS_RIGHTS = 8191;

/** What the server can do, announced once: per-user-connections must never be added or removed later. */
export const SERVER_CAPABILITIES = ['com.apple.mdm.per-user-connections', 'com.apple.mdm.bootstraptoken'];

export type IdentityPayload =
  | {
      kind: 'scep';
      url: string;
      challenge: string;
      /** X.500 subject as Apple's nested array form. */
      subject: [string, string][];
      /** SHA-1 of the issuing CA certificate, which the device checks against GetCACert. */
      caFingerprint: Buffer;
      keysize: 2048 | 4096;
    }
  | { kind: 'pkcs12'; pkcs12: Buffer; password: string };

export interface EnrollmentInput {
  identifierPrefix: string;
  organization: string;
  anchors: Buffer[];
  intermediates: Buffer[];
  identity: IdentityPayload;
  mdm: { serverUrl: string; checkInUrl: string; topic: string; signMessage: boolean; pinServerUrl: boolean };
  uuid: () => string;
}

function certificatePayload(
  type: 'com.apple.security.root' | 'com.apple.security.pkcs1',
  der: Buffer,
  identifier: string,
  name: string,
  uuid: string,
): PlistDict {
  return {
    PayloadType: type,
    PayloadVersion: 1,
    PayloadIdentifier: identifier,
    PayloadUUID: uuid,
    PayloadDisplayName: name,
    PayloadCertificateFileName: `${name.replace(/[^A-Za-z0-9.-]+/g, '-')}.cer`,
    PayloadContent: der,
  };
}

function certificateLabel(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

export function enrollmentProfile(input: EnrollmentInput): { profile: PlistDict; payloadUuid: string } {
  const prefix = input.identifierPrefix;
  const anchors = input.anchors.map((der) =>
    certificatePayload(
      'com.apple.security.root',
      der,
      `${prefix}.enrollment.anchor.${certificateLabel(der)}`,
      `${input.organization} Root CA`,
      input.uuid(),
    ),
  );
  const intermediates = input.intermediates.map((der) =>
    certificatePayload(
      'com.apple.security.pkcs1',
      der,
      `${prefix}.enrollment.intermediate.${certificateLabel(der)}`,
      `${input.organization} Intermediate CA`,
      input.uuid(),
    ),
  );
  const identityUuid = input.uuid();
  const identityHeader = (type: string, name: string): PlistDict => ({
    PayloadType: type,
    PayloadVersion: 1,
    PayloadIdentifier: `${prefix}.enrollment.identity`,
    PayloadUUID: identityUuid,
    PayloadDisplayName: name,
  });
  const identity: PlistDict =
    input.identity.kind === 'scep'
      ? {
          ...identityHeader('com.apple.security.scep', 'MDM identity (SCEP)'),
          PayloadContent: {
            URL: input.identity.url,
            Name: input.organization,
            Subject: input.identity.subject.map((pair) => [pair]),
            Challenge: input.identity.challenge,
            Keysize: input.identity.keysize,
            'Key Type': 'RSA',
            // 1 signing + 4 encryption: the identity signs Mdm-Signature and serves mutual TLS.
            'Key Usage': 5,
            CAFingerprint: input.identity.caFingerprint,
          },
        }
      : {
          ...identityHeader('com.apple.security.pkcs12', 'MDM identity (PKCS#12)'),
          PayloadCertificateFileName: 'mdm-identity.p12',
          PayloadContent: input.identity.pkcs12,
          Password: input.identity.password,
        };
  const mdm: PlistDict = {
    PayloadType: 'com.apple.mdm',
    PayloadVersion: 1,
    PayloadIdentifier: `${prefix}.enrollment.mdm`,
    PayloadUUID: input.uuid(),
    PayloadDisplayName: 'Mobile Device Management',
    IdentityCertificateUUID: identityUuid,
    Topic: input.mdm.topic,
    ServerURL: input.mdm.serverUrl,
    CheckInURL: input.mdm.checkInUrl,
    SignMessage: input.mdm.signMessage,
    AccessRights: ALL_ACCESS_RIGHTS,
    CheckOutWhenRemoved: true,
    ServerCapabilities: SERVER_CAPABILITIES,
    ...(input.mdm.pinServerUrl
      ? {
          ServerURLPinningCertificateUUIDs: anchors.map((a) => a.PayloadUUID as string),
          CheckInURLPinningCertificateUUIDs: anchors.map((a) => a.PayloadUUID as string),
        }
      : {}),
  };
  const payloadUuid = input.uuid();
  return {
    payloadUuid,
    profile: {
      PayloadType: 'Configuration',
      PayloadVersion: 1,
      // The same identifier for every version, so a new profile replaces the installed one.
      PayloadIdentifier: `${prefix}.enrollment`,
      PayloadUUID: payloadUuid,
      PayloadDisplayName: `${input.organization} MDM enrollment`,
      PayloadDescription: 'Enrolls this device in mobile device management.',
      PayloadOrganization: input.organization,
      PayloadScope: 'System',
      PayloadContent: [...anchors, ...intermediates, identity, mdm],
    },
  };
}

export function trustProfile(input: { identifierPrefix: string; organization: string; anchors: Buffer[]; uuid: () => string }): {
  profile: PlistDict;
  payloadUuid: string;
} {
  const payloadUuid = input.uuid();
  return {
    payloadUuid,
    profile: {
      PayloadType: 'Configuration',
      PayloadVersion: 1,
      PayloadIdentifier: `${input.identifierPrefix}.trust`,
      PayloadUUID: payloadUuid,
      PayloadDisplayName: `${input.organization} trust`,
      PayloadDescription: 'Root certificates this device needs to reach the MDM server.',
      PayloadOrganization: input.organization,
      PayloadScope: 'System',
      PayloadContent: input.anchors.map((der) =>
        certificatePayload(
          'com.apple.security.root',
          der,
          `${input.identifierPrefix}.trust.anchor.${certificateLabel(der)}`,
          `${input.organization} Root CA`,
          input.uuid(),
        ),
      ),
    },
  };
}
