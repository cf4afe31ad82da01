import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { rate } from './measure.ts';

/** The machine's own limits, measured in the same run: raw RSA-2048 private and public operations. */
export async function machineLimits() {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const data = Buffer.alloc(512, 1);
  const signature = sign('sha256', data, privateKey);
  return {
    rsaSign: await rate(() => sign('sha256', data, privateKey)),
    rsaVerify: await rate(() => verify('sha256', data, publicKey, signature)),
    // Key generation time varies a lot with the prime search: measured long enough to average it out.
    rsaKeygen: await rate(() => generateKeyPairSync('rsa', { modulusLength: 2048 }), 10_000),
  };
}
