import type { CertificateKind } from './report.ts';

/** What a device checks before it talks to the server: the TLS chain the server presents. */
export interface ServerChain {
  rootFingerprint: string;
  rootNotAfter: Date;
  intermediateNotAfter: Date;
  tlsNotAfter: Date;
  /** When the chain last moved to another root (a device lacking it is lost from then). */
  rootSince: Date;
}

export interface Loss {
  kind: CertificateKind;
  cause: string;
  at: Date;
}

/**
 * Whether a device can still reach the server at `now`, and if not, the dependency that broke *first*: a device that
 * was silent for months may by now lack the root too, but it was lost when its identity expired.
 */
export function firstBreak(
  device: { anchors: ReadonlySet<string>; identityNotAfter: Date },
  chain: ServerChain,
  now: Date,
): Loss | undefined {
  const broken: Loss[] = [];
  if (!device.anchors.has(chain.rootFingerprint))
    broken.push({ kind: 'root', cause: 'server TLS chain ends in a root the device lacks', at: chain.rootSince });
  if (chain.rootNotAfter <= now) broken.push({ kind: 'root', cause: 'root expired', at: chain.rootNotAfter });
  if (chain.intermediateNotAfter <= now)
    broken.push({ kind: 'intermediate', cause: 'intermediate expired', at: chain.intermediateNotAfter });
  if (chain.tlsNotAfter <= now) broken.push({ kind: 'tls', cause: 'server TLS certificate expired', at: chain.tlsNotAfter });
  if (device.identityNotAfter <= now) broken.push({ kind: 'identity', cause: 'identity certificate expired', at: device.identityNotAfter });
  return broken.sort((a, b) => a.at.getTime() - b.at.getTime())[0];
}
