import { sign, type KeyObject } from 'node:crypto';
import * as der from '../../src/pki/der.ts';

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
