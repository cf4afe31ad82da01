import { isIP } from 'node:net';
import { certificateParts } from '../pki/certificate.ts';
import { IdentityError, type PresentedCertificate } from './identity-error.ts';

/**
 * The client certificate a TLS-terminating proxy passes on in a header. Exactly one header, in exactly one format, is
 * honoured. A proxy overwrites only the header it is told to set and passes every other header through from the
 * client, so a server that reads a second name (or guesses the format) serves a client holding only a victim's
 * certificate, not its key, as the victim.
 */
export const PROXY_CERT_FORMATS = ['nginx-escaped-pem', 'rfc9440', 'go-query-escape'] as const;
export type ProxyCertFormat = (typeof PROXY_CERT_FORMATS)[number];

/**
 * Headers that proxies in use carry a client certificate in. Any of them other than the configured one is refused:
 * only the proxy's own header may speak for the TLS connection, and a proxy that was not told to clear the others
 * lets the client set them.
 */
export const CLIENT_CERT_HEADERS = [
  'x-client-cert', // nginx convention ($ssl_client_escaped_cert)
  'client-cert', // RFC 9440
  'client-cert-chain', // RFC 9440
  'x-ssl-client-cert', // nginx / HAProxy convention
  'x-ssl-cert', // HAProxy, Apache convention
  'x-forwarded-client-cert', // Envoy (XFCC)
  'x-arr-clientcert', // Azure App Service / ARR
  'ssl-client-cert', // Apache mod_headers %{SSL_CLIENT_CERT}
  'x-forwarded-tls-client-cert', // Traefik passTLSClientCert
  'x-forwarded-tls-client-cert-info', // Traefik passTLSClientCert
  'x-amzn-mtls-clientcert', // AWS ALB mTLS pass-through
  'x-amzn-mtls-clientcert-leaf', // AWS ALB mTLS verify
] as const;

export interface ProxyCertSettings {
  trustedProxies: string[];
  /** Lower-case header name. */
  header: string;
  format: ProxyCertFormat;
}

function malformed(message: string): IdentityError {
  return new IdentityError(message, 400, { refusal: 'proxy-malformed-header' });
}

/** DER of exactly one certificate, whole: base64 that is canonical and a DER structure X.509 can be read from. */
function certificateFromBase64(text: string, what: string): Buffer {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 !== 0) throw malformed(`${what} is not base64`);
  const der = Buffer.from(text, 'base64');
  try {
    certificateParts(der);
  } catch {
    throw malformed(`${what} holds no X.509 certificate`);
  }
  return der;
}

/** One PEM certificate block and nothing else (a chain or extra text is a proxy we do not understand). */
function certificateFromPem(pem: string, what: string): Buffer {
  const match = /^\s*-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END CERTIFICATE-----\s*$/.exec(pem);
  if (!match) throw malformed(`${what} is not one PEM certificate`);
  return certificateFromBase64(match[1]!.replace(/[\r\n]+/g, ''), what);
}

function percentDecode(value: string, what: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw malformed(`${what} is not percent-escaped`);
  }
}

const DECODERS: Record<ProxyCertFormat, (value: string, what: string) => Buffer> = {
  // nginx's $ssl_client_escaped_cert: the PEM with every reserved character %-escaped ('+' in base64 as %2B).
  'nginx-escaped-pem': (value, what) => certificateFromPem(percentDecode(value, what), what),
  // RFC 9440: a structured-field byte sequence, `:base64(DER):`.
  rfc9440: (value, what) => {
    const match = /^:([^:]*):$/.exec(value);
    if (!match) throw malformed(`${what} is not an RFC 9440 byte sequence`);
    return certificateFromBase64(match[1]!, what);
  },
  // Go's url.QueryEscape: form rules, so '+' is a space ("BEGIN+CERTIFICATE") and a base64 '+' arrives as %2B. It
  // must become a space before %-decoding, or the decoded %2B would be turned into a space too. Traefik escapes the
  // bare base64 DER (armour and newlines removed) the same way.
  'go-query-escape': (value, what) => {
    const text = percentDecode(value.replace(/\+/g, ' '), what);
    return text.includes('-----BEGIN') ? certificateFromPem(text, what) : certificateFromBase64(text.trim(), what);
  },
};

/** The certificate a header value holds in `format`, or undefined: for the audit of a refused request only. */
function readableCertificate(value: string, formats: readonly ProxyCertFormat[]): Buffer | undefined {
  for (const format of formats) {
    try {
      return DECODERS[format](value, 'header');
    } catch {
      // not in this format; try the next
    }
  }
  return undefined;
}

/** An IPv4 peer on a dual-stack listener (`::ffff:127.0.0.1`) as the IPv4 address it is. */
export function normaliseAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/**
 * The certificate the trusted proxy passed on, or undefined when it passed none (nginx omits the header, other
 * proxies send it empty, when the client showed no certificate). `headerLines` is Node's `rawHeaders` (name, value,
 * name, value, ...): repeated lines must be seen, not joined with ", " as `headers` does.
 */
export function proxyCertificate(headerLines: readonly string[], peer: string, settings: ProxyCertSettings): Buffer | undefined {
  const values: string[] = [];
  for (let i = 0; i + 1 < headerLines.length; i += 2) {
    const name = headerLines[i]!.toLowerCase();
    const value = headerLines[i + 1]!.trim();
    if (name === settings.header) {
      values.push(value);
    } else if ((CLIENT_CERT_HEADERS as readonly string[]).includes(name)) {
      const shown = readableCertificate(value, PROXY_CERT_FORMATS);
      throw new IdentityError(`client-certificate header ${name} is not the configured ${settings.header}`, 403, {
        refusal: 'proxy-other-header',
        presented: shown ? [{ source: `header:${name}`, certificate: shown }] : [],
      });
    }
  }
  const present = values.filter((v) => v !== '');
  if (present.length === 0 && values.length <= 1) return undefined;
  const shown: PresentedCertificate[] = [];
  const first = present[0] === undefined ? undefined : readableCertificate(present[0], [settings.format]);
  if (first) shown.push({ source: 'proxy', certificate: first });
  if (!settings.trustedProxies.includes(normaliseAddress(peer)))
    throw new IdentityError(`client certificate header from ${peer}, which is not a trusted proxy`, 403, {
      refusal: 'proxy-untrusted-peer',
      presented: shown,
    });
  // A trusted proxy sets its header once; a second line is the client's, passed through next to it.
  if (values.length > 1)
    throw new IdentityError(`${settings.header} appears ${values.length} times`, 403, {
      refusal: 'proxy-duplicate-header',
      presented: shown,
    });
  return DECODERS[settings.format](present[0]!, settings.header);
}
