import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuditLog } from '../admin/audit.ts';
import { verifyApiToken } from '../admin/tokens.ts';
import type { Clock } from '../clock.ts';
import type { Store } from '../store/types.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** `token:<id>` once the admin API has authenticated the caller. */
    adminActor?: string;
  }
}

/** preHandler for the admin API: a Bearer token, checked in constant time; every refusal is audited. */
export function requireAdminToken(deps: { store: Store; audit: AuditLog; clock: Clock }) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const header = request.headers.authorization ?? '';
    const presented = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    const check = presented ? await verifyApiToken(deps.store, presented) : ({ ok: false, reason: 'no bearer token' } as const);
    if (!check.ok) {
      await deps.audit.record({
        actor: `ip:${request.ip}`,
        action: 'admin.authenticate',
        target: `${request.method} ${request.routeOptions.url ?? request.url}`,
        outcome: 'denied',
        reason: check.reason,
        detail: 'tokenId' in check && check.tokenId ? { tokenId: check.tokenId } : null,
      });
      await reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="certmdm-admin"')
        .send({ error: 'unauthorized', message: 'a valid admin API token is required (Authorization: Bearer ...)' });
      return;
    }
    request.adminActor = `token:${check.record.id}`;
    await deps.store.touchApiToken(check.record.id, deps.clock());
  };
}
