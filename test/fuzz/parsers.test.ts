import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { scepFixture } from '../scep/fixture.ts';
import { buildCorpus, pkiMessageSeed, type Corpus } from './corpus.ts';
import { fuzzParsers } from './harness.ts';

/**
 * The suite's fuzz run: a fixed number of seeded mutants (deterministic for a seed; FUZZ_SEED picks another), well
 * under a minute. `npm run fuzz` runs the same targets for longer (FUZZ_SECONDS).
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20261201);
const ITERATIONS = 20_000;

describe('fuzz: every hand-written parser, from openssl and plistlib inputs', () => {
  let corpus: Corpus;
  let f: Awaited<ReturnType<typeof scepFixture>>;
  before(async () => {
    corpus = buildCorpus();
    f = await scepFixture();
  });
  after(() => f.close());

  test(`seed ${SEED}: only typed errors, and nothing accepted that openssl rejects`, async () => {
    const { challenge } = await f.challenge(86_400_000);
    const report = await fuzzParsers(corpus, {
      seed: SEED,
      iterations: ITERATIONS,
      opensslSample: 8,
      scep: { service: f.scep, raDer: f.pki.scepRa.certificate.der, pkiMessage: pkiMessageSeed(corpus, f.ra, challenge) },
    });
    for (const [name, stats] of Object.entries(report.perTarget)) assert.ok(stats.mutants > 0, `${name} was fuzzed`);
    const shown = report.findings
      .slice(0, 5)
      .map((x) => `${x.target} #${x.iteration}: ${x.problem}\n  input (base64): ${x.input.slice(0, 400)}`);
    assert.equal(report.findings.length, 0, `${report.findings.length} findings (seed ${SEED}):\n${shown.join('\n')}`);
  });
});
