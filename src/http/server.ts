import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Server } from 'node:https';
import type { AppContext } from '../app/context.ts';
import { toPem } from '../pki/certificate.ts';
import { listInventory } from '../pki/inventory.ts';
import type { Identity, ServerPki } from '../pki/server-pki.ts';
import { requireAdminToken } from './admin-auth.ts';
import { scepRoutes } from './scep-routes.ts';
import { ENROLLMENT_REF_RULE, isEnrollmentRef, mintChallenge } from '../scep/challenges.ts';
import { ProfileError } from '../profiles/service.ts';
import type { ScepService } from '../scep/service.ts';
import type { Services } from '../app/services.ts';
import type { Metrics } from '../ops/metrics.ts';
import { profileRoutes } from './profile-routes.ts';
import { mdmRoutes } from './mdm-routes.ts';
import { adminMdmRoutes } from './admin-mdm-routes.ts';
import { consoleRoutes } from '../console/routes.ts';
import { securityHeaders } from '../console/auth.ts';
import { auditQuery, stringQuery } from '../admin/audit-query.ts';
import { LifecycleRunner } from '../lifecycle/runner.ts';

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

function requestLogger(app: AppContext): FastifyBaseLogger {
  return app.logger.child(
    {},
    {
      serializers: {
        req: (req: { method: string; url: string; ip?: string }) => ({
          method: req.method,
          url: redactUrl(req.url),
          remoteAddress: req.ip,
        }),
      },
    },
  ) as FastifyBaseLogger;
}

/**
 * SCEP alone over plain HTTP, as RFC 8894 defines it: its messages are signed and encrypted end to end, and some
 * clients (certmonger 0.79's daemon) cannot be given a private root for the TLS of their PKIOperation request.
 */
export async function buildScepHttpServer(app: AppContext, scep: ScepService): Promise<FastifyInstance> {
  const server = Fastify({ loggerInstance: requestLogger(app), bodyLimit: app.config.bodyLimit });
  await server.register(scepRoutes, { scep, bodyLimit: app.config.scepBodyLimit, audit: app.audit });
  return server;
}

/** GET /metrics alone, over plain HTTP, for Prometheus (`--metrics-port`, on `--metrics-listen`: loopback by default). */
export async function buildMetricsServer(app: AppContext, metrics: Metrics): Promise<FastifyInstance> {
  const server = Fastify({ loggerInstance: requestLogger(app) });
  server.get('/metrics', { logLevel: 'warn' }, async (_request, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.render()),
  );
  return server;
}

/** The HTTPS listener's secure context: TLS identity and, for mutual TLS, the CAs named to clients. */
export function secureContextOptions(app: AppContext, pki: ServerPki) {
  return {
    ...tlsCredentials(pki),
    ...(app.config.mdmIdentitySources.includes('mtls') ? { ca: pki.authority.chain().map((der) => toPem(der)) } : {}),
  };
}

/** A re-issued TLS certificate (or intermediate) into the running listener: new handshakes get it, no restart. */
export function swapSecureContext(server: FastifyInstance<Server>, app: AppContext, pki: ServerPki): void {
  server.server.setSecureContext({ ...secureContextOptions(app, pki), minVersion: 'TLSv1.2' });
}

export async function buildHttpServer(app: AppContext, pki: ServerPki, services: Services): Promise<FastifyInstance<Server>> {
  const logger = requestLogger(app);
  let quiet: FastifyBaseLogger | undefined;
  const server = Fastify({
    loggerInstance: logger,
    // The MDM routes log nothing per request below warn (the audit log has every refusal): one shared child logger
    // serves them all, rather than one made per check-in, which costs as much as a SQLite read.
    childLoggerFactory: (parent, bindings, options, raw) =>
      options.level === 'warn' && raw.url?.startsWith('/mdm')
        ? (quiet ??= parent.child({ route: 'mdm' }, { level: 'warn' }))
        : parent.child(bindings, options),
    https: {
      ...secureContextOptions(app, pki),
      minVersion: 'TLSv1.2',
      // Mutual TLS for device identities: ask for a client certificate naming our CAs, decide about it ourselves
      // (mdm/cert-verify.ts), so a device with a bad certificate gets an audited 403 rather than a TLS alert.
      ...(app.config.mdmIdentitySources.includes('mtls') ? { requestCert: true, rejectUnauthorized: false } : {}),
    },
    bodyLimit: app.config.bodyLimit,
    // A path parameter may be a UDID or an EnrollmentID (the console's device pages): up to 256 characters, encoded.
    routerOptions: { maxParamLength: 1024 },
    // A URL the router refuses (bad encoding, a parameter too long) is answered as Fastify does, without echoing the
    // path, and with the console's headers under /console.
    frameworkErrors: (error, request, raw) => {
      const reply = raw as unknown as FastifyReply;
      if (request.url.startsWith('/console')) securityHeaders(reply);
      return reply
        .code(error.statusCode ?? 400)
        .send({ error: 'bad-request', code: error.code, message: 'the request URL is malformed or too long' });
    },
  });
  const { scep, profiles, mdm } = services;

  server.get('/healthz', async () => {
    await app.store.schemaVersion();
    return { status: 'ok', version: VERSION, time: app.clock().toISOString() };
  });

  await server.register(scepRoutes, { scep, bodyLimit: app.config.scepBodyLimit, audit: app.audit });
  await server.register(profileRoutes, { profiles });
  await server.register(mdmRoutes, {
    ...mdm,
    audit: app.audit,
    clock: app.clock,
    bodyLimit: app.config.mdmBodyLimit,
    metrics: services.metrics,
  });
  if (app.config.console) {
    // An unknown console page is answered with the console's headers too (and no hook on the MDM hot path).
    server.setNotFoundHandler(async (request, reply) => {
      if (request.url.startsWith('/console')) securityHeaders(reply);
      // Fastify's own 404 body, unchanged for every other path.
      return reply.code(404).send({ message: `Route ${request.method}:${request.url} not found`, error: 'Not Found', statusCode: 404 });
    });
    // "Rotate now" goes through a runner of its own (a runner keeps no state that matters between runs); a TLS
    // certificate it re-issues is swapped into this listener.
    const runner = new LifecycleRunner({
      app,
      pki,
      profiles,
      push: services.push,
      onTlsChange: (live) => swapSecureContext(server, app, live),
    });
    await server.register(consoleRoutes, { app, pki, services, runner });
  }
  // Last-seen times held in memory are written before the server lets go of the store.
  server.addHook('onClose', () => mdm.lastSeen.flush());

  await server.register(
    async (admin) => {
      admin.addHook('preHandler', requireAdminToken(app));
      // A failure nobody foresaw is still answered without internals (SQL, paths, stacks), logged and audited.
      admin.setErrorHandler(async (err: { statusCode?: number; message: string }, request, reply) => {
        if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500)
          return reply.code(err.statusCode).send({ error: 'bad-request', message: err.message });
        request.log.error({ err }, 'admin API internal error');
        await app.audit.record({
          actor: request.adminActor ?? `ip:${request.ip}`,
          action: 'admin.error',
          target: `${request.method} ${request.routeOptions.url ?? ''}`,
          outcome: 'error',
          reason: 'internal error',
        });
        return reply.code(500).send({ error: 'internal', message: 'internal error; the server log has the details' });
      });
      admin.get('/certs', async (request) => {
        const certificates = await listInventory(app.store, app.clock(), { pem: (request.query as { pem?: string }).pem === '1' });
        await app.audit.record({ actor: request.adminActor!, action: 'certs.list', outcome: 'ok', detail: { count: certificates.length } });
        return { certificates };
      });
      admin.post('/scep/challenges', async (request, reply) => {
        const body = (request.body ?? {}) as { ttlHours?: unknown; enrollmentRef?: unknown };
        const ttlHours = body.ttlHours === undefined ? app.config.challengeTtlHours : Number(body.ttlHours);
        if (!Number.isFinite(ttlHours) || ttlHours <= 0 || ttlHours > 24 * 365) {
          return reply.code(400).send({ error: 'bad-request', message: 'ttlHours must be a number of hours above 0 and at most 8760' });
        }
        const enrollmentRef = body.enrollmentRef === undefined ? null : body.enrollmentRef;
        if (enrollmentRef !== null && !isEnrollmentRef(enrollmentRef))
          return reply.code(400).send({ error: 'bad-request', message: ENROLLMENT_REF_RULE });
        const { challenge, record } = await mintChallenge(app.store, app.clock, {
          ttlMs: ttlHours * 3_600_000,
          purpose: 'scep',
          enrollmentRef,
          createdBy: request.adminActor!,
        });
        await app.audit.record({
          actor: request.adminActor!,
          action: 'scep.challenge-created',
          target: record.id,
          outcome: 'ok',
          detail: { expiresAt: record.expiresAt.toISOString(), enrollmentRef },
        });
        return reply.code(201).send({ id: record.id, challenge, expiresAt: record.expiresAt.toISOString() });
      });
      await admin.register(adminMdmRoutes, { app, push: services.push });
      admin.post('/enrollment-links', async (request, reply) => {
        const body = (request.body ?? {}) as { identity?: unknown; ttlHours?: unknown; device?: unknown };
        const identity = body.identity ?? 'scep';
        if (body.device !== undefined && (typeof body.device !== 'string' || body.device.length === 0 || body.device.length > 256))
          return reply.code(400).send({ error: 'bad-request', message: 'device must be the UDID or EnrollmentID of an enrolled device' });
        if (identity !== 'scep' && identity !== 'pkcs12')
          return reply.code(400).send({ error: 'bad-request', message: "identity must be 'scep' or 'pkcs12'" });
        const ttlHours = body.ttlHours === undefined ? app.config.enrollLinkTtlHours : Number(body.ttlHours);
        if (!Number.isFinite(ttlHours) || ttlHours <= 0 || ttlHours > 24 * 365) {
          return reply.code(400).send({ error: 'bad-request', message: 'ttlHours must be a number of hours above 0 and at most 8760' });
        }
        try {
          const { url, record } = await profiles.createLink({
            identity,
            createdBy: request.adminActor!,
            ttlMs: ttlHours * 3_600_000,
            device: body.device as string | undefined,
          });
          return reply
            .code(201)
            .send({ id: record.id, url, identity, device: record.enrollmentId, expiresAt: record.expiresAt.toISOString() });
        } catch (err) {
          if (err instanceof ProfileError) return reply.code(err.status).send({ error: 'not-found', message: err.message });
          throw err;
        }
      });
      admin.get('/audit', async (request) => {
        // The console's filters (action prefix, actor, target, outcome, before an id); at most 1000 events a page.
        const query = stringQuery(request.query);
        const limit = Math.max(1, Math.min(Math.trunc(Number(query.limit ?? 100)) || 100, 1000));
        return { events: await app.store.listAudit({ ...auditQuery(query), limit }) };
      });
    },
    { prefix: '/v1' },
  );
  return server;
}
