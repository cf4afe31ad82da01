import { readFileSync } from 'node:fs';
import { hostname as systemHostname } from 'node:os';
import { isIP } from 'node:net';
import { resolve, join } from 'node:path';
import { OperatorError, messageOf } from './errors.ts';
import { LEAF_ALGORITHMS, parseKeyAlgorithm, type KeyAlgorithm, type LeafAlgorithm } from './pki/algorithms.ts';
import type { CipherFamily } from './pki/cms.ts';
import { PROXY_CERT_FORMATS, type ProxyCertFormat } from './mdm/proxy-certificate.ts';
import { DAY_MS } from './clock.ts';
import { unservableLifetimes } from './lifecycle/lifetimes.ts';
import { DEFAULT_POLICY } from './lifecycle/model.ts';

/** Where certmdm stores its state: the data directory's SQLite file, or a PostgreSQL database several instances share. */
export type StoreLocation = { kind: 'sqlite' } | { kind: 'postgres'; url: string };

export interface Config {
  dataDir: string;
  store: StoreLocation;
  configFile: string | null;
  listen: string;
  port: number;
  hostnames: string[];
  organization: string;
  rootAlgorithm: KeyAlgorithm;
  issuingAlgorithm: LeafAlgorithm;
  tlsAlgorithm: LeafAlgorithm;
  rootDays: number;
  intermediateDays: number;
  tlsDays: number;
  tlsRenewBeforeDays: number;
  signingDays: number;
  masterKeyFile: string;
  bodyLimit: number;
  dbBusyTimeoutMs: number;
  logLevel: string;
  identityDays: number;
  scepCiphers: CipherFamily[];
  challengeTtlHours: number;
  scepMaxClockSkewMinutes: number;
  scepBodyLimit: number;
  /** Port of the optional plain-HTTP SCEP listener; null when off. */
  scepHttpPort: number | null;
  /** Base of every URL a device is given (ServerURL, CheckInURL, SCEP); must never change once devices enrolled. */
  publicUrl: string;
  scepUrl: string;
  pushTopic: string | null;
  signMessage: boolean;
  pinServerUrl: boolean;
  /** The admin console at /console on the HTTPS listener. */
  console: boolean;
  /** Any fresh identity may take over an enrolled UDID (other servers' behaviour; weaker). Off by default. */
  permissiveReenrollment: boolean;
  /**
   * Days after its expiry that an enrollment's current, never-retired identity is still accepted for one purpose: to
   * receive its renewal profile (src/mdm/rescue.ts). 0 turns rescue off.
   */
  rescueGraceDays: number;
  /** subjectAltName values SCEP may put in an identity, as `dns:`/`email:`/`uri:` patterns; none by default. */
  scepAllowedSans: string[];
  pkcs12Encryption: 'legacy' | 'modern';
  enrollLinkTtlHours: number;
  mdmIdentitySources: ('mtls' | 'proxy' | 'signature')[];
  trustedProxies: string[];
  /** The one header (lower case) a trusted proxy passes the client certificate in, and its format. */
  proxyCertHeader: string;
  proxyCertFormat: ProxyCertFormat;
  signingTimeSkewMinutes: number;
  mdmBodyLimit: number;
  webhookUrl: string | null;
  webhookSecret: string | null;
  apnsUrl: string;
  apnsCaFile: string | null;
  pushConcurrency: number;
  pushExpirationDays: number;
  lifecycleIntervalMinutes: number;
  pkiPollSeconds: number;
  lastSeenFlushSeconds: number;
  /** The plain-HTTP listener of GET /metrics; null: none. */
  metricsPort: number | null;
  metricsListen: string;
}

type Kind = 'string' | 'integer' | 'list';
interface OptionSpec {
  flag: string;
  env: string;
  kind: Kind;
  help: string;
  /** Shown in --help; the real default is computed in resolveConfig. */
  defaultText: string;
}

export function storeLocation(value: string): StoreLocation {
  if (value === 'sqlite') return { kind: 'sqlite' };
  if (/^postgres(ql)?:\/\/[^\s]+$/.test(value)) return { kind: 'postgres', url: value };
  throw new OperatorError("--store must be 'sqlite' or a postgres://… connection string");
}

/** Every option of `certmdm serve` (and the other commands that open the data directory). */
export const OPTIONS: OptionSpec[] = [
  {
    flag: 'data',
    env: 'CERTMDM_DATA',
    kind: 'string',
    defaultText: './data',
    help: 'data directory (database, master key file); created 0700 on first run',
  },
  {
    flag: 'store',
    env: 'CERTMDM_STORE',
    kind: 'string',
    defaultText: 'sqlite',
    help: "'sqlite' (a file in the data directory) or postgres://user@host/db (several instances may share it; the master key must be the same on each)",
  },
  {
    flag: 'config',
    env: 'CERTMDM_CONFIG',
    kind: 'string',
    defaultText: 'none',
    help: 'JSON file whose keys are these option names; flags and env override it',
  },
  { flag: 'listen', env: 'CERTMDM_LISTEN', kind: 'string', defaultText: '0.0.0.0', help: 'address the HTTPS listener binds' },
  { flag: 'port', env: 'CERTMDM_PORT', kind: 'integer', defaultText: '8443', help: 'HTTPS port (0 picks a free one)' },
  {
    flag: 'hostname',
    env: 'CERTMDM_HOSTNAMES',
    kind: 'list',
    defaultText: "this host's name, localhost, 127.0.0.1",
    help: 'DNS name or IP devices use to reach the server; repeat or comma-separate; the first is the public one. Each becomes a SAN of the TLS certificate',
  },
  {
    flag: 'organization',
    env: 'CERTMDM_ORGANIZATION',
    kind: 'string',
    defaultText: 'certmdm',
    help: 'organization name in certificate subjects and profiles',
  },
  {
    flag: 'root-algorithm',
    env: 'CERTMDM_ROOT_ALGORITHM',
    kind: 'string',
    defaultText: 'rsa-3072',
    help: 'root CA key: rsa-2048, rsa-3072, rsa-4096 or p-384 (used only when the CA is first created)',
  },
  {
    flag: 'issuing-algorithm',
    env: 'CERTMDM_ISSUING_ALGORITHM',
    kind: 'string',
    defaultText: 'rsa-2048',
    help: 'intermediate CA key, which signs device identities, the TLS certificate and the profile signer: rsa-2048 or p-256 (used when an intermediate is made: first run, rollover; the SCEP RA and device keys stay RSA)',
  },
  {
    flag: 'tls-algorithm',
    env: 'CERTMDM_TLS_ALGORITHM',
    kind: 'string',
    defaultText: 'rsa-2048',
    help: 'TLS certificate key: rsa-2048 or p-256 (cheaper full handshakes); a change re-issues the TLS certificate at the next start',
  },
  { flag: 'root-days', env: 'CERTMDM_ROOT_DAYS', kind: 'integer', defaultText: '3650', help: 'root CA validity in days' },
  {
    flag: 'intermediate-days',
    env: 'CERTMDM_INTERMEDIATE_DAYS',
    kind: 'integer',
    defaultText: '1825',
    help: 'intermediate CA validity in days (capped by the root)',
  },
  {
    flag: 'tls-days',
    env: 'CERTMDM_TLS_DAYS',
    kind: 'integer',
    defaultText: '397',
    help: "server TLS certificate validity in days; at most 825 (Apple's limit for private roots)",
  },
  {
    flag: 'tls-renew-before-days',
    env: 'CERTMDM_TLS_RENEW_BEFORE_DAYS',
    kind: 'integer',
    defaultText: '30',
    help: 're-issue the TLS certificate at start when it expires within this many days',
  },
  {
    flag: 'signing-days',
    env: 'CERTMDM_SIGNING_DAYS',
    kind: 'integer',
    defaultText: '730',
    help: 'profile-signing certificate validity in days',
  },
  {
    flag: 'master-key-file',
    env: 'CERTMDM_MASTER_KEY_FILE',
    kind: 'string',
    defaultText: '<data>/master.key',
    help: 'file holding the key that seals private keys (0600, created on first run); CERTMDM_MASTER_KEY (env only) takes precedence',
  },
  {
    flag: 'body-limit',
    env: 'CERTMDM_BODY_LIMIT',
    kind: 'integer',
    defaultText: '1048576',
    help: 'largest request body accepted, in bytes',
  },
  {
    flag: 'db-busy-timeout-ms',
    env: 'CERTMDM_DB_BUSY_TIMEOUT_MS',
    kind: 'integer',
    defaultText: '5000',
    help: 'how long to wait for a locked database before giving up',
  },
  {
    flag: 'identity-days',
    env: 'CERTMDM_IDENTITY_DAYS',
    kind: 'string',
    defaultText: '365',
    help: 'validity of device identity certificates issued by SCEP, in days (fractions allowed, e.g. 0.01 for simulations)',
  },
  {
    flag: 'scep-ciphers',
    env: 'CERTMDM_SCEP_CIPHERS',
    kind: 'list',
    defaultText: 'aes,des3',
    help: 'SCEP content ciphers accepted: aes (AES-128/192/256-CBC) and des3 (DES-EDE3-CBC), both advertised in GetCACaps; des (single DES, 56-bit) only for legacy clients such as micromdm scepclient, never advertised',
  },
  {
    flag: 'challenge-ttl-hours',
    env: 'CERTMDM_CHALLENGE_TTL_HOURS',
    kind: 'integer',
    defaultText: '168',
    help: 'lifetime of one-time SCEP challenge passwords, in hours',
  },
  {
    flag: 'scep-max-clock-skew-minutes',
    env: 'CERTMDM_SCEP_MAX_CLOCK_SKEW_MINUTES',
    kind: 'integer',
    defaultText: '30',
    help: 'a SCEP request whose signingTime is further from our clock gets FAILURE badTime',
  },
  {
    flag: 'scep-body-limit',
    env: 'CERTMDM_SCEP_BODY_LIMIT',
    kind: 'integer',
    defaultText: '262144',
    help: 'largest SCEP PKIOperation body accepted, in bytes',
  },
  {
    flag: 'scep-http-port',
    env: 'CERTMDM_SCEP_HTTP_PORT',
    kind: 'string',
    defaultText: 'off',
    help: 'also serve /scep (and nothing else) over plain HTTP on this port; SCEP messages are signed and encrypted end to end (0 picks a free port)',
  },
  {
    flag: 'public-url',
    env: 'CERTMDM_PUBLIC_URL',
    kind: 'string',
    defaultText: 'https://<first hostname>:<port>',
    help: 'https base URL devices use (ServerURL, CheckInURL, SCEP, enrollment links); it must never change once devices have enrolled',
  },
  {
    flag: 'scep-url',
    env: 'CERTMDM_SCEP_URL',
    kind: 'string',
    defaultText: '<public-url>/scep',
    help: 'SCEP URL put in enrollment profiles',
  },
  {
    flag: 'push-topic',
    env: 'CERTMDM_PUSH_TOPIC',
    kind: 'string',
    defaultText: 'from the push certificate',
    help: 'APNs topic (com.apple.mgmt.…) for enrollment profiles until a push certificate is imported',
  },
  {
    flag: 'sign-message',
    env: 'CERTMDM_SIGN_MESSAGE',
    kind: 'string',
    defaultText: 'true',
    help: 'SignMessage in the MDM payload: devices sign every message (Mdm-Signature), needed behind TLS-terminating proxies',
  },
  {
    flag: 'console',
    env: 'CERTMDM_CONSOLE',
    kind: 'string',
    defaultText: 'true',
    help: 'serve the admin console at /console (log in with an account from certmdm admin create)',
  },
  {
    flag: 'pin-server-url',
    env: 'CERTMDM_PIN_SERVER_URL',
    kind: 'string',
    defaultText: 'false',
    help: "pin ServerURL and CheckInURL to the profile's root certificates (ServerURLPinningCertificateUUIDs)",
  },
  {
    flag: 'permissive-reenrollment',
    env: 'CERTMDM_PERMISSIVE_REENROLLMENT',
    kind: 'string',
    defaultText: 'false',
    help:
      'WEAKER: let any fresh identity (from any enrollment link or challenge) take over an enrolled UDID, as other MDM servers do; ' +
      'by default only an identity minted for that enrollment (renewal, enroll-link --device) may',
  },
  {
    flag: 'scep-allowed-san',
    env: 'CERTMDM_SCEP_ALLOWED_SANS',
    kind: 'list',
    defaultText: 'none',
    help: "subjectAltNames SCEP may issue, comma list of dns:PATTERN, email:PATTERN, uri:PATTERN ('*' matches within one DNS label or the local part); a CSR asking for any other is refused",
  },
  {
    flag: 'pkcs12-encryption',
    env: 'CERTMDM_PKCS12_ENCRYPTION',
    kind: 'string',
    defaultText: 'legacy',
    help: 'PKCS#12 identities: legacy (3DES, SHA-1 MAC; every Apple OS imports it) or modern (AES-256, PBKDF2, SHA-256 MAC; current OS versions only)',
  },
  {
    flag: 'enroll-link-ttl-hours',
    env: 'CERTMDM_ENROLL_LINK_TTL_HOURS',
    kind: 'integer',
    defaultText: '72',
    help: 'lifetime of one-time enrollment links, in hours',
  },
  {
    flag: 'mdm-identity-sources',
    env: 'CERTMDM_MDM_IDENTITY_SOURCES',
    kind: 'list',
    defaultText: 'mtls,signature',
    help: 'where a device identity certificate may come from: mtls (client certificate on this listener), proxy (header from a trusted TLS-terminating proxy), signature (Mdm-Signature)',
  },
  {
    flag: 'trusted-proxies',
    env: 'CERTMDM_TRUSTED_PROXIES',
    kind: 'list',
    defaultText: 'none',
    help: 'addresses of TLS-terminating proxies whose client-certificate header is honoured',
  },
  {
    flag: 'proxy-cert-header',
    env: 'CERTMDM_PROXY_CERT_HEADER',
    kind: 'string',
    defaultText: 'x-client-cert (client-cert with --proxy-cert-format rfc9440)',
    help: 'the one header a trusted proxy passes the client certificate in; a request with any other client-certificate header is refused',
  },
  {
    flag: 'proxy-cert-format',
    env: 'CERTMDM_PROXY_CERT_FORMAT',
    kind: 'string',
    defaultText: 'nginx-escaped-pem',
    help: "format of that header: nginx-escaped-pem (nginx $ssl_client_escaped_cert), rfc9440 (:base64 DER:), go-query-escape (Go url.QueryEscape of the PEM, '+' for space)",
  },
  {
    flag: 'rescue-grace-days',
    env: 'CERTMDM_RESCUE_GRACE_DAYS',
    kind: 'integer',
    defaultText: '30',
    help: 'a device whose current identity expired less than this many days ago (bound, never revoked or superseded) is accepted only to receive its renewal profile; nothing else is delivered or stored until the new identity authenticates. 0 turns rescue off',
  },
  {
    flag: 'signing-time-skew-minutes',
    env: 'CERTMDM_SIGNING_TIME_SKEW_MINUTES',
    kind: 'integer',
    defaultText: '5',
    help: "how far an Mdm-Signature signingTime may lie outside the certificate's validity",
  },
  {
    flag: 'mdm-body-limit',
    env: 'CERTMDM_MDM_BODY_LIMIT',
    kind: 'integer',
    defaultText: '2097152',
    help: 'largest check-in or command report accepted, in bytes',
  },
  {
    flag: 'webhook-url',
    env: 'CERTMDM_WEBHOOK_URL',
    kind: 'string',
    defaultText: 'none',
    help: 'MicroMDM/NanoMDM-compatible webhook for check-in and command events',
  },
  {
    flag: 'webhook-secret',
    env: 'CERTMDM_WEBHOOK_SECRET',
    kind: 'string',
    defaultText: 'none',
    help: 'HMAC-SHA256 key for the X-Hmac-Signature header of webhook events (prefer the env variable)',
  },
  {
    flag: 'apns-url',
    env: 'CERTMDM_APNS_URL',
    kind: 'string',
    defaultText: 'https://api.push.apple.com',
    help: 'APNs HTTP/2 endpoint (a stand-in for tests)',
  },
  {
    flag: 'apns-ca-file',
    env: 'CERTMDM_APNS_CA_FILE',
    kind: 'string',
    defaultText: 'none',
    help: "extra PEM trust anchors for the APNs endpoint's TLS (only for a stand-in; Apple's servers use public roots)",
  },
  {
    flag: 'push-concurrency',
    env: 'CERTMDM_PUSH_CONCURRENCY',
    kind: 'integer',
    defaultText: '100',
    help: 'pushes in flight at once on the APNs connection',
  },
  {
    flag: 'push-expiration-days',
    env: 'CERTMDM_PUSH_EXPIRATION_DAYS',
    kind: 'integer',
    defaultText: '30',
    help: 'how long APNs keeps a push for an offline device',
  },
  {
    flag: 'lifecycle-interval-minutes',
    env: 'CERTMDM_LIFECYCLE_INTERVAL_MINUTES',
    kind: 'string',
    defaultText: '60',
    help: 'how often the lifecycle engine plans and acts (renewals, re-issues), minutes (fractions allowed); 0 turns it off. With several instances, one runs it (a PostgreSQL advisory lock) and another takes over within one interval',
  },
  {
    flag: 'pki-poll-seconds',
    env: 'CERTMDM_PKI_POLL_SECONDS',
    kind: 'integer',
    defaultText: '10',
    help: 'how often serve checks the database for server certificates another instance replaced (TLS, RA, profile signing, intermediate); 0 turns it off',
  },
  {
    flag: 'metrics-port',
    env: 'CERTMDM_METRICS_PORT',
    kind: 'string',
    defaultText: 'off',
    help: 'serve GET /metrics (Prometheus text format) on its own plain-HTTP listener at this port (0: any free port); off by default',
  },
  {
    flag: 'metrics-listen',
    env: 'CERTMDM_METRICS_LISTEN',
    kind: 'string',
    defaultText: '127.0.0.1',
    help: "the address of the metrics listener: loopback by default, since the metrics name the server's certificates and fleet",
  },
  {
    flag: 'last-seen-flush-seconds',
    env: 'CERTMDM_LAST_SEEN_FLUSH_SECONDS',
    kind: 'integer',
    defaultText: '5',
    help: "how long a device's last check-in time is held in memory before it is written with the others (a check-in that changes nothing else writes nothing); 0 writes it with each message",
  },
  { flag: 'log-level', env: 'CERTMDM_LOG_LEVEL', kind: 'string', defaultText: 'info', help: 'fatal, error, warn, info, debug or trace' },
];

export const TLS_MAX_DAYS = 825;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** RFC 1123 host name, or an IPv4/IPv6 literal. No wildcards: the server names itself exactly. */
export function isValidHostname(name: string): boolean {
  if (isIP(name)) return true;
  if (name.length === 0 || name.length > 253) return false;
  return name
    .replace(/\.$/, '')
    .split('.')
    .every((label) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(label));
}

export function defaultHostnames(): string[] {
  const own = systemHostname().toLowerCase();
  return [...new Set([...(isValidHostname(own) && own !== 'localhost' ? [own] : []), 'localhost', '127.0.0.1'])];
}

export type RawOptions = Partial<Record<string, string | string[] | boolean>>;

function readConfigFile(path: string): RawOptions {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new OperatorError(`cannot read config file ${path}: ${messageOf(err)}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new OperatorError(`config file ${path} must hold a JSON object`);
  }
  const known = new Set(OPTIONS.map((o) => o.flag));
  const out: RawOptions = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!known.has(key) || key === 'config') throw new OperatorError(`config file ${path}: unknown option '${key}'`);
    out[key] = Array.isArray(value) ? value.map(String) : String(value);
  }
  return out;
}

function integer(flag: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw)) throw new OperatorError(`--${flag} must be a whole number, got '${raw}'`);
  const value = Number(raw);
  if (value < min || value > max) throw new OperatorError(`--${flag} must be between ${min} and ${max}, got ${value}`);
  return value;
}

/**
 * Resolves the configuration: flags over `CERTMDM_*` environment over the config file over defaults.
 * Everything is validated here, before anything touches the disk.
 */
/** Production lifetimes: the defaults `serve` runs with, and what the fleet simulator scales. */
export const LIFETIME_DEFAULTS = {
  rootDays: 3650,
  intermediateDays: 1825,
  tlsDays: 397,
  tlsRenewBeforeDays: 30,
  /** The profile-signing certificate and the SCEP RA. */
  signingDays: 730,
  identityDays: 365,
  challengeTtlHours: 168,
} as const;

export function resolveConfig(flags: RawOptions, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const configFile = (flags.config as string | undefined) ?? env.CERTMDM_CONFIG ?? null;
  const fromFile = configFile ? readConfigFile(resolve(cwd, configFile)) : {};
  const pick = (spec: OptionSpec): string | string[] | undefined => {
    const flag = flags[spec.flag];
    if (flag !== undefined && typeof flag !== 'boolean') return flag;
    const fromEnv = env[spec.env];
    if (fromEnv !== undefined && fromEnv !== '') return spec.kind === 'list' ? fromEnv.split(',') : fromEnv;
    const value = fromFile[spec.flag];
    return typeof value === 'boolean' ? undefined : value;
  };
  const raw = Object.fromEntries(OPTIONS.map((o) => [o.flag, pick(o)])) as Record<string, string | string[] | undefined>;
  const str = (flag: string, fallback: string) => {
    const v = raw[flag];
    return Array.isArray(v) ? v[v.length - 1]! : (v ?? fallback);
  };
  const int = (flag: string, fallback: number, min: number, max: number) => {
    const v = raw[flag];
    return v === undefined ? fallback : integer(flag, Array.isArray(v) ? v[v.length - 1]! : v, min, max);
  };

  const hostRaw = raw.hostname;
  const hostnames =
    hostRaw === undefined
      ? defaultHostnames()
      : [
          ...new Set(
            (Array.isArray(hostRaw) ? hostRaw : [hostRaw])
              .flatMap((h) => h.split(','))
              .map((h) => h.trim().toLowerCase())
              .filter(Boolean),
          ),
        ];
  if (hostnames.length === 0) throw new OperatorError('at least one --hostname is needed');
  for (const h of hostnames) {
    if (!isValidHostname(h)) throw new OperatorError(`hostname '${h}' is not a valid DNS name or IP address`);
  }
  const listenAddress = (flag: string, value: string) => {
    if (!isIP(value) && !isValidHostname(value)) throw new OperatorError(`--${flag} '${value}' is not an address`);
    return value;
  };
  const listen = listenAddress('listen', str('listen', '0.0.0.0'));

  const logLevel = str('log-level', 'info');
  if (!LOG_LEVELS.includes(logLevel)) throw new OperatorError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);

  const dataDir = resolve(cwd, str('data', './data'));
  const rootDays = int('root-days', LIFETIME_DEFAULTS.rootDays, 30, 36500);
  const intermediateDays = int('intermediate-days', LIFETIME_DEFAULTS.intermediateDays, 7, 36500);
  const tlsDays = int('tls-days', LIFETIME_DEFAULTS.tlsDays, 1, 100000);
  if (tlsDays > TLS_MAX_DAYS) {
    throw new OperatorError(
      `--tls-days ${tlsDays} exceeds ${TLS_MAX_DAYS}: Apple devices refuse longer TLS certificates from a private root`,
    );
  }
  const identityDays = positiveNumber('identity-days', str('identity-days', String(LIFETIME_DEFAULTS.identityDays)));
  // One line at start rather than identities cut short by their issuer years later (lifecycle/lifetimes.ts).
  const unservable = unservableLifetimes(
    { identity: identityDays * DAY_MS, intermediate: intermediateDays * DAY_MS, root: rootDays * DAY_MS },
    DEFAULT_POLICY,
  );
  if (unservable) throw new OperatorError(unservable);
  return {
    dataDir,
    store: storeLocation(str('store', 'sqlite')),
    configFile: configFile ? resolve(cwd, configFile) : null,
    listen,
    port: int('port', 8443, 0, 65535),
    hostnames,
    organization: str('organization', 'certmdm'),
    rootAlgorithm: parseKeyAlgorithm(str('root-algorithm', 'rsa-3072')),
    issuingAlgorithm: parseKeyAlgorithm(str('issuing-algorithm', 'rsa-2048'), LEAF_ALGORITHMS),
    tlsAlgorithm: parseKeyAlgorithm(str('tls-algorithm', 'rsa-2048'), LEAF_ALGORITHMS),
    rootDays,
    intermediateDays,
    tlsDays,
    tlsRenewBeforeDays: int('tls-renew-before-days', LIFETIME_DEFAULTS.tlsRenewBeforeDays, 0, 365),
    signingDays: int('signing-days', LIFETIME_DEFAULTS.signingDays, 1, 3650),
    masterKeyFile: resolve(cwd, str('master-key-file', join(dataDir, 'master.key'))),
    bodyLimit: int('body-limit', 1024 * 1024, 1024, 256 * 1024 * 1024),
    dbBusyTimeoutMs: int('db-busy-timeout-ms', 5000, 0, 600000),
    logLevel,
    identityDays,
    scepCiphers: ciphers(raw['scep-ciphers']),
    challengeTtlHours: int('challenge-ttl-hours', LIFETIME_DEFAULTS.challengeTtlHours, 1, 24 * 365),
    scepMaxClockSkewMinutes: int('scep-max-clock-skew-minutes', 30, 1, 24 * 60),
    scepBodyLimit: int('scep-body-limit', 256 * 1024, 1024, 16 * 1024 * 1024),
    scepHttpPort: str('scep-http-port', 'off') === 'off' ? null : int('scep-http-port', 0, 0, 65535),
    ...deviceUrls(str('public-url', ''), str('scep-url', ''), hostnames[0]!, int('port', 8443, 0, 65535)),
    pushTopic: pushTopic(str('push-topic', '')),
    signMessage: boolean('sign-message', str('sign-message', 'true')),
    pinServerUrl: boolean('pin-server-url', str('pin-server-url', 'false')),
    console: boolean('console', str('console', 'true')),
    permissiveReenrollment: boolean('permissive-reenrollment', str('permissive-reenrollment', 'false')),
    rescueGraceDays: int('rescue-grace-days', 30, 0, 365),
    scepAllowedSans: list(raw['scep-allowed-san']).map((rule) => {
      if (!/^(dns|email|uri):[^\s*]*\*?[^\s*]*$/.test(rule))
        throw new OperatorError(`--scep-allowed-san: '${rule}' is not dns:, email: or uri: with at most one '*'`);
      return rule;
    }),
    pkcs12Encryption: oneOf('pkcs12-encryption', str('pkcs12-encryption', 'legacy'), ['legacy', 'modern'] as const),
    enrollLinkTtlHours: int('enroll-link-ttl-hours', 72, 1, 24 * 365),
    mdmIdentitySources: identitySources(raw['mdm-identity-sources']),
    trustedProxies: list(raw['trusted-proxies']).map((address) => {
      if (!isIP(address)) throw new OperatorError(`--trusted-proxies: '${address}' is not an IP address`);
      return address;
    }),
    ...proxyCert(str('proxy-cert-header', ''), str('proxy-cert-format', 'nginx-escaped-pem')),
    signingTimeSkewMinutes: int('signing-time-skew-minutes', 5, 0, 24 * 60),
    mdmBodyLimit: int('mdm-body-limit', 2 * 1024 * 1024, 1024, 64 * 1024 * 1024),
    webhookUrl: optionalUrl('webhook-url', str('webhook-url', '')),
    webhookSecret: str('webhook-secret', '') || null,
    apnsUrl: optionalUrl('apns-url', str('apns-url', 'https://api.push.apple.com')) ?? 'https://api.push.apple.com',
    apnsCaFile: str('apns-ca-file', '') ? resolve(cwd, str('apns-ca-file', '')) : null,
    pushConcurrency: int('push-concurrency', 100, 1, 1000),
    pushExpirationDays: int('push-expiration-days', 30, 0, 365),
    pkiPollSeconds: int('pki-poll-seconds', 10, 0, 3600),
    lastSeenFlushSeconds: int('last-seen-flush-seconds', 5, 0, 3600),
    metricsPort: str('metrics-port', 'off') === 'off' ? null : int('metrics-port', 0, 0, 65535),
    metricsListen: listenAddress('metrics-listen', str('metrics-listen', '127.0.0.1')),
    lifecycleIntervalMinutes: minutes('lifecycle-interval-minutes', str('lifecycle-interval-minutes', '60'), 7 * 24 * 60),
  };
}

function list(raw: string | string[] | undefined): string[] {
  if (raw === undefined) return [];
  return [
    ...new Set(
      (Array.isArray(raw) ? raw : [raw])
        .flatMap((v) => v.split(','))
        .map((v) => v.trim())
        .filter(Boolean),
    ),
  ];
}

function identitySources(raw: string | string[] | undefined): Config['mdmIdentitySources'] {
  const sources = raw === undefined ? ['mtls', 'signature'] : list(raw);
  for (const s of sources)
    if (s !== 'mtls' && s !== 'proxy' && s !== 'signature')
      throw new OperatorError(`--mdm-identity-sources: unknown source '${s}' (mtls, proxy, signature)`);
  if (sources.length === 0) throw new OperatorError('--mdm-identity-sources needs at least one source');
  return sources as Config['mdmIdentitySources'];
}

/** The proxy's one client-certificate header and its format; RFC 9440's own header only in RFC 9440's format. */
function proxyCert(headerRaw: string, formatRaw: string): Pick<Config, 'proxyCertHeader' | 'proxyCertFormat'> {
  const format = oneOf('proxy-cert-format', formatRaw, PROXY_CERT_FORMATS);
  const header = (headerRaw || (format === 'rfc9440' ? 'client-cert' : 'x-client-cert')).toLowerCase();
  if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(header)) throw new OperatorError(`--proxy-cert-header '${headerRaw}' is not a header name`);
  if (header === 'client-cert' && format !== 'rfc9440')
    throw new OperatorError(`--proxy-cert-header client-cert is RFC 9440's header: it needs --proxy-cert-format rfc9440`);
  if (['client-cert-chain', 'mdm-signature', 'authorization', 'host', 'content-type', 'content-length'].includes(header))
    throw new OperatorError(`--proxy-cert-header '${headerRaw}' cannot carry the client certificate`);
  return { proxyCertHeader: header, proxyCertFormat: format };
}

function optionalUrl(flag: string, raw: string): string | null {
  if (!raw) return null;
  try {
    const url = new URL(raw);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('scheme');
    return url.href;
  } catch {
    throw new OperatorError(`--${flag} '${raw}' is not an http(s) URL`);
  }
}

function boolean(flag: string, raw: string): boolean {
  if (raw === 'true' || raw === '1' || raw === 'yes') return true;
  if (raw === 'false' || raw === '0' || raw === 'no') return false;
  throw new OperatorError(`--${flag} must be true or false, got '${raw}'`);
}

function oneOf<T extends string>(flag: string, raw: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(raw)) return raw as T;
  throw new OperatorError(`--${flag} must be one of ${choices.join(', ')}, got '${raw}'`);
}

function pushTopic(raw: string): string | null {
  if (!raw) return null;
  if (!/^com\.apple\.mgmt\.[A-Za-z0-9._-]+$/.test(raw))
    throw new OperatorError(`--push-topic '${raw}' is not an MDM push topic (com.apple.mgmt.…)`);
  return raw;
}

/** The https base URL devices are given, and the SCEP URL. Validated here: a device cannot be told a bad one. */
function deviceUrls(publicRaw: string, scepRaw: string, hostname: string, port: number): { publicUrl: string; scepUrl: string } {
  const host = isIP(hostname) === 6 ? `[${hostname}]` : hostname;
  const fallback = `https://${host}${port === 443 ? '' : `:${port || 8443}`}`;
  const parse = (flag: string, raw: string, schemes: string[]) => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new OperatorError(`--${flag} '${raw}' is not a URL`);
    }
    if (!schemes.includes(url.protocol))
      throw new OperatorError(`--${flag} '${raw}' must use ${schemes.map((s) => s.replace(':', '')).join(' or ')}`);
    if (url.search || url.hash || url.username)
      throw new OperatorError(`--${flag} '${raw}' must not carry a query, fragment or credentials`);
    return url.href.replace(/\/$/, '');
  };
  const publicUrl = parse('public-url', publicRaw || fallback, ['https:']);
  return { publicUrl, scepUrl: parse('scep-url', scepRaw || `${publicUrl}/scep`, ['https:', 'http:']) };
}

function minutes(flag: string, raw: string, max: number): number {
  const value = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || value > max)
    throw new OperatorError(`--${flag} must be a number of minutes from 0 to ${max}, got '${raw}'`);
  return value;
}

function positiveNumber(flag: string, raw: string): number {
  const value = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || !(value > 0) || value > 3650)
    throw new OperatorError(`--${flag} must be a number of days above 0 and at most 3650, got '${raw}'`);
  return value;
}

function ciphers(raw: string | string[] | undefined): CipherFamily[] {
  if (raw === undefined) return ['aes', 'des3'];
  const list = [
    ...new Set(
      (Array.isArray(raw) ? raw : [raw])
        .flatMap((c) => c.split(','))
        .map((c) => c.trim().toLowerCase())
        .filter(Boolean),
    ),
  ];
  for (const c of list)
    if (c !== 'aes' && c !== 'des3' && c !== 'des') throw new OperatorError(`--scep-ciphers: unknown cipher '${c}' (aes, des3, des)`);
  if (list.length === 0) throw new OperatorError('--scep-ciphers needs at least one cipher');
  return list as CipherFamily[];
}

/** The options given explicitly, by flag, `CERTMDM_*` environment or config file, rather than defaulted. */
export function explicitOptions(flags: RawOptions, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Set<string> {
  const configFile = (flags.config as string | undefined) ?? env.CERTMDM_CONFIG;
  const fromFile = configFile ? readConfigFile(resolve(cwd, configFile)) : {};
  return new Set(
    OPTIONS.filter(
      (o) => (flags[o.flag] !== undefined && typeof flags[o.flag] !== 'boolean') || Boolean(env[o.env]) || fromFile[o.flag] !== undefined,
    ).map((o) => o.flag),
  );
}

export function renderOptionsHelp(): string {
  return OPTIONS.map((o) => {
    const head = `  --${o.flag}${o.kind === 'list' ? ' <value>...' : ' <value>'}`;
    return `${head}\n      ${o.help}\n      env ${o.env}; default ${o.defaultText}`;
  }).join('\n');
}
