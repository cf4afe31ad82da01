import { randomBytes, scrypt } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePki, openApp } from '../src/app/context.ts';
import { createServices } from '../src/app/services.ts';
import { resolveConfig } from '../src/config.ts';
import { lifecycleView } from '../src/console/facts.ts';
import { hashPassword } from '../src/console/passwords.ts';
import { forecastFromStore } from '../src/lifecycle/forecast-facts.ts';
import { buildHttpServer } from '../src/http/server.ts';
import { createLogger } from '../src/log.ts';
import { bindingPolicy } from '../src/mdm/binding.ts';
import type { BenchRow } from './measure.ts';

const DEVICES = 2000;
const DAY = 86_400_000;

/** Milliseconds per call of `fn`, the median of `n` calls after one warm-up. */
async function median(fn: () => Promise<unknown>, n = 7): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[Math.floor(n / 2)]!;
}

/**
 * The console with a fleet of 2000 enrolled devices (rows written straight into the store: no cryptography): the
 * pages an administrator opens most, each beside the planner's or forecast's own read of the same facts (the floor a
 * page cannot go under), and the login's scrypt beside a bare crypto.scrypt of the same parameters.
 */
export async function consoleBench(): Promise<BenchRow[]> {
  const config = resolveConfig(
    { data: join(mkdtempSync(join(tmpdir(), 'certmdm-bench-console-')), 'data'), 'root-algorithm': 'rsa-2048', hostname: ['localhost'] },
    {},
  );
  const app = await openApp(config, { logger: createLogger('silent'), create: true });
  const pki = await ensurePki(app);
  const server = await buildHttpServer(app, pki, createServices(app, pki));
  const now = app.clock();
  const decide = bindingPolicy({ permissiveReenrollment: false });
  const issuer = pki.authority.intermediate;
  for (let i = 0; i < DEVICES; i++) {
    const notBefore = new Date(now.getTime() - (i % 365) * DAY);
    const id = `crt_bench_${i}`;
    await app.store.insertCertificates([
      {
        certificate: {
          id,
          role: 'device-identity',
          subject: `CN=bench-${i}`,
          issuerId: (await app.store.getCertificateByFingerprint(issuer.fingerprintSha256))!.id,
          serialHex: randomBytes(16).toString('hex'),
          fingerprintSha256: randomBytes(32).toString('hex'),
          notBefore,
          notAfter: new Date(notBefore.getTime() + 365 * DAY),
          status: 'active',
          keyId: null,
          der: randomBytes(64),
          createdAt: notBefore,
          supersededBy: null,
          servesEnrollment: null,
          renewalOf: null,
        },
      },
    ]);
    await app.store.authenticateEnrollment({
      id: `BENCH-${i}`,
      kind: 'device',
      certificateId: id,
      topic: 't',
      info: { DeviceName: `Device ${i}`, SerialNumber: `SN${i}` },
      now: notBefore,
      decide,
    });
    await app.store.touchEnrollments([{ id: `BENCH-${i}`, at: new Date(now.getTime() - (i % 30) * DAY) }]);
  }
  const password = 'bench password, long enough';
  await app.store.insertAdminAccount({
    name: 'bench',
    passwordHash: await hashPassword(password),
    createdAt: now,
    passwordChangedAt: now,
    lastLoginAt: null,
  });

  const loginForm = await server.inject({ method: 'GET', url: '/console/login' });
  const loginCookie = String(loginForm.headers['set-cookie']).split(';')[0]!;
  const csrf = /name="csrf" value="([^"]+)"/.exec(loginForm.body)![1]!;
  const login = () =>
    server.inject({
      method: 'POST',
      url: '/console/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: loginCookie },
      payload: new URLSearchParams({ csrf, name: 'bench', password }).toString(),
    });
  const loginMs = await median(login, 5);
  const session = String((await login()).headers['set-cookie']).split(';')[0]!;
  const scryptMs = await median(
    () =>
      new Promise((resolve, reject) =>
        scrypt(password, randomBytes(16), 32, { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }, (e, k) => (e ? reject(e) : resolve(k))),
      ),
    5,
  );
  const get = (url: string) => async () => {
    const r = await server.inject({ method: 'GET', url, headers: { cookie: session } });
    if (r.statusCode !== 200) throw new Error(`${url}: ${r.statusCode}`);
  };
  const view = () => lifecycleView(app, app.clock());
  const overview = await median(get('/console'));
  const timeline = await median(get('/console/timeline'));
  const planner = await median(view);
  const forecastPage = await median(get('/console/forecast?days=90'));
  const forecastRead = await median(() =>
    forecastFromStore(app.store, app.clock(), { days: 90, pinning: false, identityDays: 365, rescueGraceDays: 30 }),
  );
  await server.close();
  await app.close();
  const floor = `the planner's read of the same ${DEVICES} devices (state, plan, schedule)`;
  return [
    {
      figure: `console Overview page, ${DEVICES} devices (lower is better)`,
      value: overview,
      unit: 'ms',
      limitName: floor,
      limit: planner,
      target: { max: 1000, text: '≤ 1 s' },
    },
    {
      figure: `console Timeline page (chart and histogram), ${DEVICES} devices (lower is better)`,
      value: timeline,
      unit: 'ms',
      limitName: floor,
      limit: planner,
      target: { max: 1000, text: '≤ 1 s' },
    },
    {
      figure: `console Forecast page, 90 days, ${DEVICES} devices (lower is better)`,
      value: forecastPage,
      unit: 'ms',
      limitName: 'forecastFromStore alone',
      limit: forecastRead,
      target: { max: 1000, text: '≤ 1 s' },
    },
    {
      figure: 'console login (scrypt verify, session, audit): the cost of one password guess',
      value: loginMs,
      unit: 'ms',
      limitName: 'bare crypto.scrypt, N=2^15 r=8',
      limit: scryptMs,
      target: { min: 50, text: '≥ 50 ms per guess' },
    },
  ];
}
