import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../app/context.ts';
import { DAY_MS } from '../clock.ts';
import { commandFromJson, commandFromPlist, CommandError, type BuiltCommand } from '../mdm/commands.ts';
import type { PushService } from '../push/service.ts';
import { importPushCertificate } from '../push/certificate.ts';
import { OperatorError } from '../errors.ts';
import { ConflictError } from '../store/types.ts';

/** Device (channel) ids per request and per id: beyond these a request is refused, not looked up and echoed. */
const MAX_DEVICES = 1000;
const MAX_ID_LENGTH = 256;

/** The ids a request names, once each; or why they are refused. */
function deviceIds(raw: unknown): string[] | { refused: string } {
  if (!Array.isArray(raw) || raw.length === 0) return { refused: 'devices must name at least one device' };
  if (raw.length > MAX_DEVICES) return { refused: `at most ${MAX_DEVICES} devices per command` };
  if (
    !raw.every((id): id is string => typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_LENGTH && !/[\u0000-\u001f]/.test(id))
  )
    return { refused: `each device must be an id of 1 to ${MAX_ID_LENGTH} printable characters` };
  return [...new Set(raw)];
}

/** The admin API's MDM part: devices, their identities and queues, and enqueueing (also NanoMDM's PUT /v1/enqueue). */
export async function adminMdmRoutes(admin: FastifyInstance, options: { app: AppContext; push: PushService }): Promise<void> {
  const { app, push } = options;
  const { store } = app;

  admin.get('/devices', async (request) => {
    const now = app.clock();
    const devices = await Promise.all(
      (await store.listEnrollments()).map(async (e) => {
        const identity = e.identityCertificateId ? await store.getCertificate(e.identityCertificateId) : undefined;
        return {
          id: e.id,
          kind: e.kind,
          status: e.status,
          info: e.info,
          topic: e.topic,
          hasPushToken: Boolean(e.pushToken?.length),
          enrolledAt: e.enrolledAt.toISOString(),
          lastSeenAt: e.lastSeenAt.toISOString(),
          identity: identity
            ? {
                id: identity.id,
                fingerprintSha256: identity.fingerprintSha256,
                subject: identity.subject,
                notAfter: identity.notAfter.toISOString(),
                daysLeft: Math.floor((identity.notAfter.getTime() - now.getTime()) / DAY_MS),
                status: identity.status,
              }
            : null,
          renewingFrom: e.previousIdentityCertificateId,
        };
      }),
    );
    await app.audit.record({ actor: request.adminActor!, action: 'devices.list', outcome: 'ok', detail: { count: devices.length } });
    return { devices };
  });

  admin.get('/devices/:id/commands', async (request, reply) => {
    const { id } = request.params as { id: string };
    if (!(await store.getEnrollment(id.split(':')[0]!))) return reply.code(404).send({ error: 'not-found', message: `no device ${id}` });
    const queue = await store.listQueue(id);
    return {
      commands: queue.map((q) => ({
        command_uuid: q.commandUuid,
        request_type: q.requestType,
        priority: q.priority,
        status: q.status,
        updated_at: q.updatedAt.toISOString(),
        result: q.result?.toString('utf8') ?? null,
      })),
    };
  });

  /** Every refusal of an enqueue: audited with what was presented, answered without internals, nothing stored. */
  const refuse = async (
    request: FastifyRequest,
    reply: FastifyReply,
    status: 400 | 404 | 409,
    error: string,
    message: string,
    presented: Record<string, unknown>,
  ) => {
    await app.audit.record({
      actor: request.adminActor!,
      action: 'command.enqueued',
      target: typeof presented.commandUuid === 'string' ? presented.commandUuid : null,
      outcome: 'denied',
      reason: message,
      detail: presented,
    });
    return reply.code(status).send({ error, message });
  };

  const enqueue = async (actor: string, ids: string[], build: () => BuiltCommand, priority: number, wake: boolean) => {
    const command = build();
    const unknown: string[] = [];
    for (const id of ids) if (!(await store.getEnrollment(id.split(':')[0]!))) unknown.push(id);
    if (unknown.length) {
      const named = unknown.slice(0, 10).join(', ') + (unknown.length > 10 ? ` and ${unknown.length - 10} more` : '');
      return { command, refused: 404 as const, message: `unknown devices: ${named}` };
    }
    try {
      await app.commands.enqueue(command, ids, { priority, createdBy: actor, createdAt: app.clock() });
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      return { command, refused: 409 as const, message: `CommandUUID ${command.uuid} is already in use` };
    }
    await app.audit.record({
      actor,
      action: 'command.enqueued',
      target: command.uuid,
      outcome: 'ok',
      detail: { requestType: command.requestType, devices: ids, priority },
    });
    // Enqueueing wakes the devices unless told not to: a device connects when pushed, not on a schedule.
    const pushed = wake ? await push.push(ids, actor) : undefined;
    return { command, pushed };
  };

  admin.post('/commands', async (request, reply) => {
    const raw = request.body;
    const body = (raw && typeof raw === 'object' && !Array.isArray(raw) ? raw : {}) as {
      devices?: unknown;
      command?: unknown;
      plist?: unknown;
      priority?: unknown;
      push?: unknown;
    };
    const ids = deviceIds(body.devices);
    if ('refused' in ids)
      return refuse(request, reply, 400, 'bad-request', ids.refused, { devices: Array.isArray(body.devices) ? body.devices.length : null });
    const priority = body.priority === undefined ? 0 : Number(body.priority);
    if (!Number.isInteger(priority) || priority < -100 || priority > 100)
      return refuse(request, reply, 400, 'bad-request', 'priority must be an integer from -100 to 100', { devices: ids });
    try {
      const result = await enqueue(
        request.adminActor!,
        ids,
        () => (typeof body.plist === 'string' ? commandFromPlist(Buffer.from(body.plist, 'base64')) : commandFromJson(body.command)),
        priority,
        body.push !== false,
      );
      if (result.refused)
        return refuse(request, reply, result.refused, result.refused === 404 ? 'not-found' : 'conflict', result.message, {
          commandUuid: result.command.uuid,
          requestType: result.command.requestType,
          devices: ids,
          priority,
        });
      return reply
        .code(201)
        .send({ command_uuid: result.command.uuid, request_type: result.command.requestType, devices: ids, push: result.pushed ?? null });
    } catch (err) {
      if (err instanceof CommandError) return refuse(request, reply, 400, 'bad-command', err.message, { devices: ids });
      throw err;
    }
  });

  // NanoMDM-compatible: GET /v1/push/{id,id,...} pushes by hand.
  admin.get('/push/:ids', async (request) => {
    const ids = (request.params as { ids: string }).ids.split(',').filter(Boolean);
    return { status: nanoStatus(ids, await push.push(ids, request.adminActor!)) };
  });

  admin.post('/push/certificate', async (request, reply) => {
    const body = (request.body ?? {}) as {
      certificate?: unknown;
      password?: unknown;
      key?: unknown;
      keyPassphrase?: unknown;
      forceNewTopic?: unknown;
    };
    if (typeof body.certificate !== 'string')
      return reply.code(400).send({ error: 'bad-request', message: 'certificate (base64 of a PEM, DER or PKCS#12 file) is required' });
    try {
      const record = await importPushCertificate(
        { store, keyring: app.keyring, clock: app.clock, audit: app.audit },
        {
          data: Buffer.from(body.certificate, 'base64'),
          password: typeof body.password === 'string' ? body.password : undefined,
          key: typeof body.key === 'string' ? Buffer.from(body.key, 'base64') : undefined,
          keyPassphrase: typeof body.keyPassphrase === 'string' ? body.keyPassphrase : undefined,
          forceNewTopic: body.forceNewTopic === true,
          actor: request.adminActor!,
        },
      );
      return reply.code(201).send({ id: record.id, fingerprintSha256: record.fingerprintSha256, notAfter: record.notAfter.toISOString() });
    } catch (err) {
      if (!(err instanceof OperatorError)) throw err;
      await app.audit.record({ actor: request.adminActor!, action: 'push.import', outcome: 'denied', reason: err.message });
      return reply.code(400).send({ error: 'bad-push-certificate', message: err.message });
    }
  });

  // NanoMDM-compatible: PUT /v1/enqueue/{id,id,...} with a raw plist command as the body.
  await admin.register(async (nano) => {
    nano.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    nano.put('/enqueue/:ids', async (request, reply) => {
      const ids = deviceIds((request.params as { ids: string }).ids.split(',').filter(Boolean));
      if ('refused' in ids) return refuse(request, reply, 400, 'bad-request', ids.refused, {});
      if (!Buffer.isBuffer(request.body)) return refuse(request, reply, 400, 'bad-request', 'a plist body is needed', { devices: ids });
      try {
        const nopush = (request.query as { nopush?: string }).nopush;
        const result = await enqueue(request.adminActor!, ids, () => commandFromPlist(request.body as Buffer), 0, !nopush);
        if (result.refused)
          return refuse(request, reply, result.refused, result.refused === 404 ? 'not-found' : 'conflict', result.message, {
            commandUuid: result.command.uuid,
            requestType: result.command.requestType,
            devices: ids,
          });
        return {
          status: nanoStatus(ids, result.pushed),
          command_uuid: result.command.uuid,
          request_type: result.command.requestType,
        };
      } catch (err) {
        if (err instanceof CommandError) return refuse(request, reply, 400, 'bad-command', err.message, { devices: ids });
        throw err;
      }
    });
  });
}

/** NanoMDM's per-id status shape: `{"<id>": {"push_result": "<apns-id>"}}` or `{"<id>": {"push_error": "..."}}`. */
function nanoStatus(ids: string[], pushed: Record<string, import('../push/service.ts').PushResult> | undefined) {
  return Object.fromEntries(
    ids.map((id) => {
      const r = pushed?.[id];
      if (!r) return [id, {}];
      return [id, r.ok ? { push_result: r.apnsId ?? '' } : { push_error: `${r.reason}: ${r.message}` }];
    }),
  );
}
