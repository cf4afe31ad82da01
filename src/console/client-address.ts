import { isIP } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { normaliseAddress } from '../mdm/proxy-certificate.ts';

/**
 * The client's address for the login limit: the TCP peer's, unless the peer is a trusted proxy (`--trusted-proxies`),
 * in which case the last address in X-Forwarded-For (the one the proxy itself saw; deploy/nginx/certmdm.conf sets it
 * to $remote_addr). A header from anyone else is ignored, so it cannot spread guesses over made-up addresses.
 */
export function clientAddress(request: FastifyRequest, trustedProxies: readonly string[]): string {
  // An IPv4 peer on a dual-stack listener (`--listen ::`) is `::ffff:a.b.c.d`: compared, and counted, as a.b.c.d.
  const peer = normaliseAddress(request.ip);
  if (!trustedProxies.map(normaliseAddress).includes(peer)) return peer;
  const header = request.headers['x-forwarded-for'];
  const last = (Array.isArray(header) ? header.at(-1) : header)?.split(',').at(-1)?.trim();
  return last && isIP(last) ? normaliseAddress(last) : peer;
}
