import { cpus } from 'node:os';
import { foundationBench } from './foundation.ts';
import { machineLimits } from './limits.ts';
import { scepBench } from './scep.ts';
import { profilesBench } from './profiles.ts';
import { mdmBench } from './mdm.ts';
import { pushBench } from './push.ts';
import { simulationBench } from './simulate.ts';
import { printRows } from './measure.ts';
import { healthzBench } from './healthz.ts';

const limits = await machineLimits();
console.log(`certmdm bench — node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown cpu'})`);
console.log(
  `machine limits: RSA-2048 sign ${limits.rsaSign.toFixed(0)}/s, verify ${limits.rsaVerify.toFixed(0)}/s, key generation ${limits.rsaKeygen.toFixed(1)}/s (node:crypto)\n`,
);
const rows = [
  ...(await foundationBench(limits)),
  ...(await scepBench(limits)),
  ...(await healthzBench()),
  ...(await profilesBench(limits)),
  ...(await mdmBench(limits)),
  ...(await pushBench()),
  ...(await simulationBench(limits)),
];
printRows(rows);
