import { createHash, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { checkServerIdentity, connect, rootCertificates, type PeerCertificate, type DetailedPeerCertificate } from 'node:tls';
import { OperatorError } from '../errors.ts';
import { toPem } from '../pki/certificate.ts';
import type { Store } from '../store/types.ts';

/** One certificate of the chain a server presented, as the inventory and the metrics keep it. */
export interface PresentedCertificate {
  subject: string;
  issuer: string;
  serial: string;
  fingerprintSha256: string;
  notBefore: string;
  notAfter: string;
}

/** What a device sees at ServerURL: the chain presented there, and whether the device would trust it. */
export interface ProbeReport {
  url: string;
  at: string;
  chain: PresentedCertificate[];
  /** The chain verifies to an anchor a device holds (certmdm's roots, which its profiles install, or a public CA). */
  trusted: boolean;
  anchor: 'certmdm-root' | 'public-ca' | null;
  /** Why it is not trusted; null when it is. */
  problem: string | null;
}

/** The meta key the last probe's report is kept under (metrics and alerts read it). */
export const PRESENTED_CHAIN = 'presented_chain';

function presented(c: PeerCertificate): PresentedCertificate {
  const x = new X509Certificate(c.raw);
  return {
    subject: x.subject.replace(/\n/g, ', '),
    issuer: x.issuer.replace(/\n/g, ', '),
    serial: x.serialNumber.toLowerCase(),
    fingerprintSha256: createHash('sha256').update(c.raw).digest('hex'),
    notBefore: new Date(x.validFrom).toISOString(),
    notAfter: new Date(x.validTo).toISOString(),
  };
}

/** The presented chain, leaf first, as node links it (each issuerCertificate, until a self-issued one). */
function chainOf(leaf: DetailedPeerCertificate): DetailedPeerCertificate[] {
  const chain: DetailedPeerCertificate[] = [];
  const seen = new Set<string>();
  for (let c: DetailedPeerCertificate | undefined = leaf; c?.raw && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
    seen.add(c.fingerprint256);
    chain.push(c);
  }
  return chain;
}

/**
 * Connects to `url` as a device would (TLS, SNI with its host name), reads the chain actually presented — which may
 * be a proxy's, with a public CA's certificate — and judges it against what devices hold: certmdm's roots (installed
 * by its profiles) and public roots (node's bundled Mozilla list standing in for the devices' system store). An
 * unreachable target or a certificate for another host is an OperatorError: one line, nothing recorded.
 */
export async function probeServerUrl(
  url: string,
  certmdmRoots: Buffer[],
  options: { timeoutMs?: number; now?: Date } = {},
): Promise<ProbeReport> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw new OperatorError(`'${url}' is not a URL`);
  }
  if (target.protocol !== 'https:') throw new OperatorError(`${url}: devices reach their MDM server over https`);
  const host = target.hostname.replace(/^\[|\]$/g, '');
  const port = Number(target.port || 443);
  const ownRoots = certmdmRoots.map((der) => toPem(der));
  const { socket, leaf } = await new Promise<{ socket: ReturnType<typeof connect>; leaf: DetailedPeerCertificate }>((resolve, reject) => {
    const socket = connect({
      host,
      port,
      servername: isIP(host) ? undefined : host,
      ca: [...ownRoots, ...rootCertificates],
      rejectUnauthorized: false,
      timeout: options.timeoutMs ?? 10_000,
    });
    socket.once('secureConnect', () => resolve({ socket, leaf: socket.getPeerCertificate(true) }));
    socket.once('timeout', () => {
      socket.destroy();
      reject(new OperatorError(`cannot reach ${target.origin}: no TLS answer within ${(options.timeoutMs ?? 10_000) / 1000} s`));
    });
    socket.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new OperatorError(
          `cannot reach ${target.origin}: ${err.code === 'ECONNREFUSED' ? 'connection refused' : err.code === 'ENOTFOUND' ? 'no such host' : err.message}`,
        ),
      ),
    );
  });
  try {
    if (!leaf?.raw) throw new OperatorError(`${target.origin} presented no certificate`);
    const wrongHost = checkServerIdentity(host, leaf);
    if (wrongHost)
      throw new OperatorError(
        `${target.origin} presents a certificate for ${leaf.subject?.CN ?? 'another name'}, not ${host}: ${wrongHost.message}`,
      );
    const chain = chainOf(leaf);
    const top = chain[chain.length - 1]!;
    const ours = new Set(certmdmRoots.map((der) => createHash('sha256').update(der).digest('hex')));
    const trusted = socket.authorized;
    const anchorRaw = top.issuerCertificate?.raw ?? top.raw;
    const anchor = trusted ? (ours.has(createHash('sha256').update(anchorRaw).digest('hex')) ? 'certmdm-root' : 'public-ca') : null;
    return {
      url: target.origin,
      at: (options.now ?? new Date()).toISOString(),
      chain: chain.map(presented),
      trusted,
      anchor,
      problem: trusted ? null : `devices would refuse it: ${String(socket.authorizationError)}`,
    };
  } finally {
    socket.destroy();
  }
}

export function formatProbeReport(report: ProbeReport, now: Date): string {
  const days = (iso: string) => Math.floor((Date.parse(iso) - now.getTime()) / 86_400_000);
  return [
    `${report.url} presents ${report.chain.length} certificate(s) (probed ${report.at}):`,
    ...report.chain.map(
      (c, i) =>
        `  ${i}  ${c.subject}  (issuer ${c.issuer})  not after ${c.notAfter.slice(0, 10)}, ${days(c.notAfter)} days left  #${c.serial}`,
    ),
    report.trusted
      ? `trusted by devices: it ends in ${report.anchor === 'certmdm-root' ? "certmdm's root, which its profiles install" : "a public CA in the devices' system store"}`
      : `NOT trusted by devices: ${report.problem}`,
  ].join('\n');
}

/** Probes the public URL and keeps the report for the metrics and alerts (only a report of a reachable target). */
export async function probeAndRecord(store: Pick<Store, 'setMeta' | 'listCertificates'>, url: string, now: Date): Promise<ProbeReport> {
  const roots = (await store.listCertificates({ role: 'root', status: 'active' })).map((c) => c.der);
  const report = await probeServerUrl(url, roots, { now });
  await store.setMeta(PRESENTED_CHAIN, JSON.stringify(report));
  return report;
}

/** The last probe's report, if any. */
export async function lastProbe(store: Pick<Store, 'getMeta'>): Promise<ProbeReport | null> {
  const stored = await store.getMeta(PRESENTED_CHAIN);
  return stored === undefined ? null : (JSON.parse(stored) as ProbeReport);
}
