import type { Config } from '../config.ts';
import { AuditLog } from '../admin/audit.ts';
import { systemClock, type Clock } from '../clock.ts';
import { OperatorError, messageOf } from '../errors.ts';
import type { Logger } from '../log.ts';
import { Keyring } from '../pki/keyring.ts';
import { loadMasterKey, MASTER_KEY_CHECK, type MasterKey } from '../pki/master-key.ts';
import { CommandQueue } from '../mdm/command-queue.ts';
import { DeviceTokens } from '../mdm/device-tokens.ts';
import { ensureServerPki, type PkiSettings, type ServerPki } from '../pki/server-pki.ts';
import { redacted } from '../store/url.ts';
import { SqliteStore } from '../store/sqlite/index.ts';
import type { CertificateRole, Store } from '../store/types.ts';
import { prepareDataDir, type DataDirectory } from './data-dir.ts';

export interface AppContext {
  config: Config;
  dataDir: DataDirectory;
  store: Store;
  keyring: Keyring;
  /** MDM commands, their bodies sealed at rest. */
  commands: CommandQueue;
  /** Escrowed UnlockToken and BootstrapToken, sealed at rest. */
  deviceTokens: DeviceTokens;
  audit: AuditLog;
  logger: Logger;
  clock: Clock;
  close(): Promise<void>;
}

async function checkMasterKey(store: Store, master: MasterKey): Promise<void> {
  if ((await store.schemaVersion()) === 0) return;
  const stored = await store.getMeta(MASTER_KEY_CHECK);
  if (stored === undefined) throw new OperatorError('the database has no master key check value; it was not made by certmdm init');
  if (!master.matches(stored)) {
    throw new OperatorError('the master key does not open this data directory (wrong CERTMDM_MASTER_KEY or master key file)');
  }
}

/** The database as an operator knows it: the file, or the connection string without its password. */
export function storeName(config: Config): string {
  return config.store.kind === 'postgres' ? redacted(config.store.url) : `${config.dataDir}/certmdm.db`;
}

export async function openStore(config: Config, dataDir: DataDirectory): Promise<Store> {
  if (config.store.kind === 'sqlite') return SqliteStore.open(dataDir.databasePath, { busyTimeoutMs: config.dbBusyTimeoutMs });
  // Loaded only when asked for: node-postgres is a tenth of the start-up of a server on the embedded default.
  const { PostgresStore } = await import('../store/postgres/index.ts');
  return PostgresStore.open(config.store.url);
}

/**
 * Opens the data directory, database and PKI, creating them on first run when `create` is true. The order matters
 * for "nothing is overwritten": every check that can fail (directory, master key, database, key check value) runs
 * before the first write.
 */
export async function openApp(config: Config, options: { logger: Logger; clock?: Clock; create: boolean }): Promise<AppContext> {
  const clock = options.clock ?? systemClock;
  const external = config.store.kind !== 'sqlite';
  const dataDir = prepareDataDir(config.dataDir, { create: options.create, databaseFile: !external });
  const masterKey = (create: boolean) =>
    loadMasterKey({ envValue: process.env.CERTMDM_MASTER_KEY, file: config.masterKeyFile, create }).key;
  // SQLite: the key first, so a refusal leaves no database file behind. PostgreSQL: the database says whether the
  // deployment is fresh (no schema yet); every instance after the first brings the same master key.
  const early = external ? undefined : masterKey(dataDir.fresh);
  const store = await openStore(config, dataDir);
  let master: MasterKey;
  try {
    if (early) master = early;
    else {
      const fresh = (await store.schemaVersion()) === 0;
      if (fresh && !options.create) throw new OperatorError(`no certmdm database in ${storeName(config)}; run 'certmdm init' first`);
      master = masterKey(fresh);
    }
  } catch (err) {
    await store.close();
    throw err;
  }
  try {
    await checkMasterKey(store, master);
    await store.migrate();
    // Two instances starting on an empty database: the key that wrote the check value first is the deployment's; the
    // other instance is checked against it now, not left running with a key that opens nothing.
    if (!(await store.setMetaIfAbsent(MASTER_KEY_CHECK, master.checkValue()))) await checkMasterKey(store, master);
    const keyring = new Keyring(store, master, clock);
    const commands = new CommandQueue({ store, master });
    await commands.sealStoredInClear();
    const deviceTokens = new DeviceTokens(master);
    await store.sealEnrollmentTokens((id, kind, token) => deviceTokens.seal(id, kind, token));
    const audit = new AuditLog(store, options.logger, clock);
    return {
      config,
      dataDir,
      store,
      keyring,
      commands,
      deviceTokens,
      audit,
      logger: options.logger,
      clock,
      close: () => store.close(),
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** Loads the server PKI, creating what is missing (first run) or due (TLS hostnames changed, renewal window). */
/** The PKI settings a configuration asks for. */
export function pkiSettings(config: Config): PkiSettings {
  return {
    organization: config.organization,
    rootAlgorithm: config.rootAlgorithm,
    rootDays: config.rootDays,
    intermediateDays: config.intermediateDays,
    tlsDays: config.tlsDays,
    tlsRenewBeforeDays: config.tlsRenewBeforeDays,
    signingDays: config.signingDays,
    hostnames: config.hostnames,
    issuingAlgorithm: config.issuingAlgorithm,
    tlsAlgorithm: config.tlsAlgorithm,
  };
}

export async function ensurePki(app: AppContext, force: Partial<Record<CertificateRole, string>> = {}): Promise<ServerPki> {
  try {
    return await ensureServerPki(app, pkiSettings(app.config), force);
  } catch (err) {
    if (err instanceof OperatorError) throw err;
    const code = (err as { code?: string }).code ?? '';
    if (code.startsWith('SQLITE_BUSY')) {
      throw new OperatorError(`database ${app.dataDir.databasePath} is locked by another process; stop it or wait, then retry`);
    }
    if (/authenticate data|sealed key/.test(messageOf(err))) {
      throw new OperatorError(`a sealed private key does not open: ${messageOf(err)}`);
    }
    throw err;
  }
}
