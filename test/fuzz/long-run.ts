/**
 * The long fuzz run: `npm run fuzz` (FUZZ_SECONDS, default 300; FUZZ_SEED, default the time). Same targets as
 * test/fuzz/parsers.test.ts; prints every finding, writes their inputs to a JSON file, and exits non-zero if there is one.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scepFixture } from '../scep/fixture.ts';
import { buildCorpus, pkiMessageSeed } from './corpus.ts';
import { fuzzParsers } from './harness.ts';

const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const seconds = Number(process.env.FUZZ_SECONDS ?? 300);
console.log(`fuzz: seed ${seed}, ${seconds} s`);
const corpus = buildCorpus();
const f = await scepFixture();
const { challenge } = await f.challenge(86_400_000);
const report = await fuzzParsers(corpus, {
  seed,
  seconds,
  opensslSample: 50,
  scep: { service: f.scep, raDer: f.pki.scepRa.certificate.der, pkiMessage: pkiMessageSeed(corpus, f.ra, challenge) },
  log: (line) => console.log(line),
});
await f.close();
for (const finding of report.findings) console.log(`FINDING ${finding.target} #${finding.iteration}: ${finding.problem}`);
if (report.findings.length) {
  const file = join(tmpdir(), `certmdm-fuzz-${seed}.json`);
  writeFileSync(file, JSON.stringify(report.findings, null, 1));
  console.log(`the inputs (base64) are in ${file}`);
}
console.log(`${report.findings.length} findings (seed ${seed})`);
process.exitCode = report.findings.length ? 1 : 0;
