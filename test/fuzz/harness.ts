import { createHash, createHmac, verify } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as cms from '../../src/pki/cms.ts';
import { certificateParts, nameAttributes, readCertificate, toPem } from '../../src/pki/certificate.ts';
import { csrSignatureValid, CsrError, parseCsr, requestedUsage } from '../../src/pki/csr.ts';
import * as der from '../../src/pki/der.ts';
import { OID, SIGNATURE_DIGEST } from '../../src/pki/oids.ts';
import { pkcs12Kdf } from '../../src/pki/pkcs12.ts';
import { Pkcs12Error, readPkcs12 } from '../../src/pki/pkcs12-read.ts';
import { publicKeyFromSpki } from '../../src/pki/public-keys.ts';
import { Pkcs1KeyTransport } from '../../src/pki/rsa-pkcs1.ts';
import { parsePlist, PlistError } from '../../src/plist/parse.ts';
import { readPkiMessageHeader, ScepError } from '../../src/scep/messages.ts';
import { identityTemplate } from '../../src/scep/policy.ts';
import type { ScepService } from '../../src/scep/service.ts';
import { run } from '../helpers/cli.ts';
import { pkiMessage } from '../helpers/scep.ts';
import type { Corpus } from './corpus.ts';
import { headerOffsets, mutateBinary, mutatePlist, Rng } from './mutate.ts';

/**
 * Seeded mutation fuzzing of every hand-written parser. A finding is (1) any error other than the parser's own typed
 * errors, or (2) a mutated certificate, CSR or CMS signature that certmdm accepts and openssl rejects.
 */
export interface Finding {
  target: string;
  iteration: number;
  problem: string;
  /** The mutant, base64: feed it to the target to reproduce. */
  input: string;
}

/** What a target run decided about one mutant: accepted ones may be checked with openssl. */
type Verdict = { accepted: false } | { accepted: true; opensslAgrees: () => string | undefined };
const REFUSED: Verdict = { accepted: false };

interface Target {
  name: string;
  seeds: Buffer[];
  /** The typed errors this parser may throw; anything else is a finding. */
  typed: (err: unknown) => boolean;
  mutate?: (seed: Buffer, headers: number[], rng: Rng) => Buffer;
  run: (input: Buffer, seedIndex: number) => Verdict | Promise<Verdict>;
  /** Relative share of the iteration budget. */
  weight: number;
}

export interface FuzzOptions {
  seed: number;
  /** Mutants in all (split by weight), or a wall-clock budget in seconds for the long run. */
  iterations?: number;
  seconds?: number;
  /** Accepted mutants checked with openssl per target (each costs a process). */
  opensslSample: number;
  scep?: { service: ScepService; raDer: Buffer; pkiMessage: Buffer };
  log?: (line: string) => void;
}

export interface FuzzReport {
  findings: Finding[];
  perTarget: Record<string, { mutants: number; accepted: number; checkedWithOpenssl: number }>;
}

const isA =
  (...classes: (abstract new (...args: never[]) => Error)[]) =>
  (err: unknown) =>
    classes.some((c) => err instanceof c);

function opensslOk(args: string[]): string | undefined {
  const r = run('openssl', args);
  return r.status === 0 ? undefined : `openssl ${args[0]} refuses what certmdm accepts: ${r.stderr.trim().split('\n')[0]}`;
}

function bmp(password: string): Buffer {
  const out = Buffer.alloc(password.length * 2 + 2);
  for (let i = 0; i < password.length; i++) out.writeUInt16BE(password.charCodeAt(i), i * 2);
  return out;
}

/** PKCS#12 with a mutated AuthenticatedSafe and a MAC recomputed over it, so the mutation reaches the bag parser. */
function remac(pfx: Buffer, mutatedSafe: Buffer, password: string): Buffer {
  const [version, , macData] = der.children(der.parse(pfx));
  const [digestInfo, salt, iterations] = der.children(macData);
  const [alg] = der.children(digestInfo);
  const hash = der.readOid(der.children(alg)[0]) === '1.3.14.3.2.26' ? 'sha1' : 'sha256';
  const n = der.readSmallInteger(iterations, 1e6, 'iterations');
  const key = pkcs12Kdf(hash, bmp(password), salt!.content, 3, n, hash === 'sha1' ? 20 : 32);
  const mac = createHmac(hash, key).update(mutatedSafe).digest();
  return der.seq(
    version!.raw,
    der.seq(der.oid(OID.data), der.context(0, der.octets(mutatedSafe))),
    der.seq(der.seq(alg!.raw, der.octets(mac)), salt!.raw, iterations!.raw),
  );
}

function authenticatedSafe(pfx: Buffer): Buffer {
  const [, authSafe] = der.children(der.parse(pfx));
  return der.readOctets(der.children(der.children(authSafe)[1])[0]);
}

function targets(corpus: Corpus, options: FuzzOptions): Target[] {
  const dir = corpus.dir;
  const caPublic = publicKeyFromSpki(certificateParts(corpus.caDer).spki);
  const transport = new Pkcs1KeyTransport(corpus.leafKey);
  const binarySeeds = [
    corpus.leafDer,
    corpus.ecSelfSigned,
    corpus.csr,
    ...corpus.signed.map((s) => s.der),
    ...corpus.enveloped,
    ...corpus.pkcs12.map((p) => p.der),
  ];
  let n = 0;
  const scratch = (name: string, data: Buffer | string) => {
    const path = join(dir, `${name}-${n++}`);
    writeFileSync(path, data);
    return path;
  };

  const list: Target[] = [
    {
      name: 'DER/BER reader',
      seeds: binarySeeds,
      typed: isA(der.DerError),
      weight: 3,
      run: (input) => {
        der.parse(input);
        return REFUSED;
      },
    },
    {
      name: 'certificate',
      seeds: [corpus.leafDer, corpus.ecSelfSigned, corpus.caDer],
      typed: isA(der.DerError),
      weight: 3,
      run: (input, seedIndex) => {
        const parts = certificateParts(input);
        readCertificate(input);
        nameAttributes(parts.subject);
        nameAttributes(parts.issuer);
        // Acceptance as the MDM verifier decides it: signed by the CA's key under a known algorithm.
        const digest = SIGNATURE_DIGEST[parts.signatureAlgorithm];
        if (seedIndex !== 0 || !digest || !verify(digest, parts.tbs, caPublic, parts.signature)) return REFUSED;
        return {
          accepted: true,
          opensslAgrees: () => opensslOk(['verify', '-CAfile', corpus.caPem, '-no_check_time', scratch('cert.pem', toPem(input))]),
        };
      },
    },
    {
      name: 'CSR',
      seeds: [corpus.csr],
      typed: isA(CsrError, ScepError),
      weight: 2,
      run: (input) => {
        const csr = parseCsr(input);
        requestedUsage(csr);
        if (!csrSignatureValid(csr)) return REFUSED;
        identityTemplate(csr, {
          subject: [
            ['O', 'fuzz'],
            ['CN', 'fuzz'],
          ],
          allowedSans: ['dns:*.example.com', 'email:*@example.com', 'uri:https://example.com/*'],
        });
        return {
          accepted: true,
          opensslAgrees: () => opensslOk(['req', '-verify', '-noout', '-inform', 'DER', '-in', scratch('csr.der', input)]),
        };
      },
    },
    {
      name: 'CMS SignedData',
      seeds: corpus.signed.map((s) => s.der),
      typed: isA(cms.CmsError),
      weight: 3,
      run: (input, seedIndex) => {
        const signed = cms.parseSignedData(input);
        const detached = corpus.signed[seedIndex]!.detached;
        cms.verifySignedData(signed, detached ?? signed.content);
        return {
          accepted: true,
          opensslAgrees: () =>
            opensslOk(['cms', '-verify', '-noverify', '-binary', '-inform', 'DER', '-in', scratch('sig.der', input),
              ...(detached ? ['-content', scratch('body', detached)] : []), '-out', join(dir, 'verified')]), // prettier-ignore
        };
      },
    },
    {
      name: 'CMS EnvelopedData',
      seeds: corpus.enveloped,
      typed: isA(cms.CmsError),
      weight: 2,
      run: (input) => {
        const envelope = cms.parseEnvelopedData(input);
        const cipher = cms.cipherOf(envelope);
        const recipient = cms.recipientFor(envelope, corpus.leafDer);
        if (recipient) cms.decryptContent(envelope, transport.decryptKey(recipient.encryptedKey, cipher.keyLength));
        return REFUSED;
      },
    },
    {
      name: 'PKCS#12',
      seeds: corpus.pkcs12.map((p) => p.der),
      typed: isA(Pkcs12Error),
      weight: 1,
      // Half the mutants keep a valid MAC over a mutated AuthenticatedSafe, so they reach the bags.
      mutate: (seed, headers, rng) => {
        if (rng.next() < 0.5) return mutateBinary(seed, headers, rng);
        const safe = authenticatedSafe(seed);
        return remac(seed, mutateBinary(safe, headerOffsets(safe), rng), 'fuzz');
      },
      run: async (input) => {
        await readPkcs12(input, 'fuzz');
        return REFUSED;
      },
    },
    {
      name: 'property list',
      seeds: corpus.plists,
      typed: isA(PlistError),
      weight: 4,
      mutate: (seed, _headers, rng) => mutatePlist(seed, rng),
      run: (input) => {
        parsePlist(input);
        return REFUSED;
      },
    },
  ];

  if (options.scep) {
    const { service, pkiMessage: message } = options.scep;
    list.push(
      {
        name: 'PKIMessage header',
        seeds: [message],
        typed: isA(cms.CmsError),
        weight: 2,
        run: (input) => {
          readPkiMessageHeader(input);
          return REFUSED;
        },
      },
      {
        // The whole SCEP core: whatever arrives, an answer (CertRep or 400), never an exception.
        name: 'SCEP PKIOperation',
        seeds: [message],
        typed: () => false,
        weight: 0.3,
        run: async (input) => {
          const response = await service.pkiOperation(input, '127.0.0.1');
          if (response.status !== 200 && response.status !== 400) throw new Error(`HTTP ${response.status}`);
          return REFUSED;
        },
      },
      {
        // A mutated CSR inside a correctly signed and encrypted PKIMessage.
        name: 'SCEP PKIOperation, mutated CSR',
        seeds: [corpus.csr],
        typed: () => false,
        weight: 0.3,
        mutate: (seed, headers, rng) =>
          pkiMessage(corpus.requester, cms.buildEnvelopedData(mutateBinary(seed, headers, rng), options.scep!.raDer, OID.aes128Cbc)),
        run: async (input) => {
          const response = await service.pkiOperation(input, '127.0.0.1');
          if (response.status !== 200) throw new Error(`HTTP ${response.status} for a well-formed PKIMessage`);
          return REFUSED;
        },
      },
    );
  }
  return list;
}

/** A per-target stream, so adding a target does not change the mutants of the others. */
function streamSeed(seed: number, name: string): number {
  return createHash('sha256').update(`${seed}:${name}`).digest().readUInt32BE(0);
}

export async function fuzzParsers(corpus: Corpus, options: FuzzOptions): Promise<FuzzReport> {
  const list = targets(corpus, options);
  const totalWeight = list.reduce((sum, t) => sum + t.weight, 0);
  const deadline = options.seconds ? performance.now() + options.seconds * 1000 : undefined;
  const report: FuzzReport = { findings: [], perTarget: {} };
  for (const target of list) {
    const rng = new Rng(streamSeed(options.seed, target.name));
    const headers = target.seeds.map(headerOffsets);
    const stats = { mutants: 0, accepted: 0, checkedWithOpenssl: 0 };
    report.perTarget[target.name] = stats;
    const iterations = options.iterations ? Math.ceil((options.iterations * target.weight) / totalWeight) : Infinity;
    const until = deadline ? performance.now() + ((deadline - performance.now()) * target.weight) / totalWeight : Infinity;
    for (let i = 0; i < iterations && performance.now() < until; i++) {
      const seedIndex = rng.int(target.seeds.length);
      const seed = target.seeds[seedIndex]!;
      const input = (target.mutate ?? mutateBinary)(seed, headers[seedIndex]!, rng);
      stats.mutants++;
      const finding = (problem: string) =>
        report.findings.push({ target: target.name, iteration: i, problem, input: input.toString('base64') });
      let verdict: Verdict;
      try {
        verdict = await target.run(input, seedIndex);
      } catch (err) {
        if (!target.typed(err)) finding(`untyped error: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
        continue;
      }
      if (!verdict.accepted || input.equals(seed)) continue;
      stats.accepted++;
      if (stats.checkedWithOpenssl < options.opensslSample) {
        stats.checkedWithOpenssl++;
        const disagreement = verdict.opensslAgrees();
        if (disagreement) finding(disagreement);
      }
    }
    options.log?.(`${target.name}: ${stats.mutants} mutants, ${stats.accepted} accepted, ${stats.checkedWithOpenssl} checked with openssl`);
  }
  return report;
}
