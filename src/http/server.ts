import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Server } from 'node:https';
import type { AppContext } from '../app/context.ts';
import { toPem } from '../pki/certificate.ts';
import { listInventory } from '../pki/inventory.ts';
import type { Identity, ServerPki } from '../pki/server-pki.ts';
import { requireAdminToken } from './admin-auth.ts';

export const VERSION = '0.1.0';

/** What the HTTPS listener presents: the TLS certificate followed by the chain up to (not including) the root. */
export function tlsCredentials(pki: ServerPki, tls: Identity = pki.tls) {
  return {
    key: tls.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    cert: [tls.certificate.der, pki.authority.intermediate.der].map((der) => toPem(der)).join(''),
  };
}

/** Paths can carry one-time secrets (enrollment links); logs get the route shape, never the secret or a query. */
export function redactUrl(url: string): string {
  return url.split('?')[0]!.replace(/\/enroll\/[^/]+/, '/enroll/[redacted]');
}

export async function buildHttpServer(app: AppContext, pki: ServerPki): Promise<FastifyInstance<Server>> {
  const server = Fastify({
    loggerInstance: app.logger.child({}, {
      serializers: {
        req: (req: { method: string; url: string; ip?: string }) => ({ method: req.method, url: redactUrl(req.url), remoteAddress: req.ip }),
      },
    }) as FastifyBaseLogger,
    https: { ...tlsCredentials(pki), minVersion: 'TLSv1.2' },
    bodyLimit: app.config.bodyLimit,
  });

  server.get('/healthz', async () => {
    await app.store.schemaVersion();
    return { status: 'ok', version: VERSION, time: app.clock().toISOString() };
  });

  await server.register(
    async (admin) => {
      admin.addHook('preHandler', requireAdminToken(app));
      admin.get('/certs', async (request) => {
        const certificates = await listInventory(app.store, app.clock(), { pem: (request.query as { pem?: string }).pem === '1' });
        await app.audit.record({ actor: request.adminActor!, action: 'certs.list', outcome: 'ok', detail: { count: certificates.length } });
        return { certificates };
      });
      admin.get('/audit', async (request) => {
        const limit = Math.min(Number((request.query as { limit?: string }).limit ?? 100) || 100, 1000);
        return { events: await app.store.listAudit({ limit }) };
      });
    },
    { prefix: '/v1' },
  );
  return server;
}
