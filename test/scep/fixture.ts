import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePki, openApp } from '../../src/app/context.ts';
import { resolveConfig, type RawOptions } from '../../src/config.ts';
import { createServices } from '../../src/app/services.ts';
import { buildHttpServer } from '../../src/http/server.ts';
import { createLogger } from '../../src/log.ts';
import { toPem } from '../../src/pki/certificate.ts';
import { mintChallenge } from '../../src/scep/challenges.ts';
import { tempDir } from '../helpers/cli.ts';

/** The real server (HTTP edge, SCEP core, SQLite, PKI) in-process, with a clock the test moves. */
export async function scepFixture(flags: RawOptions = {}) {
  const dir = tempDir('scep-fixture-');
  let now = new Date();
  const config = resolveConfig(
    {
      data: join(dir, 'data'),
      'root-algorithm': 'rsa-2048',
      hostname: ['localhost'],
      'push-topic': 'com.apple.mgmt.External.5f3c0d1e-test',
      // Each last-seen time written with its message, so tests read the store as the message left it; batching has
      // its own test (test/mdm/hot-path.test.ts).
      'last-seen-flush-seconds': '0',
      ...flags,
    },
    {},
  );
  const app = await openApp(config, { logger: createLogger('silent'), clock: () => now, create: true });
  const pki = await ensurePki(app);
  const services = createServices(app, pki);
  const { scep } = services;
  const server = await buildHttpServer(app, pki, services);
  const root = join(dir, 'root.pem');
  const ra = join(dir, 'ra.pem');
  writeFileSync(root, toPem(pki.authority.root.der));
  writeFileSync(ra, toPem(pki.scepRa.certificate.der));
  return {
    app,
    pki,
    server,
    scep,
    profiles: services.profiles,
    services,
    dir,
    root,
    /** The RA certificate as GetCACert gives it now (it changes when the intermediate rolls over). */
    get ra() {
      writeFileSync(ra, toPem(pki.scepRa.certificate.der));
      return ra;
    },
    now: () => now,
    advance: (ms: number) => {
      now = new Date(now.getTime() + ms);
    },
    /** A one-time challenge; `enrollmentId` scopes its identity to that enrollment, as a renewal profile's is. */
    challenge: async (ttlMs = 3_600_000, enrollmentRef?: string, enrollmentId?: string) =>
      await mintChallenge(app.store, () => now, { ttlMs, purpose: 'scep', createdBy: 'test', enrollmentRef, enrollmentId }),
    identities: () => app.store.listCertificates({ role: 'device-identity' }),
    post: (body: Buffer) =>
      server.inject({
        method: 'POST',
        url: '/scep?operation=PKIOperation',
        payload: body,
        headers: { 'content-type': 'application/x-pki-message' },
      }),
    close: async () => {
      await server.close();
      await app.close();
    },
  };
}
