import { sign, type KeyObject } from 'node:crypto';
import * as der from '../../src/pki/der.ts';
import { OID } from '../../src/pki/oids.ts';

/** BER constructed element with indefinite length. */
export const indefinite = (tag: number, ...contents: Buffer[]) =>
  Buffer.concat([Buffer.from([tag, 0x80]), ...contents, Buffer.from([0, 0])]);

/** The certificate re-signed by `key` with another Validity (openssl cannot write a malformed one). */
export function withValidity(certificate: Buffer, key: KeyObject, validity: Buffer): Buffer {
  const [tbs, algorithm] = der.children(der.parse(certificate));
  const fields = der.children(tbs).map((n) => n.raw);
  const at = der.children(tbs)[0]!.tag === 0xa0 ? 4 : 3;
  fields[at] = validity;
  const newTbs = der.seq(...fields);
  return der.seq(newTbs, algorithm!.raw, der.bitString(sign('sha256', newTbs, key)));
}

/** A Validity whose notAfter is an INTEGER: the shape that crashed readCertificate. */
export const MALFORMED_VALIDITY = der.seq(der.time(new Date(Date.now() - 86_400_000)), der.smallInteger(5));

/** The PKIOperation: a SignedData whose eContent is 256 KiB of nested indefinite constructed OCTET STRINGs. */
export function berBomb(size = 256 * 1024): Buffer {
  const levels = Math.floor((size - 64) / 4); // just under the default --scep-body-limit (256 KiB)
  const opening = Buffer.alloc(levels * 2).fill(Buffer.from([0x24, 0x80]));
  const closing = Buffer.alloc(levels * 2, 0);
  const eContent = Buffer.concat([Buffer.from([0xa0, 0x80]), opening, der.octets(Buffer.from('x')), closing, Buffer.from([0, 0])]);
  const signedData = indefinite(
    der.TAG.SEQUENCE,
    der.smallInteger(1),
    der.setOf(),
    indefinite(der.TAG.SEQUENCE, der.oid(OID.data), eContent),
  );
  return indefinite(der.TAG.SEQUENCE, der.oid(OID.signedData), indefinite(0xa0, signedData));
}
