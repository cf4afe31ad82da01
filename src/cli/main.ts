import { createPrivateKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import {
  certificatesOf,
  createPushCsr,
  expiryWarning,
  importPushCertificate,
  pemBlocks,
  topicOf,
  vendorSign,
} from '../push/certificate.ts';
import { ensurePki, openApp, type AppContext } from '../app/context.ts';
import { mintApiToken } from '../admin/tokens.ts';
import { explicitOptions, renderOptionsHelp, storeLocation, type Config, type RawOptions } from '../config.ts';
import { redacted } from '../store/url.ts';
import { resolve } from 'node:path';
import { OperatorError, messageOf } from '../errors.ts';
import { createLogger } from '../log.ts';
import { toPem } from '../pki/certificate.ts';
import { formatInventoryTable, listInventory, pendingEntry } from '../pki/inventory.ts';
import { describePendingRequest, pendingPushRequests } from '../push/pending.ts';
import { CERTIFICATE_ROLES, type CertificateRole, type IdentityKind } from '../store/types.ts';
import { createProfileService } from '../app/services.ts';
import { recordServerNamesIfAbsent, serverNames, withServerNames } from '../app/server-names.ts';
import { loadServerPki } from '../pki/server-pki.ts';
import { prepareDataDir } from '../app/data-dir.ts';
import { loadMasterKey } from '../pki/master-key.ts';
import type { ProfileService } from '../profiles/service.ts';
import { parseCommand } from './args.ts';
import { DEFAULT_POLICY } from '../lifecycle/model.ts';
import { plan } from '../lifecycle/planner.ts';
import { lifecycleState } from '../lifecycle/state.ts';
import { schedule } from '../lifecycle/schedule.ts';
import { formatPlanReport, planReport } from '../lifecycle/schedule-report.ts';
import { simulateInProcesses } from '../lifecycle/simulation/processes.ts';
import { formatSimulationReport } from '../lifecycle/simulation/report.ts';
import { simulateShard } from '../lifecycle/simulation/simulate.ts';
import { LIFETIME_PRESETS, scaleLifetimes } from '../lifecycle/simulation/lifetimes.ts';
import { ENROLLMENT_REF_RULE, isEnrollmentRef, mintChallenge } from '../scep/challenges.ts';
import { ProfileError } from '../profiles/service.ts';
import { serve } from './serve.ts';

const USAGE = `usage: certmdm <command> [options]

commands:
  serve                         run the server (creates data directory, database and PKI on first run)
  init                          create the data directory, PKI and the first admin API token, then exit
  certs list [--json] [--pem]   the certificate inventory, soonest expiry first
  certs export --role ROLE [--out FILE]
                                PEM of the active certificates of a role (root, intermediate, tls, ...)
  admin create|passwd --name NAME
                                a console administrator, or a new password (ends its sessions); the password is read
                                from CERTMDM_ADMIN_PASSWORD or standard input, never from the command line
  admin list | admin delete --name NAME
  token create --name NAME      a new admin API token (printed once)
  token list                    admin API tokens (never their secrets)
  token revoke ID               revoke an admin API token
  enroll-link [--identity scep|pkcs12] [--device UDID] [--ttl-hours N]
                                a one-time enrollment link (GET it on the device to install the profile);
                                --device: a re-enrollment link that may take over that enrolled device
  profile enroll|trust --out FILE [--identity scep|pkcs12] [--unsigned]
                                write a signed enrollment or trust profile
  push csr [--out FILE]         a key (sealed) and CSR for Apple's push certificate portal
  push vendor-sign --csr F --vendor-cert F --vendor-key F --chain F [--out F]
                                the base64 PushCertificateRequest an MDM vendor signs
  push import FILE [--password P] [--key F] [--force-new-topic]
                                import Apple's push certificate (PEM, DER or PKCS#12)
  push status                   topic and expiry of the push certificate
  scep challenge [--ttl-hours N] [--enrollment REF] [--json]
                                a one-time SCEP challenge password (printed once)
  lifecycle forecast [--days N] [--json]
                                who is lost in the next N days (90) if every device keeps its check-in rhythm, and why
  lifecycle plan [--json] [--all] [--at DATE]
                                every upcoming expiry: what depends on it, the planned action and its date,
                                then what is due now (read-only); --all lists every device identity
  simulate --devices N --years Y --seed S [--json] [--no-lifecycle] [--processes N] [--lifetimes production|stress]
                                time-travel a simulated fleet through the real server over loopback TLS; report devices lost
  audit list [--json] [--limit N]
                                the audit log, newest first
  probe [--url URL] [--json]    connect to the public ServerURL as a device would: the chain it presents (a proxy's
                                perhaps), its expiry, and whether devices trust it; recorded for metrics and alerts
  backup --out FILE              a consistent snapshot of the SQLite database while serving (sealed keys included,
                                never the master key); on PostgreSQL use pg_dump (docs/operations.md)
  restore --from FILE [--force] put a backup in place in --data, after checking it is whole and that the master key
                                at hand opens it; --force replaces a database no server has open
  store migrate --from DATA_DIR --to postgres://…
                                copy a SQLite deployment into an empty PostgreSQL database, verified by row counts and
                                certificate fingerprints (the master key stays with you: give every instance the same)

'certmdm <command> --help' lists the options every command accepts.`;

const SIMULATE_USAGE = `simulate --devices N --years Y --seed S [--json] [--no-lifecycle] [--processes N]
      [--lifetimes production|stress] [--scale F] [--pin-server-url] [--rescue-grace-days 30] [--run-every-days 1]
      [--sim-identity-days D] [--sim-tls-days D] [--sim-tls-renew-before-days D] [--sim-intermediate-days D]
      [--sim-root-days D] [--sim-signing-days D] [--sim-challenge-ttl-hours H]
  Lifetimes are serve's production defaults (identity 365, TLS 397 renewed 30 early, intermediate 1825, root 3650,
  signing and RA 730 days, challenges 168 h) or the stress ratios (90/120/365/730), each multiplied by --scale;
  a --sim-* flag overrides one`;

function commandHelp(command: string): string {
  return `usage: certmdm ${command} [options]\n\noptions (flag, then CERTMDM_* environment, then --config file, then default):\n${renderOptionsHelp()}\n  CERTMDM_MASTER_KEY (env only)\n      the master key itself, 64 hex digits or base64; never put it on a command line\n`;
}

/** CLI commands act as the local administrator; their changes are audited as `cli`. */
async function withApp<T>(config: Config, create: boolean, fn: (app: AppContext) => Promise<T>): Promise<T> {
  const app = await openApp(config, { logger: createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, undefined), create });
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}

/**
 * Profiles and links from the CLI: the PKI as the server holds it (never re-issued from here: the server keeps
 * serving what it loaded) and the URLs and names the server recorded.
 */
async function cliProfiles(app: AppContext, values: RawOptions): Promise<ProfileService> {
  const pki = await loadServerPki(app);
  if (!pki) throw new OperatorError('this data directory has no server PKI yet: run certmdm init or certmdm serve first');
  const config = withServerNames(app.config, await serverNames(app.store), explicitOptions(values));
  return createProfileService({ ...app, config }, pki);
}

async function run(argv: string[]): Promise<void> {
  const [command, sub, ...rest] = argv;
  const out = (text: string): void => {
    process.stdout.write(text.endsWith('\n') ? text : text + '\n');
  };
  switch (command) {
    case 'serve': {
      const { config, values } = parseCommand(argv.slice(1));
      if (values.help) return out(commandHelp('serve'));
      return serve(config);
    }
    case 'init': {
      const { config, values } = parseCommand(argv.slice(1));
      if (values.help) return out(commandHelp('init'));
      return withApp(config, true, async (app) => {
        // Creates what a new data directory lacks; on an existing one (perhaps served right now) it changes nothing.
        const pki = (await loadServerPki(app)) ?? (await ensurePki(app));
        await recordServerNamesIfAbsent(app.store, config);
        const hasTokens = (await app.store.listApiTokens()).length > 0;
        out(`data directory ${app.dataDir.path}`);
        out(`root CA ${pki.authority.root.fingerprintSha256}`);
        if (hasTokens) return out('already initialised: existing keys, certificates and tokens were kept');
        const { token, record } = await mintApiToken(app.store, app.clock, 'initial-admin');
        await app.audit.record({ actor: 'cli', action: 'token.created', target: record.id, outcome: 'ok', detail: { name: record.name } });
        out(`first admin API token (shown once, store it now):\n${token}`);
      });
    }
    case 'certs': {
      const { config, values } = parseCommand(rest, {
        json: { type: 'boolean' },
        pem: { type: 'boolean' },
        role: { type: 'string' },
        out: { type: 'string' },
      });
      if (values.help || !sub) return out(commandHelp('certs list|export'));
      return withApp(config, false, async (app) => {
        if (sub === 'list') {
          const entries = await listInventory(app.store, app.clock(), { pem: Boolean(values.pem) });
          const pending = (await pendingPushRequests(app.store)).map(pendingEntry);
          return out(values.json ? JSON.stringify([...entries, ...pending], null, 2) : formatInventoryTable(entries, pending));
        }
        if (sub === 'export') {
          const role = values.role as string | undefined;
          if (!role || !(CERTIFICATE_ROLES as readonly string[]).includes(role)) {
            throw new OperatorError(`--role must be one of ${CERTIFICATE_ROLES.join(', ')}`, 2);
          }
          const certs = await app.store.listCertificates({ role: role as CertificateRole, status: 'active' });
          if (certs.length === 0) throw new OperatorError(`no active ${role} certificate`);
          const pem = certs.map((c) => toPem(c.der)).join('');
          if (values.out) writeFileSync(String(values.out), pem);
          else out(pem);
          return;
        }
        throw new OperatorError(`unknown certs command '${sub}'`, 2);
      });
    }
    case 'admin': {
      const { config, values } = parseCommand(rest, { name: { type: 'string' }, json: { type: 'boolean' } });
      if (values.help || !sub) return out(commandHelp('admin create|passwd|delete --name NAME | admin list [--json]'));
      const { adminCommand } = await import('./admin.ts');
      return withApp(config, false, async (app) =>
        out(await adminCommand(app, sub, values.name as string | undefined, Boolean(values.json))),
      );
    }
    case 'token': {
      const { config, values, positionals } = parseCommand(rest, { name: { type: 'string' }, json: { type: 'boolean' } });
      if (values.help || !sub) return out(commandHelp('token create|list|revoke'));
      return withApp(config, false, async (app) => {
        if (sub === 'create') {
          const name = String(values.name ?? '').trim();
          if (!name) throw new OperatorError('token create needs --name', 2);
          const { token, record } = await mintApiToken(app.store, app.clock, name);
          await app.audit.record({ actor: 'cli', action: 'token.created', target: record.id, outcome: 'ok', detail: { name } });
          return out(token);
        }
        if (sub === 'list') {
          const tokens = (await app.store.listApiTokens()).map((t) => ({
            id: t.id,
            name: t.name,
            createdAt: t.createdAt.toISOString(),
            lastUsedAt: t.lastUsedAt?.toISOString() ?? null,
            revokedAt: t.revokedAt?.toISOString() ?? null,
          }));
          return out(
            values.json
              ? JSON.stringify(tokens, null, 2)
              : tokens.map((t) => `${t.id}  ${t.revokedAt ? 'revoked' : 'active '}  ${t.name}`).join('\n'),
          );
        }
        if (sub === 'revoke') {
          const id = positionals[0];
          if (!id) throw new OperatorError('token revoke needs the token id', 2);
          if (!(await app.store.revokeApiToken(id, app.clock()))) throw new OperatorError(`no active token ${id}`);
          await app.audit.record({ actor: 'cli', action: 'token.revoked', target: id, outcome: 'ok' });
          return out(`revoked ${id}`);
        }
        throw new OperatorError(`unknown token command '${sub}'`, 2);
      });
    }
    case 'scep': {
      const { config, values } = parseCommand(rest, {
        'ttl-hours': { type: 'string' },
        enrollment: { type: 'string' },
        json: { type: 'boolean' },
      });
      if (values.help || sub !== 'challenge') return out(commandHelp('scep challenge [--ttl-hours N] [--enrollment REF]'));
      return withApp(config, false, async (app) => {
        const ttlHours = values['ttl-hours'] === undefined ? config.challengeTtlHours : Number(values['ttl-hours']);
        if (!(ttlHours > 0 && ttlHours <= 24 * 365)) throw new OperatorError('--ttl-hours must be above 0 and at most 8760', 2);
        const enrollmentRef = (values.enrollment as string | undefined) ?? null;
        if (enrollmentRef !== null && !isEnrollmentRef(enrollmentRef)) throw new OperatorError(`--enrollment: ${ENROLLMENT_REF_RULE}`, 2);
        const { challenge, record } = await mintChallenge(app.store, app.clock, {
          ttlMs: ttlHours * 3_600_000,
          purpose: 'scep',
          enrollmentRef,
          createdBy: 'cli',
        });
        await app.audit.record({
          actor: 'cli',
          action: 'scep.challenge-created',
          target: record.id,
          outcome: 'ok',
          detail: { expiresAt: record.expiresAt.toISOString(), enrollmentRef },
        });
        return out(values.json ? JSON.stringify({ id: record.id, challenge, expiresAt: record.expiresAt.toISOString() }) : challenge);
      });
    }
    case 'enroll-link': {
      const { config, values } = parseCommand(argv.slice(1), {
        identity: { type: 'string' },
        'ttl-hours': { type: 'string' },
        device: { type: 'string' },
        json: { type: 'boolean' },
      });
      if (values.help) return out(commandHelp('enroll-link [--identity scep|pkcs12] [--device UDID] [--ttl-hours N] [--json]'));
      const identity = identityKind(values.identity);
      return withApp(config, false, async (app) => {
        const profiles = await cliProfiles(app, values);
        const ttlHours = values['ttl-hours'] === undefined ? config.enrollLinkTtlHours : Number(values['ttl-hours']);
        if (!(ttlHours > 0 && ttlHours <= 24 * 365)) throw new OperatorError('--ttl-hours must be above 0 and at most 8760', 2);
        const device = values.device as string | undefined;
        let link: Awaited<ReturnType<typeof profiles.createLink>>;
        try {
          link = await profiles.createLink({ identity, createdBy: 'cli', ttlMs: ttlHours * 3_600_000, device });
        } catch (err) {
          if (err instanceof ProfileError) throw new OperatorError(err.message, 2);
          throw err;
        }
        const { url, record } = link;
        return out(
          values.json
            ? JSON.stringify({ id: record.id, url, identity, device: record.enrollmentId, expiresAt: record.expiresAt.toISOString() })
            : url,
        );
      });
    }
    case 'profile': {
      const { config, values } = parseCommand(rest, {
        identity: { type: 'string' },
        out: { type: 'string' },
        unsigned: { type: 'boolean' },
      });
      if (values.help || (sub !== 'enroll' && sub !== 'trust'))
        return out(commandHelp('profile enroll|trust --out FILE [--identity scep|pkcs12] [--unsigned]'));
      if (!values.out) throw new OperatorError('profile needs --out FILE', 2);
      return withApp(config, false, async (app) => {
        const profiles = await cliProfiles(app, values);
        const sign = !values.unsigned;
        const generated =
          sub === 'enroll'
            ? await profiles.enrollment({ identity: identityKind(values.identity), createdBy: 'cli', sign })
            : await profiles.trust({ createdBy: 'cli', sign });
        writeFileSync(String(values.out), generated.body, { mode: 0o600 });
        return out(
          `${generated.record.kind} profile ${generated.record.id} (${sign ? 'signed' : 'UNSIGNED'}) written to ${values.out}; effective expiry ${generated.record.effectiveExpiry.toISOString()}`,
        );
      });
    }
    case 'push': {
      const { config, values, positionals } = parseCommand(rest, {
        out: { type: 'string' },
        csr: { type: 'string' },
        'vendor-cert': { type: 'string' },
        'vendor-key': { type: 'string' },
        'vendor-key-passphrase': { type: 'string' },
        chain: { type: 'string' },
        password: { type: 'string' },
        key: { type: 'string' },
        'key-passphrase': { type: 'string' },
        'force-new-topic': { type: 'boolean' },
      });
      if (values.help || !sub) return out(commandHelp('push csr|vendor-sign|import|status'));
      const file = (flag: string) => {
        const path = values[flag];
        if (typeof path !== 'string') throw new OperatorError(`push ${sub} needs --${flag}`, 2);
        try {
          return readFileSync(path);
        } catch (err) {
          throw new OperatorError(`cannot read --${flag} ${path}: ${(err as Error).message}`);
        }
      };
      if (sub === 'vendor-sign') {
        // Pure: works without a data directory (vendors sign their customers' CSRs).
        const csrText = file('csr').toString('latin1');
        const csr = csrText.includes('-----BEGIN') ? pemBlocks(csrText, 'CERTIFICATE REQUEST')[0] : file('csr');
        if (!csr) throw new OperatorError('--csr holds no CERTIFICATE REQUEST');
        let vendorKey;
        try {
          vendorKey = createPrivateKey({ key: file('vendor-key'), passphrase: values['vendor-key-passphrase'] as string | undefined });
        } catch (err) {
          throw new OperatorError(`cannot read --vendor-key: ${(err as Error).message.split('\n')[0]}`);
        }
        const request = vendorSign({
          csr,
          vendorCertificates: [
            ...certificatesOf(file('vendor-cert').toString('latin1'), '--vendor-cert'),
            ...certificatesOf(file('chain').toString('latin1'), '--chain'),
          ],
          vendorKey,
        });
        if (values.out) writeFileSync(String(values.out), request + '\n');
        else out(request);
        return;
      }
      return withApp(config, false, async (app) => {
        const deps = { store: app.store, keyring: app.keyring, clock: app.clock, audit: app.audit };
        if (sub === 'csr') {
          const request = await createPushCsr(deps, { organization: config.organization, actor: 'cli' });
          const pem = toPem(request.der, 'CERTIFICATE REQUEST');
          if (values.out) writeFileSync(String(values.out), pem);
          else out(pem);
          return;
        }
        if (sub === 'import') {
          const path = positionals[0];
          if (!path) throw new OperatorError('push import needs the certificate file', 2);
          let data: Buffer;
          try {
            data = readFileSync(path);
          } catch (err) {
            throw new OperatorError(`cannot read ${path}: ${(err as Error).message}`);
          }
          try {
            const record = await importPushCertificate(deps, {
              data,
              password: values.password as string | undefined,
              key: values.key ? file('key') : undefined,
              keyPassphrase: values['key-passphrase'] as string | undefined,
              forceNewTopic: Boolean(values['force-new-topic']),
              actor: 'cli',
            });
            return out(`imported push certificate for ${topicOf(record.der)}, valid until ${record.notAfter.toISOString()}`);
          } catch (err) {
            if (err instanceof OperatorError)
              await app.audit.record({ actor: 'cli', action: 'push.import', outcome: 'denied', reason: err.message });
            throw err;
          }
        }
        if (sub === 'status') {
          const [current] = await app.store.listCertificates({ role: 'push', status: 'active' });
          const pending = (await pendingPushRequests(app.store)).map(describePendingRequest);
          if (!current)
            return out(
              [
                pending.length
                  ? 'no push certificate yet'
                  : 'no push certificate: run certmdm push csr, have it signed, then certmdm push import',
                ...pending,
              ].join('\n'),
            );
          const warning = expiryWarning(current, app.clock());
          return out(
            [
              `topic ${topicOf(current.der)}`,
              `valid until ${current.notAfter.toISOString()}`,
              ...(warning ? [`WARNING: ${warning.message}`] : []),
              ...pending,
            ].join('\n'),
          );
        }
        throw new OperatorError(`unknown push command '${sub}'`, 2);
      });
    }
    case 'lifecycle': {
      const { config, values } = parseCommand(rest, {
        json: { type: 'boolean' },
        at: { type: 'string' },
        all: { type: 'boolean' },
        days: { type: 'string' },
      });
      if (values.help || (sub !== 'plan' && sub !== 'forecast'))
        return out(commandHelp('lifecycle plan [--json] [--all] [--at YYYY-MM-DD] | lifecycle forecast [--days N] [--json]'));
      if (sub === 'forecast') {
        const days = values.days === undefined ? 90 : Number(values.days);
        if (!Number.isInteger(days) || days < 1 || days > 3650)
          throw new OperatorError('--days must be a whole number of days from 1 to 3650', 2);
        return withApp(config, false, async (app) => {
          const { forecastFromStore } = await import('../lifecycle/forecast-facts.ts');
          const { formatForecast } = await import('../lifecycle/forecast.ts');
          const result = await forecastFromStore(app.store, app.clock(), {
            days,
            pinning: app.config.pinServerUrl,
            identityDays: app.config.identityDays,
            rescueGraceDays: app.config.rescueGraceDays,
          });
          return out(values.json ? JSON.stringify(result, null, 2) : formatForecast(result));
        });
      }
      const at = values.at === undefined ? undefined : new Date(String(values.at));
      if (at && Number.isNaN(at.getTime())) throw new OperatorError('--at must be a date (YYYY-MM-DD or ISO 8601)', 2);
      return withApp(config, false, async (app) => {
        // --at: what will be due on that day if nothing changes until then.
        const state = await lifecycleState(app.store, at ?? app.clock(), {
          pinning: app.config.pinServerUrl,
          identityDays: app.config.identityDays,
          rescueGraceDays: app.config.rescueGraceDays,
        });
        const { lastProbe } = await import('../ops/probe.ts');
        const report = await planReport(
          app.store,
          schedule(state, DEFAULT_POLICY),
          plan(state, DEFAULT_POLICY),
          await lastProbe(app.store),
        );
        return out(values.json ? JSON.stringify(report, null, 2) : formatPlanReport(report, { all: Boolean(values.all) }));
      });
    }
    case 'simulate': {
      const { values } = parseCommand(argv.slice(1), {
        devices: { type: 'string' },
        years: { type: 'string' },
        seed: { type: 'string' },
        json: { type: 'boolean' },
        'no-lifecycle': { type: 'boolean' },
        lifetimes: { type: 'string' },
        scale: { type: 'string' },
        'sim-identity-days': { type: 'string' },
        'sim-tls-days': { type: 'string' },
        'sim-tls-renew-before-days': { type: 'string' },
        'sim-intermediate-days': { type: 'string' },
        'sim-root-days': { type: 'string' },
        'sim-signing-days': { type: 'string' },
        'sim-challenge-ttl-hours': { type: 'string' },
        'pin-server-url': { type: 'boolean' },
        'rescue-grace-days': { type: 'string' },
        'run-every-days': { type: 'string' },
        processes: { type: 'string' },
        shard: { type: 'string' },
      });
      if (values.help) return out(commandHelp(SIMULATE_USAGE));
      const number = (flag: string, fallback: number, min: number, max: number) => {
        const raw = values[flag];
        const value = raw === undefined ? fallback : Number(raw);
        if (!Number.isFinite(value) || value < min || value > max)
          throw new OperatorError(`--${flag} must be a number from ${min} to ${max}`, 2);
        return value;
      };
      const preset = String(values.lifetimes ?? 'production');
      if (!(preset in LIFETIME_PRESETS))
        throw new OperatorError(`--lifetimes must be one of ${Object.keys(LIFETIME_PRESETS).join(', ')}`, 2);
      const base = scaleLifetimes(LIFETIME_PRESETS[preset as keyof typeof LIFETIME_PRESETS], number('scale', 1, 0.01, 10));
      const lifetimes = {
        identityDays: number('sim-identity-days', base.identityDays, 1, 3650),
        tlsDays: number('sim-tls-days', base.tlsDays, 1, 825),
        tlsRenewBeforeDays: number('sim-tls-renew-before-days', base.tlsRenewBeforeDays, 0, 365),
        intermediateDays: number('sim-intermediate-days', base.intermediateDays, 7, 36500),
        rootDays: number('sim-root-days', base.rootDays, 30, 36500),
        signingDays: number('sim-signing-days', base.signingDays, 1, 3650),
        challengeTtlHours: number('sim-challenge-ttl-hours', base.challengeTtlHours, 1, 24 * 365),
      };
      const options = {
        devices: Math.floor(number('devices', 100, 1, 1_000_000)),
        years: number('years', 1, 0.1, 50),
        seed: Math.floor(number('seed', 1, 0, 2 ** 31)),
        lifecycle: !values['no-lifecycle'],
        lifetimes,
        pinning: Boolean(values['pin-server-url']),
        rescueGraceDays: number('rescue-grace-days', 30, 0, 365),
        runEveryDays: Math.floor(number('run-every-days', 1, 1, 30)),
      };
      if (values.shard !== undefined) {
        // One shard of a multi-process run: JSON on stdout, progress lines on stderr for the parent.
        const match = /^(\d+)\/(\d+)$/.exec(String(values.shard));
        if (!match || Number(match[1]) >= Number(match[2])) throw new OperatorError('--shard must be INDEX/COUNT, e.g. 0/2', 2);
        let reported = 0;
        const result = await simulateShard({
          ...options,
          shard: { index: Number(match[1]), count: Number(match[2]) },
          progress: (fraction) => {
            if (fraction - reported < 0.01 && fraction < 1) return;
            reported = fraction;
            process.stderr.write(`progress ${fraction.toFixed(3)}\n`);
          },
        });
        return out(JSON.stringify(result));
      }
      let percent = -1;
      const bar = (fraction: number) => {
        if (!process.stderr.isTTY) {
          // A long run under a supervisor or in a log: a line per whole percent.
          if (Math.floor(fraction * 100) === percent) return;
          percent = Math.floor(fraction * 100);
          return void process.stderr.write(`simulated ${percent}%\n`);
        }
        if (values.json) return;
        const width = 40;
        const done = Math.round(fraction * width);
        process.stderr.write(`\r[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${(fraction * 100).toFixed(0)}%`);
      };
      const report = await simulateInProcesses({ ...options, progress: bar }, Math.floor(number('processes', 1, 1, 64)));
      if (!values.json && process.stderr.isTTY) process.stderr.write('\n');
      return out(values.json ? JSON.stringify(report, null, 2) : formatSimulationReport(report));
    }
    case 'probe': {
      const { config, values } = parseCommand(argv.slice(1), { url: { type: 'string' }, json: { type: 'boolean' } });
      if (values.help) return out(commandHelp('probe [--url URL] [--json]'));
      return withApp(config, false, async (app) => {
        const url = values.url ? String(values.url) : ((await serverNames(app.store))?.publicUrl ?? config.publicUrl);
        const { formatProbeReport, probeAndRecord } = await import('../ops/probe.ts');
        const report = await probeAndRecord(app.store, url, app.clock());
        out(values.json ? JSON.stringify(report, null, 2) : formatProbeReport(report, app.clock()));
        // A chain devices would not trust is a failure an operator's script sees.
        if (!report.trusted) process.exitCode = 3;
      });
    }
    case 'backup': {
      const { config, values } = parseCommand(argv.slice(1), { out: { type: 'string' } });
      if (values.help) return out(commandHelp('backup --out FILE'));
      if (!values.out) throw new OperatorError('backup needs --out FILE', 2);
      if (config.store.kind !== 'sqlite')
        throw new OperatorError(
          'certmdm backup copies SQLite; on PostgreSQL use pg_dump (docs/operations.md), and keep the master key apart',
        );
      const { backupSqlite } = await import('../store/backup.ts');
      const facts = await backupSqlite(prepareDataDir(config.dataDir, { create: false }).databasePath, resolve(String(values.out)));
      return out(
        `backed up to ${resolve(String(values.out))}: schema ${facts.schemaVersion}, ${facts.certificates} certificates, ` +
          `${facts.enrollments} enrollments (the master key is not in it: keep it apart)`,
      );
    }
    case 'restore': {
      const { config, values } = parseCommand(argv.slice(1), { from: { type: 'string' }, force: { type: 'boolean' } });
      if (values.help) return out(commandHelp('restore --from FILE [--force]'));
      if (!values.from) throw new OperatorError('restore needs --from FILE', 2);
      if (config.store.kind !== 'sqlite')
        throw new OperatorError('certmdm restore writes SQLite; on PostgreSQL restore with pg_restore', 2);
      const { inspectBackup, restoreSqlite } = await import('../store/backup.ts');
      const from = resolve(String(values.from));
      // A damaged file or a master key that is not at hand is refused before the data directory is even made.
      inspectBackup(from);
      const master = loadMasterKey({ envValue: process.env.CERTMDM_MASTER_KEY, file: config.masterKeyFile, create: false }).key;
      const dataDir = prepareDataDir(config.dataDir, { create: true });
      const facts = restoreSqlite(from, dataDir.databasePath, { master, force: Boolean(values.force) });
      return out(
        `restored ${from} into ${dataDir.databasePath}: schema ${facts.schemaVersion}, ${facts.certificates} certificates, ${facts.enrollments} enrollments`,
      );
    }
    case 'store': {
      const { values } = parseCommand(rest, { from: { type: 'string' }, to: { type: 'string' } });
      if (values.help || sub !== 'migrate') return out(commandHelp('store migrate'));
      if (!values.from || !values.to) throw new OperatorError('store migrate needs --from DATA_DIR and --to postgres://…', 2);
      const target = storeLocation(String(values.to));
      if (target.kind !== 'postgres') throw new OperatorError('store migrate --to takes a postgres://… connection string', 2);
      const { copySqliteToPostgres } = await import('../store/copy.ts');
      const report = await copySqliteToPostgres(resolve(String(values.from)), target.url);
      const rows = Object.entries(report.tables)
        .map(([table, n]) => `  ${table.padEnd(24)} ${n}`)
        .join('\n');
      return out(
        `copied into ${redacted(target.url)}, verified:\n${rows}\n  ${report.certificates} certificates, each matching its SHA-256 fingerprint`,
      );
    }
    case 'audit': {
      const { config, values } = parseCommand(rest, { json: { type: 'boolean' }, limit: { type: 'string' } });
      if (values.help || sub !== 'list') return out(commandHelp('audit list'));
      return withApp(config, false, async (app) => {
        const limit = Math.floor(Number(values.limit ?? 50));
        if (!(limit >= 1 && limit <= 100_000)) throw new OperatorError('--limit must be a whole number from 1 to 100000', 2);
        const events = await app.store.listAudit({ limit });
        return out(
          values.json
            ? JSON.stringify(events, null, 2)
            : events
                .map(
                  (e) =>
                    `${e.at.toISOString()}  ${e.outcome.padEnd(7)} ${e.action}  ${e.actor}${e.target ? '  ' + e.target : ''}${e.reason ? '  (' + e.reason + ')' : ''}`,
                )
                .join('\n'),
        );
      });
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      return out(USAGE);
    default:
      throw new OperatorError(`unknown command '${command}'\n${USAGE}`, 2);
  }
}

function identityKind(raw: unknown): IdentityKind {
  const value = raw ?? 'scep';
  if (value !== 'scep' && value !== 'pkcs12') throw new OperatorError("--identity must be 'scep' or 'pkcs12'", 2);
  return value;
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  // Everything certmdm creates (database, WAL, key files, exports) is private to its user.
  process.umask(0o077);
  try {
    await run(argv);
  } catch (err) {
    if (err instanceof OperatorError) {
      process.stderr.write(`certmdm: error: ${err.message}\n`);
      process.exit(err.exitCode);
    }
    process.stderr.write(`certmdm: internal error: ${err instanceof Error ? (err.stack ?? err.message) : messageOf(err)}\n`);
    process.exit(70);
  }
}
