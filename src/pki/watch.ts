import type { Store } from '../store/types.ts';
import { current, loadServerPki, type ServerPki } from './server-pki.ts';
import type { Keyring } from './keyring.ts';
import type { Clock } from '../clock.ts';

const WATCHED = ['intermediate', 'tls', 'profile-signing', 'scep-ra'] as const;

/** The server certificates in use, by role, picked as `loadServerPki` picks them. */
async function inUse(store: Store): Promise<string> {
  return (await Promise.all(WATCHED.map(async (role) => (await current(store, role))?.id ?? ''))).join(' ');
}

/**
 * Another instance on the same database replaced a server certificate (the lifecycle leader re-issued the TLS
 * certificate, the RA, the profile signer, or rolled the intermediate): this instance picks it up — profiles,
 * GetCACert and the listener present what every other instance presents, without a restart. Returns whether the
 * certificates changed; `pki` is updated in place (every service holds it).
 */
export async function followServerPki(
  deps: { store: Store; keyring: Keyring; clock: Clock },
  pki: ServerPki,
  onTlsChange: (pki: ServerPki) => void,
): Promise<boolean> {
  const live = [pki.authority.intermediate.id, pki.tls.certificate.id, pki.profileSigning.certificate.id, pki.scepRa.certificate.id].join(
    ' ',
  );
  if ((await inUse(deps.store)) === live) return false;
  const next = await loadServerPki(deps);
  if (!next) return false;
  // Mid-rollover on the leader (a new intermediate, its leaves not yet re-issued): wait for the whole set rather than
  // serve a chain whose leaves another intermediate signed.
  const issuer = next.authority.intermediate.id;
  if ([next.tls, next.profileSigning, next.scepRa].some((leaf) => leaf.certificate.issuerId !== issuer)) return false;
  const tlsChanged = next.tls.certificate.id !== pki.tls.certificate.id;
  Object.assign(pki, next);
  if (tlsChanged) onTlsChange(pki);
  return true;
}
