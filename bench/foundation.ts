import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { AuditLog } from '../src/admin/audit.ts';
import { systemClock } from '../src/clock.ts';
import { createLogger } from '../src/log.ts';
import { EKU } from '../src/pki/certificate.ts';
import { Keyring } from '../src/pki/keyring.ts';
import { MasterKey } from '../src/pki/master-key.ts';
import { ensureServerPki } from '../src/pki/server-pki.ts';
import { SqliteStore } from '../src/store/sqlite/index.ts';
import { rate, type BenchRow } from './measure.ts';

/** Certificate issuance: build, sign with the intermediate and record in the SQLite inventory. */
export async function foundationBench(limits: { rsaSign: number }): Promise<BenchRow[]> {
  const store = SqliteStore.open(join(mkdtempSync(join(tmpdir(), 'certmdm-bench-')), 'bench.db'));
  await store.migrate();
  const clock = systemClock;
  const keyring = new Keyring(store, MasterKey.generate(), clock);
  const audit = new AuditLog(store, createLogger('silent'), clock);
  const pki = await ensureServerPki(
    { store, keyring, clock, audit },
    {
      organization: 'bench',
      rootAlgorithm: 'rsa-2048',
      rootDays: 3650,
      intermediateDays: 1825,
      tlsDays: 397,
      tlsRenewBeforeDays: 30,
      signingDays: 730,
      hostnames: ['localhost'],
    },
  );
  // A CSR hands the CA its SubjectPublicKeyInfo as DER, so issuance starts from that.
  const publicKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' });
  let n = 0;
  const issuance = await rate(() =>
    pki.authority.issue({
      role: 'device-identity',
      template: {
        subject: [
          ['O', 'bench'],
          ['CN', `device ${n++}`],
        ],
        publicKey,
        keyUsage: ['digitalSignature', 'keyEncipherment'],
        extendedKeyUsage: [EKU.clientAuth],
      },
      validityDays: 365,
    }),
  );
  await store.close();
  return [
    {
      figure: 'certificate issuance (sign + inventory insert)',
      value: issuance,
      unit: 'certs/s',
      limitName: 'raw RSA-2048 sign',
      limit: limits.rsaSign,
    },
  ];
}
