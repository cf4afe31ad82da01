import { randomBytes, type KeyObject } from 'node:crypto';
import * as cms from '../pki/cms.ts';
import * as der from '../pki/der.ts';
import { OID, type DigestName } from '../pki/oids.ts';
import { Pkcs1KeyTransport } from '../pki/rsa-pkcs1.ts';
import { MESSAGE_TYPE, PKI_STATUS } from './messages.ts';

/**
 * The requester's side of SCEP, as pure functions: the fleet simulator's devices and the benchmark enroll with it.
 * Interoperability is proven with scepclient and certmonger, not with this.
 */
export interface ScepRequester {
  /** The certificate the request is signed with: self-signed for PKCSReq, the current identity for RenewalReq. */
  signerCertificate: Buffer;
  signerKey: KeyObject;
}

export function buildPkiRequest(options: {
  requester: ScepRequester;
  csr: Buffer;
  raCertificate: Buffer;
  messageType?: typeof MESSAGE_TYPE.PKCSReq | typeof MESSAGE_TYPE.RenewalReq;
  cipherOid?: cms.ContentCipherOid;
  digest?: DigestName;
  transactionId?: string;
}): { message: Buffer; senderNonce: Buffer; transactionId: string } {
  const senderNonce = randomBytes(16);
  const transactionId = options.transactionId ?? randomBytes(20).toString('hex');
  const envelope = cms.buildEnvelopedData(options.csr, options.raCertificate, options.cipherOid ?? OID.aes256Cbc);
  const message = cms.buildSignedData({
    content: envelope,
    signerCertificate: options.requester.signerCertificate,
    signerKey: options.requester.signerKey,
    digest: options.digest ?? 'sha256',
    certificates: [options.requester.signerCertificate],
    attributes: [
      cms.encodeAttribute(OID.scepMessageType, der.printable(options.messageType ?? MESSAGE_TYPE.PKCSReq)),
      cms.encodeAttribute(OID.scepTransactionId, der.printable(transactionId)),
      cms.encodeAttribute(OID.scepSenderNonce, der.octets(senderNonce)),
    ],
  });
  return { message, senderNonce, transactionId };
}

export type CertRepResult = { status: 'success'; certificates: Buffer[] } | { status: 'failure'; failInfo: string } | { status: 'pending' };

/** Verifies a CertRep against the RA certificate the requester trusts and decrypts the issued certificate. */
export function readCertRep(
  body: Buffer,
  expect: { requester: ScepRequester; raCertificate: Buffer; senderNonce: Buffer; transactionId: string },
): CertRepResult {
  const signed = cms.parseSignedData(body);
  const { certificate } = cms.verifySignedData(signed, signed.content ?? Buffer.alloc(0));
  if (!certificate.equals(expect.raCertificate)) throw new cms.CmsError('CertRep is not signed by the RA certificate', 'bad-signature');
  const signer = signed.signers[0]!;
  const text = (oid: string) => {
    const node = cms.attribute(signer, oid);
    return node ? der.readString(node) : undefined;
  };
  if (text(OID.scepTransactionId) !== expect.transactionId) throw new cms.CmsError('CertRep transactionID does not match');
  const nonce = cms.attribute(signer, OID.scepRecipientNonce);
  if (!nonce || !der.readOctets(nonce).equals(expect.senderNonce)) throw new cms.CmsError('CertRep recipientNonce does not match');
  const status = text(OID.scepPkiStatus);
  if (status === PKI_STATUS.FAILURE) return { status: 'failure', failInfo: text(OID.scepFailInfo) ?? '' };
  if (status === PKI_STATUS.PENDING) return { status: 'pending' };
  const envelope = cms.parseEnvelopedData(signed.content ?? Buffer.alloc(0));
  const recipient = cms.recipientFor(envelope, expect.requester.signerCertificate);
  if (!recipient) throw new cms.CmsError('CertRep is not encrypted to the requester');
  const key = new Pkcs1KeyTransport(expect.requester.signerKey).decryptKey(recipient.encryptedKey, cms.cipherOf(envelope).keyLength);
  const certsOnly = cms.parseSignedData(cms.decryptContent(envelope, key));
  return { status: 'success', certificates: certsOnly.certificates };
}
