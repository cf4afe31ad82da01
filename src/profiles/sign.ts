import * as cms from '../pki/cms.ts';
import * as der from '../pki/der.ts';
import { OID } from '../pki/oids.ts';
import type { Identity } from '../pki/server-pki.ts';

/**
 * A signed profile: CMS SignedData, attached, DER, by the profile-signing identity with its chain (signer and
 * intermediate; the device has, or is about to install, the root).
 */
export function signProfile(content: Buffer, signer: Identity, chain: Buffer[], signingTime: Date): Buffer {
  return cms.buildSignedData({
    content,
    signerCertificate: signer.certificate.der,
    signerKey: signer.privateKey,
    digest: 'sha256',
    certificates: [signer.certificate.der, ...chain],
    attributes: [cms.encodeAttribute(OID.signingTime, der.time(signingTime))],
  });
}
