import { pbkdf2 } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/**
 * Password-based key derivation for PKCS#12 import, off the event loop. The iteration count comes from the file, so
 * it is capped by the reader (MAX_PKCS12_ITERATIONS) and, below the cap, still run where it cannot stall requests:
 * PBKDF2 on libuv's thread pool, the RFC 7292 Appendix B KDF (MAC keys and 3DES bags; Node has no native form) in a
 * worker thread.
 */

export type KdfHash = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export function pbkdf2Async(password: Buffer, salt: Buffer, iterations: number, length: number, hash: KdfHash): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    pbkdf2(password, salt, iterations, length, hash, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

// Plain JavaScript (the worker is started from source text, so it needs no TypeScript loader). The same algorithm as
// pkcs12Kdf in pkcs12.ts, which builds the files certmdm writes; the tests read openssl's files through this one.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
function kdf({ hash, password, salt, id, iterations, length }) {
  const u = hash === 'sha1' ? 20 : 32;
  const v = 64;
  const fill = (data) => {
    if (data.length === 0) return Buffer.alloc(0);
    const out = Buffer.alloc(v * Math.ceil(data.length / v));
    for (let i = 0; i < out.length; i++) out[i] = data[i % data.length];
    return out;
  };
  const D = Buffer.alloc(v, id);
  const I = Buffer.concat([fill(Buffer.from(salt)), fill(Buffer.from(password))]);
  const blocks = [];
  for (let produced = 0; produced < length; produced += u) {
    let A = createHash(hash).update(D).update(I).digest();
    for (let r = 1; r < iterations; r++) A = createHash(hash).update(A).digest();
    blocks.push(A);
    const B = fill(A);
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = I[j + k] + B[k] + carry;
        I[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return Buffer.concat(blocks).subarray(0, length);
}
parentPort.on('message', ({ id, job }) => parentPort.postMessage({ id, key: kdf(job) }));
`;

/** One worker for the process, started on first use; jobs run in turn. */
let worker: Worker | undefined;
const pending = new Map<number, { resolve: (key: Buffer) => void; reject: (err: Error) => void }>();
let nextJob = 0;

function kdfWorker(): Worker {
  if (worker) return worker;
  const started = new Worker(WORKER_SOURCE, { eval: true });
  started.on('message', ({ id, key }: { id: number; key: Uint8Array }) => {
    pending.get(id)?.resolve(Buffer.from(key));
    pending.delete(id);
    if (pending.size === 0) started.unref();
  });
  const failAll = (err: Error) => {
    worker = undefined;
    for (const job of pending.values()) job.reject(err);
    pending.clear();
  };
  started.on('error', failAll);
  started.on('exit', (code) => failAll(new Error(`PKCS#12 key derivation worker exited with ${code}`)));
  worker = started;
  return started;
}

/** RFC 7292 Appendix B.2 (id 1: key, 2: IV, 3: MAC key) for SHA-1 or SHA-256, in the worker thread. */
export function pkcs12KdfAsync(
  hash: 'sha1' | 'sha256',
  password: Buffer,
  salt: Buffer,
  id: number,
  iterations: number,
  length: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const job = nextJob++;
    pending.set(job, { resolve, reject });
    const w = kdfWorker();
    w.ref(); // held while a derivation is pending, let go when idle so the worker never keeps the process alive
    w.postMessage({ id: job, job: { hash, password, salt, id, iterations, length } });
  });
}
