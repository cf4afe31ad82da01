#!/usr/bin/env node
// Production runs the compiled JavaScript in dist/ (built by `npm ci` through the `prepare` script, or `npm run build`).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('certmdm: dist/ is missing; run `npm run build` (npm ci does it through the prepare script)');
  process.exit(1);
}
const { main } = await import(entry.href);
await main();
