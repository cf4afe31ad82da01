import { randomBytes, type KeyObject } from 'node:crypto';
import * as cms from '../pki/cms.ts';
import * as der from '../pki/der.ts';
import { OID, type DigestName } from '../pki/oids.ts';

/** SCEP message types (RFC 8894 §3.2.1.2). */
export const MESSAGE_TYPE = {
  CertRep: '3',
  RenewalReq: '17',
  PKCSReq: '19',
  CertPoll: '20',
  GetCert: '21',
  GetCRL: '22',
} as const;

export const PKI_STATUS = { SUCCESS: '0', FAILURE: '2', PENDING: '3' } as const;

/** failInfo values (RFC 8894 §3.2.1.4). */
export const FAIL_INFO = { badAlg: '0', badMessageCheck: '1', badRequest: '2', badTime: '3', badCertId: '4' } as const;
export type FailInfo = keyof typeof FAIL_INFO;

/** The envelope of a PKIMessage: enough to answer it, before anything inside is trusted. */
export interface PkiMessageHeader {
  signed: cms.SignedData;
  signer: cms.SignerInfo;
  messageType: string;
  transactionId: string;
  senderNonce: Buffer;
  digest: DigestName;
  /** The certificate the message claims to be signed with (verification comes later). */
  signerCertificate?: Buffer;
}

export class ScepError extends Error {
  constructor(
    message: string,
    readonly failInfo: FailInfo,
  ) {
    super(message);
    this.name = 'ScepError';
  }
}

function printable(node: der.Node | undefined): string | undefined {
  return node && (node.tag === der.TAG.PRINTABLE_STRING || node.tag === der.TAG.UTF8_STRING || node.tag === der.TAG.IA5_STRING)
    ? der.readString(node)
    : undefined;
}

/**
 * Reads the outer SignedData and the SCEP attributes. Throws CmsError when there is no way to answer with a
 * CertRep (no transactionID or senderNonce): the edge then answers HTTP 400.
 */
export function readPkiMessageHeader(bytes: Buffer): PkiMessageHeader {
  try {
    return pkiMessageHeader(bytes);
  } catch (err) {
    if (err instanceof der.DerError) throw new cms.CmsError(`PKIMessage: ${err.message}`);
    throw err;
  }
}

function pkiMessageHeader(bytes: Buffer): PkiMessageHeader {
  const signed = cms.parseSignedData(bytes);
  if (signed.signers.length !== 1) throw new cms.CmsError(`a PKIMessage has exactly one signer, found ${signed.signers.length}`);
  const signer = signed.signers[0]!;
  if (!signer.signedAttributes) throw new cms.CmsError('a PKIMessage must carry signed attributes');
  const messageType = printable(cms.attribute(signer, OID.scepMessageType));
  const transactionId = printable(cms.attribute(signer, OID.scepTransactionId));
  const nonce = cms.attribute(signer, OID.scepSenderNonce);
  if (!messageType || !transactionId || !nonce) throw new cms.CmsError('PKIMessage lacks messageType, transactionID or senderNonce');
  const senderNonce = der.readOctets(nonce);
  if (senderNonce.length !== 16) throw new cms.CmsError('senderNonce must be 16 bytes');
  return {
    signed,
    signer,
    messageType,
    transactionId,
    senderNonce,
    digest: signer.digest,
    signerCertificate: cms.findSignerCertificate(signer, signed.certificates),
  };
}

export interface CertRepSigner {
  certificate: Buffer;
  privateKey: KeyObject;
  /** Certificates sent along so the client can verify the signer (RA, then CA chain). */
  chain: Buffer[];
}

function scepAttributes(request: PkiMessageHeader, status: string, failInfo?: FailInfo): Buffer[] {
  return [
    cms.encodeAttribute(OID.scepMessageType, der.printable(MESSAGE_TYPE.CertRep)),
    cms.encodeAttribute(OID.scepPkiStatus, der.printable(status)),
    ...(failInfo ? [cms.encodeAttribute(OID.scepFailInfo, der.printable(FAIL_INFO[failInfo]))] : []),
    cms.encodeAttribute(OID.scepTransactionId, der.printable(request.transactionId)),
    cms.encodeAttribute(OID.scepSenderNonce, der.octets(randomBytes(16))),
    cms.encodeAttribute(OID.scepRecipientNonce, der.octets(request.senderNonce)),
  ];
}

/** CertRep SUCCESS: the issued certificate in a certs-only SignedData, encrypted to the requester's signer certificate. */
export function certRepSuccess(
  request: PkiMessageHeader,
  signer: CertRepSigner,
  issued: Buffer[],
  cipherOid: cms.ContentCipherOid,
): Buffer {
  if (!request.signerCertificate) throw new Error('no signer certificate to encrypt to');
  const envelope = cms.buildEnvelopedData(cms.buildCertsOnly(issued), request.signerCertificate, cipherOid);
  return cms.buildSignedData({
    content: envelope,
    signerCertificate: signer.certificate,
    signerKey: signer.privateKey,
    digest: request.digest,
    certificates: [signer.certificate, ...signer.chain],
    attributes: scepAttributes(request, PKI_STATUS.SUCCESS),
  });
}

/** CertRep FAILURE with its failInfo; it carries no content. */
export function certRepFailure(request: PkiMessageHeader, signer: CertRepSigner, failInfo: FailInfo): Buffer {
  return cms.buildSignedData({
    signerCertificate: signer.certificate,
    signerKey: signer.privateKey,
    digest: request.digest,
    certificates: [signer.certificate, ...signer.chain],
    attributes: scepAttributes(request, PKI_STATUS.FAILURE, failInfo),
  });
}
