import type { Config } from '../config.ts';
import { OperatorError } from '../errors.ts';
import type { Store } from '../store/types.ts';

/** The names the server answers to and puts in profiles, as `serve` (or `init`) last recorded them. */
export interface ServerNames {
  hostnames: string[];
  publicUrl: string;
  scepUrl: string;
  organization: string;
  pushTopic: string | null;
}

const META_KEY = 'server_names';

function namesOf(config: Config): ServerNames {
  const { hostnames, publicUrl, scepUrl, organization, pushTopic } = config;
  return { hostnames, publicUrl, scepUrl, organization, pushTopic };
}

/** `serve` records what it serves under, so the CLI's links and profiles name the same server. */
export async function recordServerNames(store: Store, config: Config): Promise<void> {
  await store.setMeta(META_KEY, JSON.stringify(namesOf(config)));
}

/** `init` records them only for a new data directory: run against a live one, it must not rename the server. */
export async function recordServerNamesIfAbsent(store: Store, config: Config): Promise<void> {
  await store.setMetaIfAbsent(META_KEY, JSON.stringify(namesOf(config)));
}

export async function serverNames(store: Store): Promise<ServerNames | undefined> {
  const stored = await store.getMeta(META_KEY);
  return stored === undefined ? undefined : (JSON.parse(stored) as ServerNames);
}

/**
 * The configuration a CLI command makes profiles and links with: the server's recorded names, not the CLI's own
 * defaults (which would point devices at another host). A URL given explicitly must be the server's; organization
 * and push topic given explicitly are used as given.
 */
export function withServerNames(config: Config, names: ServerNames | undefined, explicit: ReadonlySet<string>): Config {
  if (!names) {
    if (explicit.has('public-url')) return config;
    throw new OperatorError(
      'this data directory has no recorded server URL yet: start certmdm serve once (it records its --public-url), or pass --public-url',
    );
  }
  for (const [flag, ours, theirs] of [
    ['public-url', config.publicUrl, names.publicUrl],
    ['scep-url', config.scepUrl, names.scepUrl],
  ] as const) {
    if (explicit.has(flag) && ours !== theirs)
      throw new OperatorError(
        `--${flag} ${ours} is not the server's (${theirs}); devices must get the URL it serves. Change it by restarting certmdm serve with --${flag}`,
      );
  }
  return {
    ...config,
    hostnames: names.hostnames,
    publicUrl: names.publicUrl,
    scepUrl: names.scepUrl,
    organization: explicit.has('organization') ? config.organization : names.organization,
    pushTopic: explicit.has('push-topic') ? config.pushTopic : names.pushTopic,
  };
}
