import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditLog } from '../admin/audit.ts';
import type { ScepService } from '../scep/service.ts';
import { GateFullError, PKI_OPERATION_GATE, type ConcurrencyGate } from './concurrency-gate.ts';

/**
 * SCEP's HTTP binding (RFC 8894 §4.1): `GET ?operation=GetCACaps|GetCACert|PKIOperation&message=<base64>` and
 * `POST ?operation=PKIOperation` with the binary PKIMessage. Served at /scep and at /scep/pkiclient.exe, the path
 * some clients append.
 */
export async function scepRoutes(
  server: FastifyInstance,
  options: { scep: ScepService; bodyLimit: number; audit: AuditLog; gate?: ConcurrencyGate },
): Promise<void> {
  const { scep } = options;
  // One gate per process by default: the HTTPS listener and the plain-HTTP SCEP port share one event loop.
  const gate = options.gate ?? PKI_OPERATION_GATE;
  const pkiOperation = async (message: Buffer, request: FastifyRequest, reply: FastifyReply) => {
    let response: Awaited<ReturnType<ScepService['pkiOperation']>>;
    try {
      response = await gate.run(() => scep.pkiOperation(message, request.ip));
    } catch (err) {
      if (!(err instanceof GateFullError)) throw err;
      await options.audit.record({
        actor: `ip:${request.ip}`,
        action: 'scep.pkioperation',
        outcome: 'denied',
        reason: err.message,
        detail: { httpStatus: 503, waiting: err.waiting, bytes: message.length },
      });
      return reply.code(503).header('retry-after', '1').type('text/plain').send(`${err.message}\n`);
    }
    return reply.code(response.status).type(response.contentType).send(response.body);
  };
  server.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: options.bodyLimit }, (_req, body, done) => done(null, body));
  server.setErrorHandler(async (error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500;
    if (status >= 500) {
      // A failure nobody foresaw: logged with its details, audited, answered without internals (parser or SQL text).
      request.log.error({ err: error }, 'scep request failed');
      await options.audit.record({
        actor: `ip:${request.ip}`,
        action: 'scep.pkioperation',
        outcome: 'error',
        reason: 'internal error',
        detail: { httpStatus: 500 },
      });
      return reply.code(500).type('text/plain').send('internal error; the server log has the details\n');
    }
    await options.audit.record({
      actor: `ip:${request.ip}`,
      action: 'scep.pkioperation',
      outcome: 'denied',
      reason: error.message,
      detail: { httpStatus: status },
    });
    return reply.code(status).type('text/plain').send(`${error.message}\n`);
  });

  for (const path of ['/scep', '/scep/pkiclient.exe']) {
    server.get(path, async (request, reply) => {
      const query = request.query as { operation?: string; message?: string };
      switch (query.operation) {
        case 'GetCACaps':
          return reply.type('text/plain').send(scep.caps());
        case 'GetCACert': {
          const ca = scep.caCertificates();
          return reply.code(ca.status).type(ca.contentType).send(ca.body);
        }
        case 'PKIOperation': {
          const message = Buffer.from(query.message ?? '', 'base64');
          if (message.length === 0) return reply.code(400).type('text/plain').send('PKIOperation needs a base64 message parameter\n');
          return pkiOperation(message, request, reply);
        }
        default:
          return reply.code(400).type('text/plain').send('unknown or missing SCEP operation\n');
      }
    });
    server.post(path, { bodyLimit: options.bodyLimit }, async (request, reply) => {
      const query = request.query as { operation?: string };
      if (query.operation !== 'PKIOperation') return reply.code(400).type('text/plain').send('POST supports operation=PKIOperation only\n');
      const body = request.body;
      if (!Buffer.isBuffer(body) || body.length === 0) return reply.code(400).type('text/plain').send('empty PKIOperation body\n');
      return pkiOperation(body, request, reply);
    });
  }
}
