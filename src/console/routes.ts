import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { OperatorError } from '../errors.ts';
import { commandFromJson } from '../mdm/commands.ts';
import { ChannelIdError, channelFromId } from '../mdm/channel-id.ts';
import { ProfileError } from '../profiles/service.ts';
import { importPushCertificate, previewPushCertificate, PushTopicChange, topicOf } from '../push/certificate.ts';
import { deviceChannel, type AdminAccountRecord, type ChannelKey } from '../store/types.ts';
import { CONSOLE_CSS } from './assets.ts';
import { actorOf, refuse, requireConsoleSession, securityHeaders } from './auth.ts';
import type { ConsoleDeps } from './facts.ts';
import { formFields, isMultipart, parseMultipart, parseUrlEncoded } from './forms.ts';
import { clientAddress } from './client-address.ts';
import { ConsoleAudit } from './console-audit.ts';
import { SpentNonces } from './spent-nonces.ts';
import { day, html, page, type Html, type PageContext } from './html.ts';
import { LoginLimiter } from './login-limiter.ts';
import { verifyPassword } from './passwords.ts';
import {
  CLEARED_COOKIE,
  cookieValue,
  hostCookie,
  csrfMatches,
  csrfToken,
  openSession,
  SESSION_IDLE_MS,
  sessionCookie,
} from './sessions.ts';
import { actionsPage, confirmPage, CONSOLE_COMMANDS, enrollmentLinkResult, pushPreview } from './pages/actions.ts';
import { auditPage } from './pages/audit.ts';
import { auditQuery, stringQuery } from '../admin/audit-query.ts';
import { certificatePage, certificatesCsv, certificatesPage, certificateFilter } from './pages/certificates.ts';
import { atRiskPage, devicePage, devicesPage } from './pages/devices.ts';
import { forecastPage } from './pages/forecast.ts';
import { loginForm } from './pages/login.ts';
import { overviewPage } from './pages/overview.ts';
import { timelinePage } from './pages/timeline.ts';
import { IdentityRenewal } from '../lifecycle/renewal.ts';
import type { PushResult } from '../push/service.ts';

const pushSummary = (p: PushResult): string => (p.ok ? 'delivered to APNs' : `not delivered (${p.reason}: ${p.message})`);

const LOGIN_COOKIE = '__Host-certmdm-login';
const FORM_LIMIT = 64 * 1024;
/** Apple's push certificate with its key and chain is a few KiB; the pending copy must fit back into a form post. */
const UPLOAD_LIMIT = 32 * 1024;
const PENDING_PUSH_MS = 10 * 60_000;

/**
 * The admin console at /console: server-rendered pages, no script, every change a confirmed, CSRF-checked, audited
 * form post by a logged-in administrator. Served on the HTTPS listener (so the session cookie can be Secure).
 */
export async function consoleRoutes(server: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  const { app } = deps;
  const limiter = new LoginLimiter();
  const clientOf = (request: FastifyRequest) => clientAddress(request, app.config.trustedProxies);
  const audit = new ConsoleAudit(app.audit, app.clock, clientOf);

  // The console reads forms and nothing else: JSON, text and the rest are 415 here, never parsed into surprises.
  server.removeAllContentTypeParsers();
  server.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_LIMIT }, (_req, body, done) => {
    try {
      done(null, parseUrlEncoded(body as string));
    } catch (err) {
      done(Object.assign(err as Error, { statusCode: 400 }), undefined);
    }
  });
  server.addContentTypeParser('multipart/form-data', { parseAs: 'buffer', bodyLimit: UPLOAD_LIMIT }, (req, body, done) => {
    try {
      done(null, parseMultipart(body as Buffer, String(req.headers['content-type'])));
    } catch (err) {
      done(Object.assign(err as Error, { statusCode: 400 }), undefined);
    }
  });
  server.addHook('onRequest', async (_request, reply) => securityHeaders(reply));
  server.setErrorHandler(async (err: { statusCode?: number; message: string }, request, reply) => {
    // A body or request Fastify refused (too large, malformed form): a refusal like any other.
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500)
      return refuse(audit, request, reply, 'console.error', err.message.slice(0, 200), err.message, {}, err.statusCode);
    request.log.error({ err }, 'console internal error');
    await app.audit.record({
      actor: audit.actor(request),
      action: 'console.error',
      target: `${request.method} ${request.url.split('?')[0]}`,
      outcome: 'error',
      reason: 'internal error',
    });
    return reply
      .code(500)
      .type('text/html; charset=utf-8')
      .send(
        page(
          null,
          'Error',
          html`<p class="notice error">Something failed inside certmdm; the server log has the details.</p>
            <p><a href="/console">Console</a></p>`,
        ),
      );
  });

  const send = (reply: FastifyReply, title: string, ctx: PageContext | null, body: Html, status = 200) =>
    reply
      .code(status)
      .type('text/html; charset=utf-8')
      .send(page(ctx, title, body));
  const ctxOf = (request: FastifyRequest): PageContext => ({
    admin: request.consoleAdmin!,
    csrf: request.consoleCsrf!,
    now: app.clock(),
    path: request.url.split('?')[0]!,
  });
  const fields = (request: FastifyRequest): Record<string, string> => formFields(request.body);

  server.get('/console/assets/console.css', async (_request, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'max-age=3600').send(CONSOLE_CSS),
  );

  /**
   * A browser that logged in as an account before keeps a sealed cookie saying so (90 days): its logins get a lane of
   * their own when strangers' guesses fill the common one (console/login-limiter.ts). It grants nothing else.
   */
  const KNOWN_COOKIE = '__Host-certmdm-known';
  const KNOWN_DAYS = 90;
  const knownBrowserCookie = (account: string) =>
    hostCookie(
      KNOWN_COOKIE,
      app.keyring.sealTransient(
        Buffer.from(JSON.stringify({ account, until: app.clock().getTime() + KNOWN_DAYS * 86_400_000 })),
        'console known browser',
      ),
      KNOWN_DAYS * 86_400,
    );
  const knownBrowser = (request: FastifyRequest): string | undefined => {
    const sealed = cookieValue(request.headers.cookie, KNOWN_COOKIE);
    const opened = sealed && sealed.length < 1024 ? app.keyring.openTransient(sealed, 'console known browser') : undefined;
    if (!opened) return undefined;
    const { account, until } = JSON.parse(opened.toString()) as { account: string; until: number };
    return until > app.clock().getTime() ? account : undefined;
  };

  // Login: its own CSRF token, bound to a short-lived cookie, so no other site can log a browser into an account.
  const loginPage = (reply: FastifyReply, status = 200, message?: { text: string; kind: 'error' | 'success' }) => {
    const secret = randomBytes(32).toString('base64url');
    reply.header('set-cookie', hostCookie(LOGIN_COOKIE, secret, 1800));
    return send(reply, 'Log in', null, loginForm(csrfToken(secret), message), status);
  };
  server.get('/console/login', async (_request, reply) => loginPage(reply));
  server.post('/console/login', async (request, reply) => {
    const form = fields(request);
    const name = (form.name ?? '').slice(0, 128);
    const address = clientOf(request);
    // An unknown name is audited by a keyed hash only: a password typed into the name field must not land in the log,
    // not even as something that could be tested offline.
    const audited = (known: boolean) => (known ? name : `unknown:${app.keyring.mac(name, 'console login name').slice(0, 16)}`);
    const lookedUp = async () => audited(Boolean(name && (await app.store.getAdminAccount(name))));
    const loginSecret = cookieValue(request.headers.cookie, LOGIN_COOKIE);
    if (!loginSecret || !/^[A-Za-z0-9_-]{43}$/.test(loginSecret) || !csrfMatches(loginSecret, form.csrf))
      return refuse(
        audit,
        request,
        reply,
        'console.login',
        form.csrf ? 'wrong CSRF token' : 'missing CSRF token',
        'This login form was not sent by the console (its CSRF token is missing or wrong).',
        { name: await lookedUp(), address },
      );
    const keys = { account: name, address, known: knownBrowser(request) === name };
    const attempt = limiter.begin(keys, app.clock().getTime());
    if (!('token' in attempt)) {
      const busy = 'busy' in attempt;
      const retry = busy ? 1 : Math.ceil(attempt.wait / 1000);
      const shown = await lookedUp();
      await audit.record(request, {
        actor: audit.actor(request),
        action: 'console.login',
        target: shown,
        outcome: 'denied',
        reason: busy ? 'too many logins in progress' : 'rate limited',
        detail: { name: shown, retryAfterSeconds: retry },
      });
      reply.header('retry-after', String(retry));
      return loginPage(reply, busy ? 503 : 429, {
        text: busy
          ? 'Too many logins at once: try again in a moment.'
          : `Too many failed attempts: try again in ${Math.ceil(retry / 60)} minute(s).`,
        kind: 'error',
      });
    }
    let account: AdminAccountRecord | undefined;
    let right = false;
    try {
      account = name ? await app.store.getAdminAccount(name) : undefined;
      right = await verifyPassword((form.password ?? '').slice(0, 1024), account?.passwordHash);
    } finally {
      if (right && account) limiter.succeeded(keys, attempt);
      else limiter.failed(attempt);
    }
    if (!right || !account) {
      await audit.record(
        request,
        {
          actor: audit.actor(request),
          action: 'console.login',
          target: audited(Boolean(account)),
          outcome: 'denied',
          reason: 'wrong name or password',
          detail: { name: audited(Boolean(account)), knownAccount: Boolean(account) },
        },
        { bounded: true },
      );
      return loginPage(reply, 403, { text: 'Wrong administrator name or password.', kind: 'error' });
    }
    // Sessions that ended without a logout are swept here, where one is made: the table holds live sessions only.
    await app.store.deleteStaleConsoleSessions(app.clock(), new Date(app.clock().getTime() - SESSION_IDLE_MS));
    const { secret } = await openSession(app.store, account.name, app.clock());
    await app.store.recordAdminLogin(account.name, app.clock());
    await app.audit.record({
      actor: `admin:${account.name}`,
      action: 'console.login',
      target: account.name,
      outcome: 'ok',
      detail: { address },
    });
    return reply
      .code(303)
      .header('set-cookie', [sessionCookie(secret), hostCookie(LOGIN_COOKIE, '', 0), knownBrowserCookie(account.name)])
      .header('location', '/console')
      .send();
  });

  await server.register(async (secured) => {
    secured.addHook('preHandler', requireConsoleSession(app, audit));

    secured.post('/console/logout', async (request, reply) => {
      await app.store.deleteConsoleSession(request.consoleSession!);
      await app.audit.record({ actor: actorOf(request), action: 'console.logout', outcome: 'ok' });
      return reply.code(303).header('set-cookie', CLEARED_COOKIE).header('location', '/console/login').send();
    });

    secured.get('/console', async (request, reply) => send(reply, 'Overview', ctxOf(request), await overviewPage(deps, app.clock())));
    secured.get('/console/timeline', async (request, reply) =>
      send(reply, 'Timeline', ctxOf(request), await timelinePage(deps, app.clock())),
    );
    secured.get('/console/at-risk', async (request, reply) =>
      send(reply, 'At risk', ctxOf(request), await atRiskPage(deps, ctxOf(request))),
    );
    secured.get('/console/devices', async (request, reply) =>
      send(
        reply,
        'Devices',
        ctxOf(request),
        await devicesPage(deps, ctxOf(request), String(stringQuery(request.query).q ?? '').slice(0, 256)),
      ),
    );
    secured.get('/console/devices/:id', async (request, reply) => {
      const { id } = request.params as { id: string };
      const body = await devicePage(deps, ctxOf(request), id);
      return body
        ? send(reply, `Device ${id}`, ctxOf(request), body)
        : send(reply, 'Not found', ctxOf(request), html`<p class="notice error">No device ${id}.</p>`, 404);
    });
    secured.get('/console/certificates', async (request, reply) =>
      send(reply, 'Certificates', ctxOf(request), await certificatesPage(deps, app.clock(), certificateFilter(stringQuery(request.query)))),
    );
    secured.get('/console/certificates.csv', async (request, reply) => {
      const filter = certificateFilter(stringQuery(request.query));
      const csv = await certificatesCsv(deps, app.clock(), filter);
      await app.audit.record({
        actor: actorOf(request),
        action: 'console.certificates-exported',
        outcome: 'ok',
        detail: { ...filter, rows: csv.split('\r\n').length - 2 },
      });
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="certmdm-certificates-${day(app.clock())}.csv"`)
        .send(csv);
    });
    secured.get('/console/certificates/:id', async (request, reply) => {
      const { id } = request.params as { id: string };
      const body = await certificatePage(deps, app.clock(), id);
      return body
        ? send(reply, 'Certificate', ctxOf(request), body)
        : send(reply, 'Not found', ctxOf(request), html`<p class="notice error">No certificate ${id}.</p>`, 404);
    });
    secured.get('/console/forecast', async (request, reply) => {
      const raw = Number(stringQuery(request.query).days ?? 90);
      const days = Number.isInteger(raw) && raw >= 1 && raw <= 3650 ? raw : 90;
      return send(reply, 'Forecast', ctxOf(request), await forecastPage(deps, app.clock(), days));
    });
    secured.get('/console/audit', async (request, reply) =>
      send(reply, 'Audit log', ctxOf(request), await auditPage(deps, auditQuery(stringQuery(request.query)))),
    );
    secured.get('/console/actions', async (request, reply) => {
      const [push] = await app.store.listCertificates({ role: 'push', status: 'active' });
      return send(reply, 'Actions', ctxOf(request), actionsPage(ctxOf(request), push ? (topicOf(push.der) ?? null) : null));
    });

    /** An action's input refused before anything happened: audited, explained, 400. */
    const invalid = (request: FastifyRequest, reply: FastifyReply, action: string, message: string, detail: Record<string, unknown> = {}) =>
      refuse(audit, request, reply, action, message, message, detail, 400);

    secured.post('/console/actions/enrollment-link', async (request, reply) => {
      const form = fields(request);
      const identity = form.identity ?? 'scep';
      const ttlHours = form.ttlHours ? Number(form.ttlHours) : app.config.enrollLinkTtlHours;
      const device = form.device?.trim() || undefined;
      if (identity !== 'scep' && identity !== 'pkcs12')
        return invalid(request, reply, 'console.enroll-link', "identity must be 'scep' or 'pkcs12'");
      if (!Number.isFinite(ttlHours) || ttlHours <= 0 || ttlHours > 8760)
        return invalid(request, reply, 'console.enroll-link', 'the link is valid for 1 to 8760 hours');
      if (device && device.length > 256)
        return invalid(request, reply, 'console.enroll-link', 'a device is named by its UDID or EnrollmentID');
      if (form.confirm !== 'yes')
        return send(
          reply,
          'Confirm: enrollment link',
          ctxOf(request),
          confirmPage(
            ctxOf(request),
            '/console/actions/enrollment-link',
            { identity, ttlHours: String(ttlHours), ...(device ? { device } : {}) },
            html`<p>
              Create a one-time ${identity === 'scep' ? 'SCEP' : 'PKCS#12'} enrollment link valid for ${ttlHours}
              hours${device ? html`, which may only re-enroll <strong>${device}</strong> (its new identity takes over that enrollment)` : ', for a new device'}?
            </p>`,
          ),
        );
      try {
        const { url, record } = await deps.services.profiles.createLink({
          identity,
          createdBy: actorOf(request),
          ttlMs: ttlHours * 3_600_000,
          device,
        });
        await app.audit.record({
          actor: actorOf(request),
          action: 'console.enroll-link',
          target: device ?? record.id,
          outcome: 'ok',
          detail: { link: record.id, identity, ttlHours, device: device ?? null },
        });
        return send(
          reply,
          'Enrollment link',
          ctxOf(request),
          enrollmentLinkResult({ url, expiresAt: record.expiresAt, device: device ?? null, identity }),
        );
      } catch (err) {
        if (err instanceof ProfileError) return invalid(request, reply, 'console.enroll-link', err.message, { device });
        throw err;
      }
    });

    const pushDeps = { store: app.store, keyring: app.keyring, clock: app.clock, audit: app.audit };
    const spent = new SpentNonces(app.clock);
    const pendingContext = (request: FastifyRequest) => `console-push:${request.consoleSession!.toString('hex')}`;
    secured.post('/console/actions/push-certificate', { bodyLimit: UPLOAD_LIMIT }, async (request, reply) => {
      const body: unknown = request.body;
      const file = isMultipart(body) ? body.files.certificate : undefined;
      if (!isMultipart(body) || !file || file.data.length === 0)
        return invalid(request, reply, 'console.push-certificate', 'choose the push certificate file to upload');
      const password = body.fields.password || undefined;
      const input = { data: file.data, password, actor: actorOf(request) };
      try {
        const preview = await previewPushCertificate(pushDeps, input);
        const pending = deps.app.keyring.sealTransient(
          Buffer.from(
            JSON.stringify({
              data: file.data.toString('base64'),
              password,
              until: app.clock().getTime() + PENDING_PUSH_MS,
              nonce: randomBytes(16).toString('hex'),
            }),
          ),
          pendingContext(request),
        );
        await app.audit.record({
          actor: actorOf(request),
          action: 'console.push-certificate',
          outcome: 'allowed',
          reason: 'checked; awaiting confirmation',
          detail: { topic: preview.topic, notAfter: preview.notAfter.toISOString(), file: file.filename },
        });
        return send(reply, 'Confirm: push certificate', ctxOf(request), pushPreview(ctxOf(request), preview, pending));
      } catch (err) {
        if (!(err instanceof OperatorError)) throw err;
        const explanation =
          err instanceof PushTopicChange
            ? html`<div id="push-refusal">
                <p class="notice error">
                  Refused: the uploaded certificate's topic <code>${err.newTopic}</code> is not the installed one,
                  <code>${err.currentTopic ?? ''}</code>.
                </p>
                <p>
                  Every enrolled device accepts pushes only for the topic it enrolled with. Installing a certificate for another topic would
                  leave certmdm unable to wake any of them, so none would renew its identity — the whole fleet would be lost as identities
                  expire. Renew the push certificate with the <strong>same Apple ID</strong> at Apple's portal (it keeps the topic). Nothing
                  was changed.
                </p>
              </div>`
            : html`<div id="push-refusal">
                <p class="notice error">Refused: ${err.message}.</p>
                <p>Nothing was changed.</p>
              </div>`;
        await app.audit.record({
          actor: actorOf(request),
          action: 'console.push-certificate',
          outcome: 'denied',
          reason: err.message,
          detail: {
            file: file.filename,
            bytes: file.data.length,
            ...(err instanceof PushTopicChange ? { currentTopic: err.currentTopic, uploadedTopic: err.newTopic } : {}),
          },
        });
        return send(reply, 'Push certificate refused', ctxOf(request), explanation, 409);
      }
    });
    secured.post('/console/actions/push-certificate/confirm', async (request, reply) => {
      const sealed = fields(request).pending ?? '';
      const opened = sealed.length < 1_000_000 ? deps.app.keyring.openTransient(sealed, pendingContext(request)) : undefined;
      const pending = opened
        ? (JSON.parse(opened.toString()) as { data: string; password?: string; until: number; nonce: string })
        : undefined;
      // Each pending upload is confirmed once: a replayed confirmation (or an older upload's) is refused.
      if (!pending || pending.until < app.clock().getTime() || !spent.spend(pending.nonce, pending.until))
        return invalid(
          request,
          reply,
          'console.push-certificate',
          'this upload is not pending for your session any more (confirmed already, over 10 minutes old, or altered): upload it again',
        );
      try {
        const record = await importPushCertificate(pushDeps, {
          data: Buffer.from(pending.data, 'base64'),
          password: pending.password,
          actor: actorOf(request),
        });
        await app.audit.record({
          actor: actorOf(request),
          action: 'console.push-certificate',
          target: record.fingerprintSha256,
          outcome: 'ok',
          detail: { notAfter: record.notAfter.toISOString() },
        });
        return send(
          reply,
          'Push certificate installed',
          ctxOf(request),
          html`<p class="notice success" id="push-installed">Installed: the push certificate now expires ${day(record.notAfter)}.</p>`,
        );
      } catch (err) {
        if (!(err instanceof OperatorError)) throw err;
        return refuse(
          audit,
          request,
          reply,
          'console.push-certificate',
          err.message,
          `Refused: ${err.message}. Nothing was changed.`,
          {},
          409,
        );
      }
    });

    secured.post('/console/actions/rotate', async (request, reply) => {
      const form = fields(request);
      const what = form.what;
      if (what !== 'tls' && what !== 'intermediate') return invalid(request, reply, 'console.rotate', "rotate 'tls' or 'intermediate'");
      if (form.confirm !== 'yes')
        return send(
          reply,
          `Confirm: rotate ${what}`,
          ctxOf(request),
          confirmPage(
            ctxOf(request),
            '/console/actions/rotate',
            { what },
            what === 'tls'
              ? html`<p>
                  Issue a new TLS certificate now and swap it into the listener? New connections get it at once; devices trust it through
                  the same root.
                </p>`
              : html`<p>
                  Roll the intermediate CA over now? A new intermediate under the same root is made, and the TLS certificate, profile signer
                  and SCEP RA are re-issued under it. Renewal profiles not yet delivered are withdrawn and sent again, since they name the
                  old chain.
                </p>`,
          ),
        );
      const done = await deps.runner.rotateNow(what, actorOf(request));
      await app.audit.record({ actor: actorOf(request), action: `console.rotate-${what}`, outcome: 'ok', detail: { done } });
      return send(reply, `Rotated: ${what}`, ctxOf(request), html`<p class="notice success" id="rotated">Done: ${done.join('; ')}.</p>`);
    });

    secured.post('/console/actions/command', async (request, reply) => {
      const form = fields(request);
      const requestType = CONSOLE_COMMANDS.find((c) => c === form.requestType);
      const ids = [...new Set((form.devices ?? '').split(/\s+/).filter(Boolean))];
      if (!requestType)
        return invalid(request, reply, 'console.command', `the console enqueues ${CONSOLE_COMMANDS.join(', ')}; others through the API`);
      if (ids.length === 0 || ids.length > 100 || ids.some((id) => id.length > 256))
        return invalid(request, reply, 'console.command', 'name 1 to 100 devices');
      let channels: ChannelKey[];
      try {
        channels = await Promise.all(ids.map((id) => channelFromId(app.store, id)));
      } catch (err) {
        if (err instanceof ChannelIdError) return invalid(request, reply, 'console.command', err.message, { devices: ids });
        throw err;
      }
      if (form.confirm !== 'yes')
        return send(
          reply,
          'Confirm: enqueue a command',
          ctxOf(request),
          confirmPage(
            ctxOf(request),
            '/console/actions/command',
            { requestType, devices: ids.join('\n') },
            html`<p>Enqueue <strong>${requestType}</strong> for ${ids.length} device(s) and wake them by push?</p>
              <ul>
                ${ids.map((id) => html`<li>${id}</li>`)}
              </ul>`,
          ),
        );
      const command = commandFromJson({ RequestType: requestType });
      await app.commands.enqueue(command, channels, { priority: 0, createdBy: actorOf(request), createdAt: app.clock() });
      await app.audit.record({
        actor: actorOf(request),
        action: 'command.enqueued',
        target: command.uuid,
        outcome: 'ok',
        detail: { requestType, devices: ids, via: 'console' },
      });
      const pushed = await deps.services.push.push(channels, actorOf(request));
      return send(
        reply,
        'Command enqueued',
        ctxOf(request),
        html`<p class="notice success" id="enqueued">
          Enqueued ${requestType} (<span class="mono">${command.uuid}</span>) for ${ids.length} device(s); push:
          ${pushed.map(pushSummary).join(', ')}.
        </p>`,
      );
    });

    const renewal = new IdentityRenewal({ store: app.store, commands: app.commands, audit: app.audit, profiles: deps.services.profiles });
    const deviceAction = async (request: FastifyRequest, reply: FastifyReply, kind: 'push' | 'renew') => {
      const { id } = request.params as { id: string };
      const enrollment = await app.store.getEnrollment(id);
      if (!enrollment || enrollment.status !== 'enrolled')
        return invalid(request, reply, `console.device-${kind}`, `no enrolled device ${id}`, { device: id });
      if (fields(request).confirm !== 'yes')
        return send(
          reply,
          kind === 'push' ? 'Confirm: push again' : 'Confirm: fresh renewal',
          ctxOf(request),
          confirmPage(
            ctxOf(request),
            `/console/devices/${encodeURIComponent(id)}/${kind}`,
            {},
            kind === 'push'
              ? html`<p>Wake <strong>${id}</strong> again by push, so it fetches what waits in its queue?</p>`
              : html`<p>
                  Withdraw <strong>${id}</strong>'s pending renewal profile (if any) and send a fresh one now, with a new one-time
                  challenge, then wake it by push?
                </p>`,
          ),
        );
      let detail: Record<string, unknown> = {};
      if (kind === 'renew') {
        // The fresh profile is queued first; only then is the one it replaces withdrawn, so a refusal changes nothing.
        const replaced = enrollment.renewalCommandUuid;
        const sent = await renewal.send(enrollment, app.clock(), actorOf(request));
        if (!sent)
          return invalid(request, reply, 'console.device-renew', `${id} has no identity to renew: send a re-enrollment link`, {
            device: id,
          });
        const withdrawn = replaced ? await app.store.eraseCommandBodies([replaced], app.clock()) : [];
        detail = { withdrawn };
      }
      const [pushed] = await deps.services.push.push([deviceChannel(id)], actorOf(request));
      await app.audit.record({
        actor: actorOf(request),
        action: `console.device-${kind}`,
        target: id,
        outcome: 'ok',
        detail: { ...detail, push: pushed ?? null },
      });
      return send(
        reply,
        kind === 'push' ? 'Pushed' : 'Renewal sent',
        ctxOf(request),
        html`<p class="notice success" id="device-action-done">
            ${kind === 'push' ? 'Push' : 'Fresh renewal profile queued and push'} for ${id}: ${pushed ? pushSummary(pushed) : 'not sent'}.
          </p>
          <p><a href="/console/devices/${encodeURIComponent(id)}">Back to the device</a></p>`,
      );
    };
    secured.post('/console/devices/:id/push', async (request, reply) => deviceAction(request, reply, 'push'));
    secured.post('/console/devices/:id/renew', async (request, reply) => deviceAction(request, reply, 'renew'));
  });
}
