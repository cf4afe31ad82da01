import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../app/context.ts';
import { checkSession, cookieValue, csrfMatches, csrfToken, SESSION_COOKIE, CLEARED_COOKIE } from './sessions.ts';
import { html, page } from './html.ts';
import { formFields } from './forms.ts';
import type { ConsoleAudit } from './console-audit.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The console administrator once the session cookie has been checked. */
    consoleAdmin?: string;
    consoleCsrf?: string;
    /** The live session's id (the SHA-256 of its secret), for logout and what is bound to the session. */
    consoleSession?: Buffer;
  }
}

/**
 * The console's headers on every answer: a Content-Security-Policy that allows no script at all (inline or not), our
 * own stylesheet only, and no framing; nothing cached; no referrer (a URL may carry a search).
 */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export function securityHeaders(reply: FastifyReply): void {
  reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-store')
    .header('strict-transport-security', 'max-age=31536000');
}

export const actorOf = (request: FastifyRequest): string => `admin:${request.consoleAdmin}`;

/** A refused console request: audited with what was presented, answered 403 (never 401) with nothing changed. */
export async function refuse(
  audit: ConsoleAudit,
  request: FastifyRequest,
  reply: FastifyReply,
  action: string,
  reason: string,
  message: string,
  detail: Record<string, unknown> = {},
  status = 403,
): Promise<FastifyReply> {
  await audit.record(request, {
    actor: audit.actor(request),
    action,
    target: `${request.method} ${request.url.split('?')[0]}`,
    outcome: 'denied',
    reason,
    detail,
  });
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .send(
      page(
        null,
        'Refused',
        html`<p class="notice error">${message}</p>
          <p><a href="/console/login">Log in</a> · <a href="/console">Console</a></p>`,
      ),
    );
}

/**
 * preHandler of every console page but the login page and the stylesheet: a live session (else a GET goes to the
 * login page and a POST is refused), and on every POST the session's CSRF token.
 */
export function requireConsoleSession(app: AppContext, audit: ConsoleAudit) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | void> => {
    const secret = cookieValue(request.headers.cookie, SESSION_COOKIE);
    const session = await checkSession(app.store, secret, app.clock());
    if (!session.ok) {
      const presented = { session: session.reason, ...(session.account ? { account: session.account } : {}) };
      if (request.method === 'GET') {
        await audit.record(request, {
          actor: audit.actor(request),
          action: 'console.session',
          target: `GET ${request.url.split('?')[0]}`,
          outcome: 'denied',
          reason: `no live session (${session.reason})`,
          detail: presented,
        });
        return reply.code(303).header('set-cookie', CLEARED_COOKIE).header('location', '/console/login').send();
      }
      return refuse(
        audit,
        request,
        reply,
        'console.session',
        `no live session (${session.reason})`,
        'Your session has ended or is missing: log in again. Nothing was changed.',
        presented,
      );
    }
    request.consoleAdmin = session.record.account;
    request.consoleSession = session.record.idHash;
    request.consoleCsrf = csrfToken(session.secret);
    if (request.method === 'POST') {
      const presented = formFields(request.body).csrf;
      if (!csrfMatches(session.secret, presented))
        return refuse(
          audit,
          request,
          reply,
          'console.csrf',
          presented ? 'wrong CSRF token' : 'missing CSRF token',
          'This form was not sent by the console (its CSRF token is missing or wrong). Nothing was changed.',
        );
    }
    await app.store.touchConsoleSession(session.record.idHash, app.clock());
  };
}
