import { sign, type KeyObject } from 'node:crypto';
import { issuerAndSerial } from '../pki/cms.ts';
import * as der from '../pki/der.ts';
import { OID } from '../pki/oids.ts';

/** BER constructed element with indefinite length, as Apple's encoder writes them. */
function indefinite(tag: number, ...contents: Buffer[]): Buffer {
  return Buffer.concat([Buffer.from([tag, 0x80]), ...contents, Buffer.from([0, 0])]);
}

/**
 * An `Mdm-Signature` header value exactly in the form Apple devices send: detached CMS SignedData, BER with
 * indefinite lengths, SHA-1, sha1WithRSAEncryption, no signed attributes. The simulator's devices and the benchmark
 * sign with it; the server's acceptance of this form is proven against openssl in the tests.
 */
export function appleMdmSignature(body: Buffer, certificate: Buffer, privateKey: KeyObject): string {
  const signerInfo = der.seq(
    der.smallInteger(1),
    issuerAndSerial(certificate),
    der.algorithmIdentifier(OID.sha1, null),
    der.algorithmIdentifier(OID.sha1WithRSAEncryption, null),
    der.octets(sign('sha1', body, privateKey)),
  );
  const signedData = indefinite(
    der.TAG.SEQUENCE,
    der.smallInteger(1),
    der.setOf(der.algorithmIdentifier(OID.sha1, null)),
    indefinite(der.TAG.SEQUENCE, der.oid(OID.data)),
    indefinite(0xa0, certificate),
    der.setOf(signerInfo),
  );
  return indefinite(der.TAG.SEQUENCE, der.oid(OID.signedData), indefinite(0xa0, signedData)).toString('base64');
}
