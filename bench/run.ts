import { cpus } from 'node:os';
import { foundationBench } from './foundation.ts';
import { machineLimits } from './limits.ts';
import { scepBench } from './scep.ts';
import { scepPeersBench } from './scep-peers.ts';
import { profilesBench } from './profiles.ts';
import { mdmBench } from './mdm.ts';
import { pushBench } from './push.ts';
import { simulationBench } from './simulate.ts';
import { printRows, type BenchRow } from './measure.ts';
import { healthzBench } from './healthz.ts';
import { consoleBench } from './console.ts';

type Limits = Awaited<ReturnType<typeof machineLimits>>;
const SECTIONS: Record<string, (limits: Limits) => Promise<BenchRow[]>> = {
  foundation: foundationBench,
  scep: scepBench,
  'scep-peers': scepPeersBench,
  healthz: () => healthzBench(),
  profiles: profilesBench,
  mdm: mdmBench,
  push: () => pushBench(),
  simulate: simulationBench,
  console: () => consoleBench(),
};

// `npm run bench -- mdm scep` runs only those sections; no argument runs all of them.
const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !(name in SECTIONS));
if (unknown.length) {
  console.error(`unknown bench section(s): ${unknown.join(', ')} (sections: ${Object.keys(SECTIONS).join(', ')})`);
  process.exit(2);
}
const limits = await machineLimits();
console.log(`certmdm bench — node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown cpu'})`);
console.log(
  `machine limits: RSA-2048 sign ${limits.rsaSign.toFixed(0)}/s, verify ${limits.rsaVerify.toFixed(0)}/s, key generation ${limits.rsaKeygen.toFixed(1)}/s (node:crypto)\n`,
);
const rows: BenchRow[] = [];
for (const [name, section] of Object.entries(SECTIONS)) if (!wanted.length || wanted.includes(name)) rows.push(...(await section(limits)));
printRows(rows);
