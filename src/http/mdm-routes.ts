import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import type { AuditLog } from '../admin/audit.ts';
import type { Clock } from '../clock.ts';
import type { CertificateVerifier } from '../mdm/cert-verify.ts';
import type { IdentityFacts } from '../mdm/identity-cache.ts';
import { auditedCertificates } from '../mdm/identity-error.ts';
import { IdentityError, presentedIdentity, type IdentitySettings, type PresentedIdentity } from '../mdm/identity.ts';
import { CHECKIN_TYPES, MessageError, readMessage, REPORT_STATUSES } from '../mdm/messages.ts';
import type { Metrics } from '../ops/metrics.ts';
import { PolicyRefusal, type MdmService } from '../mdm/service.ts';
import { parsePlistDict, PlistError } from '../plist/parse.ts';
import type { PlistDict } from '../plist/types.ts';
import { CmsError } from '../pki/cms.ts';
import { DerError } from '../pki/der.ts';

export const MDM_CONTENT_TYPES = ['application/x-apple-aspen-mdm-checkin', 'application/x-apple-aspen-mdm'];

export interface MdmRouteOptions {
  service: MdmService;
  verifier: CertificateVerifier;
  facts: IdentityFacts;
  identity: IdentitySettings;
  audit: AuditLog;
  clock: Clock;
  bodyLimit: number;
  metrics?: Metrics;
}

/**
 * A message's kind as a metric label: only the types Apple defines (a sender chooses the string; unknown ones are
 * counted as `other`, so the series stay bounded).
 */
function messageKind(message: PlistDict | undefined): { report: boolean; label: string } {
  const type = message?.MessageType;
  if (typeof type === 'string') return { report: false, label: (CHECKIN_TYPES as readonly string[]).includes(type) ? type : 'other' };
  const status = message?.Status;
  if (typeof status === 'string')
    return { report: true, label: (REPORT_STATUSES as readonly string[]).includes(status) ? status : 'other' };
  return { report: false, label: 'unreadable' };
}

function count(metrics: Metrics | undefined, message: PlistDict | undefined, outcome: 'ok' | 'refused' | 'error'): void {
  if (!metrics) return;
  const kind = messageKind(message);
  if (kind.report) metrics.commandReports.inc({ status: kind.label, outcome });
  else metrics.checkIns.inc({ message_type: kind.label, outcome });
}

/**
 * The MDM endpoints: CheckInURL (/mdm/checkin) and ServerURL (/mdm/server), each taking either kind of message,
 * and /mdm for deployments that use one URL. Order of trust: who is speaking (certificate), is that certificate one
 * of ours and current, then what they say (plist), then whether they may say it (binding, in the service policies).
 */
export async function mdmRoutes(server: FastifyInstance, options: MdmRouteOptions): Promise<void> {
  const { audit } = options;
  // Every body arrives raw: the content type is judged by the handler (415), not by a JSON or text parser.
  server.removeAllContentTypeParsers();
  server.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: options.bodyLimit }, (_req, body, done) => done(null, body));
  server.setErrorHandler(async (error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500;
    if (status >= 500) {
      // A failure nobody foresaw: logged with its details, audited, answered without internals (parser or SQL text).
      request.log.error({ err: error }, 'mdm request failed');
      options.metrics?.checkIns.inc({ message_type: 'unreadable', outcome: 'error' });
      await audit.record({
        actor: `ip:${request.ip}`,
        action: 'mdm.request',
        outcome: 'error',
        reason: 'internal error',
        detail: { httpStatus: 500 },
      });
      return reply.code(500).type('text/plain').send('internal error; the server log has the details\n');
    }
    await audit.record({
      actor: `ip:${request.ip}`,
      action: 'mdm.request',
      outcome: 'denied',
      reason: error.message,
      detail: { httpStatus: status },
    });
    return reply.code(status).type('text/plain').send(`${error.message}\n`);
  });

  const handle = async (request: FastifyRequest, reply: FastifyReply) => {
    const contentType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (!MDM_CONTENT_TYPES.includes(contentType) || !Buffer.isBuffer(request.body)) {
      const reason = `content type '${contentType || 'none'}' is not an MDM message type`;
      await audit.record({ actor: `ip:${request.ip}`, action: 'mdm.request', outcome: 'denied', reason, detail: { httpStatus: 415 } });
      return reply.code(415).type('text/plain').send(`${reason}\n`);
    }
    const body = request.body;
    const now = options.clock();
    let message: PlistDict | undefined;
    let presented: PresentedIdentity | undefined;
    let parseError: Error | undefined;
    try {
      message = parsePlistDict(body);
    } catch (err) {
      parseError = err as Error;
    }
    try {
      const socket = request.raw.socket as TLSSocket;
      const tlsCertificate = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate(false)?.raw : undefined;
      presented = presentedIdentity(
        { headers: request.headers, headerLines: request.raw.rawHeaders, body, peer: request.ip, tlsCertificate },
        options.identity,
      );
      // Facts as of now: whatever changed before this request began (on any instance) is seen.
      await options.facts.sync();
      const { certificate, rescue } = await options.verifier.verify(presented.certificate, now);
      if (parseError || !message) throw new MessageError(`malformed property list: ${parseError?.message ?? 'empty'}`);
      const parsed = readMessage(message);
      const ctx = { certificate, sources: presented.sources, peer: request.ip, now, raw: body, rescue };
      const result =
        'checkIn' in parsed ? await options.service.checkIn(ctx, parsed.checkIn) : await options.service.report(ctx, parsed.report);
      count(options.metrics, message, result.status < 400 ? 'ok' : 'refused');
      reply.code(result.status);
      if (result.contentType) reply.type(result.contentType);
      return reply.send(result.body ?? '');
    } catch (err) {
      const status =
        err instanceof IdentityError || err instanceof PolicyRefusal
          ? err.status
          : err instanceof MessageError || err instanceof PlistError || err instanceof DerError || err instanceof CmsError
            ? 400
            : undefined;
      if (status === undefined) throw err;
      count(options.metrics, message, 'refused');
      const claimed = message ? (message.UDID ?? message.EnrollmentID) : undefined;
      // What was presented: the identity once read, else what the identity reader saw before refusing.
      const shown = presented
        ? presented.sources.map((source) => ({ source, certificate: presented!.certificate }))
        : err instanceof IdentityError
          ? err.presented
          : [];
      await audit.record({
        actor: `ip:${request.ip}`,
        action: err instanceof IdentityError ? 'mdm.identity' : 'mdm.request',
        target: typeof claimed === 'string' ? claimed : null,
        outcome: 'denied',
        reason: (err as Error).message,
        detail: {
          httpStatus: status,
          refusal: err instanceof IdentityError ? err.refusal : err instanceof PolicyRefusal ? (err.reason ?? null) : null,
          ...auditedCertificates(shown),
          sources: presented?.sources ?? [],
          messageType: message?.MessageType ?? message?.Status ?? null,
        },
      });
      // Never 401 and never com.apple.unrecognized.device: either would make the real device unenroll.
      return reply
        .code(status)
        .type('text/plain')
        .send(`${(err as Error).message}\n`);
    }
  };

  // The hot path logs no per-request lines at info; every refusal and identity change is in the audit log.
  for (const path of ['/mdm/checkin', '/mdm/server', '/mdm']) server.put(path, { bodyLimit: options.bodyLimit, logLevel: 'warn' }, handle);
}
