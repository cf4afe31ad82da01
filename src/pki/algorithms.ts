import { generateKeyPair, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { OperatorError } from '../errors.ts';

const generateKeyPairAsync = promisify(generateKeyPair);

/** Key algorithms certmdm creates. Device identities and the SCEP RA stay RSA because SCEP's key transport needs it. */
export const KEY_ALGORITHMS = ['rsa-2048', 'rsa-3072', 'rsa-4096', 'p-256', 'p-384'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];
/** What the intermediate (which signs every leaf) and the TLS certificate may use. */
export const LEAF_ALGORITHMS = ['rsa-2048', 'p-256'] as const;
export type LeafAlgorithm = (typeof LEAF_ALGORITHMS)[number];

export function parseKeyAlgorithm<A extends string = KeyAlgorithm>(
  value: string,
  allowed: readonly A[] = KEY_ALGORITHMS as readonly string[] as readonly A[],
): A {
  if ((allowed as readonly string[]).includes(value)) return value as A;
  throw new OperatorError(`unknown key algorithm '${value}' (choose one of ${allowed.join(', ')})`);
}

export interface KeyPair {
  publicKey: KeyObject;
  privateKey: KeyObject;
}

export async function generateKey(algorithm: KeyAlgorithm): Promise<KeyPair> {
  if (algorithm === 'p-256') return generateKeyPairAsync('ec', { namedCurve: 'P-256' });
  if (algorithm === 'p-384') return generateKeyPairAsync('ec', { namedCurve: 'P-384' });
  const modulusLength = Number(algorithm.slice(4));
  return generateKeyPairAsync('rsa', { modulusLength, publicExponent: 0x10001 });
}

/** The X.509 signature algorithm a key signs certificates with, and the digest it uses. */
export interface SignatureAlgorithm {
  oid: string;
  digest: 'sha256' | 'sha384';
  /** RSA algorithm identifiers carry an explicit NULL parameter; ECDSA ones carry none. */
  nullParameters: boolean;
}

export const SHA256_WITH_RSA = '1.2.840.113549.1.1.11';
export const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
export const ECDSA_WITH_SHA384 = '1.2.840.10045.4.3.3';

export function signatureAlgorithmFor(signer: KeyObject): SignatureAlgorithm {
  if (signer.asymmetricKeyType === 'rsa') return { oid: SHA256_WITH_RSA, digest: 'sha256', nullParameters: true };
  // The digest matches the curve's strength (RFC 5480 §4): SHA-256 with P-256, SHA-384 with P-384.
  if (signer.asymmetricKeyType === 'ec')
    return signer.asymmetricKeyDetails?.namedCurve === 'prime256v1'
      ? { oid: ECDSA_WITH_SHA256, digest: 'sha256', nullParameters: false }
      : { oid: ECDSA_WITH_SHA384, digest: 'sha384', nullParameters: false };
  throw new Error(`unsupported signing key type ${signer.asymmetricKeyType}`);
}

export function signWith(signer: KeyObject, data: Uint8Array): Buffer {
  // ECDSA signatures in X.509 are DER-encoded, which is node's default ('der') for EC keys.
  return sign(signatureAlgorithmFor(signer).digest, data, signer);
}

export function describeKey(key: KeyObject): string {
  if (key.asymmetricKeyType === 'rsa') return `rsa-${key.asymmetricKeyDetails?.modulusLength ?? '?'}`;
  if (key.asymmetricKeyType === 'ec') return `ec-${key.asymmetricKeyDetails?.namedCurve ?? '?'}`;
  return key.asymmetricKeyType ?? 'unknown';
}

/** The algorithm name certmdm uses for a key, when it is one certmdm makes. */
export function keyAlgorithmOf(key: KeyObject): KeyAlgorithm | undefined {
  const described = describeKey(key);
  const named: Record<string, KeyAlgorithm> = { 'ec-prime256v1': 'p-256', 'ec-secp384r1': 'p-384' };
  return named[described] ?? ((KEY_ALGORITHMS as readonly string[]).includes(described) ? (described as KeyAlgorithm) : undefined);
}
