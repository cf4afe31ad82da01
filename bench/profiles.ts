import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePki, openApp } from '../src/app/context.ts';
import { createProfileService } from '../src/app/services.ts';
import { resolveConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { rate, type BenchRow } from './measure.ts';

/**
 * Signed enrollment profiles: with a SCEP identity (one RSA signature for the CMS) and with a PKCS#12 identity
 * (an RSA key generation, a certificate signature, PKCS#12 key derivation, the CMS signature).
 */
export async function profilesBench(limits: { rsaSign: number; rsaKeygen: number }): Promise<BenchRow[]> {
  const config = resolveConfig(
    {
      data: join(mkdtempSync(join(tmpdir(), 'certmdm-bench-profiles-')), 'data'),
      'root-algorithm': 'rsa-2048',
      hostname: ['localhost'],
      'push-topic': 'com.apple.mgmt.External.bench',
    },
    {},
  );
  const app = await openApp(config, { logger: createLogger('silent'), create: true });
  const profiles = createProfileService(app, await ensurePki(app));
  const scep = await rate(() => profiles.enrollment({ identity: 'scep', createdBy: 'bench' }), 2000);
  const pkcs12 = await rate(() => profiles.enrollment({ identity: 'pkcs12', createdBy: 'bench' }), 10_000);
  await app.close();
  return [
    {
      figure: 'signed enrollment profile, SCEP identity',
      value: scep,
      unit: 'profiles/s',
      limitName: 'raw RSA-2048 sign',
      limit: limits.rsaSign,
    },
    {
      figure: 'signed enrollment profile, PKCS#12 identity',
      value: pkcs12,
      unit: 'profiles/s',
      limitName: 'raw RSA-2048 key generation',
      limit: limits.rsaKeygen,
    },
  ];
}
