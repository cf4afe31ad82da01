import { simulate, SIMULATION_DEFAULTS } from '../src/lifecycle/simulator.ts';
for (const lifecycle of [true, false]) {
  const r = await simulate({ devices: 20, years: 1, seed: 7, lifecycle, ...SIMULATION_DEFAULTS });
  console.log(JSON.stringify(r));
}
