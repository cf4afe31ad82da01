import { X509Certificate } from 'node:crypto';
import { readCertificate } from '../../pki/certificate.ts';
import type { CertificateKind } from './report.ts';

/**
 * Trust evaluation as the device does it, at the simulation's clock: the chain the server presented must lead, by
 * signatures, to a root the device itself installed (and, when its MDM payload pins ServerURL, to one of the pinned
 * roots), every certificate on the way valid now, and the leaf must name the host. OpenSSL cannot be asked to verify
 * at a simulated time, so the handshake accepts any chain and the device decides here, before it sends a byte.
 */
export type TrustVerdict =
  { trusted: true; rootFingerprint: string } | { trusted: false; kind: CertificateKind; reason: string; at?: Date };

interface Known {
  x509: X509Certificate;
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
}

/** Parsing and signature checks are remembered by certificate: thousands of devices see the same few chains. */
export class CertificateCache {
  readonly #known = new Map<string, Known>();
  readonly #signed = new Map<string, boolean>();

  known(der: Buffer): Known {
    const key = der.toString('base64');
    let entry = this.#known.get(key);
    if (!entry) {
      const facts = readCertificate(der);
      entry = {
        x509: new X509Certificate(der),
        fingerprint: facts.fingerprintSha256,
        notBefore: facts.notBefore,
        notAfter: facts.notAfter,
      };
      this.#known.set(key, entry);
    }
    return entry;
  }

  /** Whether `issuer` issued `child`: names chain and the signature verifies with the issuer's key. */
  issued(issuer: Known, child: Known): boolean {
    const key = `${issuer.fingerprint}>${child.fingerprint}`;
    let result = this.#signed.get(key);
    if (result === undefined) {
      result = issuer.x509.ca && child.x509.checkIssued(issuer.x509) && child.x509.verify(issuer.x509.publicKey);
      this.#signed.set(key, result);
    }
    return result;
  }
}

const valid = (c: Known, now: Date) => c.notBefore <= now && now < c.notAfter;

/**
 * `presented`: the server's certificates as sent, leaf first. `anchors`: the roots the device holds (DER by SHA-256
 * fingerprint). `pinned`: with ServerURL pinning, the fingerprints the MDM payload allows; undefined without.
 */
export function evaluateServerTrust(
  input: { presented: Buffer[]; anchors: ReadonlyMap<string, Buffer>; pinned?: ReadonlySet<string>; hostname: string; now: Date },
  cache: CertificateCache,
): TrustVerdict {
  const [leafDer, ...rest] = input.presented;
  if (!leafDer) return { trusted: false, kind: 'tls', reason: 'the server presented no certificate' };
  const leaf = cache.known(leafDer);
  if (!valid(leaf, input.now))
    return { trusted: false, kind: 'tls', reason: 'the server TLS certificate is expired or not yet valid', at: leaf.notAfter };
  if (leaf.x509.checkHost(input.hostname) === undefined)
    return { trusted: false, kind: 'tls', reason: `the server TLS certificate does not name ${input.hostname}` };
  const intermediates = rest.map((der) => cache.known(der));
  const roots = [...input.anchors.values()].map((der) => cache.known(der));
  let child = leaf;
  // A path is at most leaf → intermediates → anchor; each presented certificate is used at most once.
  for (let depth = 0; depth <= intermediates.length; depth++) {
    const root = roots.find((r) => cache.issued(r, child));
    if (root) {
      if (!valid(root, input.now))
        return { trusted: false, kind: 'root', reason: 'the root the chain ends in has expired', at: root.notAfter };
      if (input.pinned && !input.pinned.has(root.fingerprint))
        return { trusted: false, kind: 'root', reason: 'the chain ends in a root the MDM payload does not pin' };
      return { trusted: true, rootFingerprint: root.fingerprint };
    }
    const next = intermediates.find((c) => c !== child && cache.issued(c, child));
    if (!next) break;
    if (!valid(next, input.now))
      return { trusted: false, kind: 'intermediate', reason: 'the intermediate in the chain has expired', at: next.notAfter };
    child = next;
  }
  return { trusted: false, kind: 'root', reason: 'the server TLS chain ends in a root the device has not installed' };
}
