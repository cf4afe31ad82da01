import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../app/context.ts';
import { DAY_MS } from '../clock.ts';
import { commandFromJson, commandFromPlist, CommandError, type BuiltCommand } from '../mdm/commands.ts';
import type { PushResult, PushService } from '../push/service.ts';
import { importPushCertificate } from '../push/certificate.ts';
import { OperatorError } from '../errors.ts';
import { ChannelIdError, channelFromId, channelFromParts } from '../mdm/channel-id.ts';
import { ConflictError, type ChannelKey } from '../store/types.ts';
import { identityStanding } from '../mdm/rescue-policy.ts';

/** Channels per request and characters per id: beyond these a request is refused, not looked up and echoed. */
const MAX_DEVICES = 1000;
const MAX_ID_LENGTH = 256;

/** The channels a request names, once each; or why they are refused. */
function channelNames(raw: unknown): ChannelName[] | { refused: string } {
  if (!Array.isArray(raw) || raw.length === 0) return { refused: 'devices must name at least one channel' };
  if (raw.length > MAX_DEVICES) return { refused: `at most ${MAX_DEVICES} devices per command` };
  if (!raw.every(isChannelName))
    return {
      refused: `devices must name channels: "<id>", "<id>:<UserID>" or {"enrollment_id", "user_id"?}, each of 1 to ${MAX_ID_LENGTH} printable characters`,
    };
  const seen = new Set<string>();
  return raw.filter((name) => !seen.has(nameKey(name)) && seen.add(nameKey(name)));
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
                // `rescued`: expired within --rescue-grace-days, served only its renewal profile (mdm/rescue.ts).
                standing: identityStanding(identity.notAfter, now, app.config.rescueGraceDays * DAY_MS),
              }
            : null,
          renewingFrom: e.previousIdentityCertificateId,
        };
      }),
    );
    await app.audit.record({ actor: request.adminActor!, action: 'devices.list', outcome: 'ok', detail: { count: devices.length } });
    return { devices };
  });

  /** Resolves the admin's channel names; a refusal is audited under `action` and answered, with nothing changed. */
  const resolve = async (actor: string, action: string, names: ChannelName[]): Promise<ChannelKey[] | ChannelIdError> => {
    try {
      return await Promise.all(
        names.map((n) => (typeof n === 'string' ? channelFromId(store, n) : channelFromParts(store, n.enrollment_id, n.user_id ?? null))),
      );
    } catch (err) {
      if (!(err instanceof ChannelIdError)) throw err;
      await app.audit.record({
        actor,
        action,
        outcome: 'denied',
        reason: err.message,
        detail: { channels: names, httpStatus: err.status },
      });
      return err;
    }
  };
  const refuse = (reply: FastifyReply, err: ChannelIdError) =>
    reply.code(err.status).send({ error: err.status === 404 ? 'not-found' : 'ambiguous-channel', message: err.message });

  // `?user_id=U` names the user channel U of exactly `:id`; `?channel=device` the device channel `:id`; else NanoMDM's form.
  admin.get('/devices/:id/commands', async (request, reply) => {
    const { id } = request.params as { id: string };
    const query = request.query as { user_id?: string; channel?: string };
    const name: ChannelName =
      typeof query.user_id === 'string' && query.user_id
        ? { enrollment_id: id, user_id: query.user_id }
        : query.channel === 'device'
          ? { enrollment_id: id }
          : id;
    const resolved = await resolve(request.adminActor!, 'devices.commands', [name]);
    if (resolved instanceof ChannelIdError) return refuse(reply, resolved);
    const queue = await store.listQueue(resolved[0]!);
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

  /** An enqueue refusal: audited with what was presented, answered without internals, nothing stored. */
  const refuseEnqueue = async (
    request: FastifyRequest,
    reply: FastifyReply,
    status: 400 | 409,
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

  const enqueue = async (
    actor: string,
    names: ChannelName[],
    build: () => BuiltCommand,
    priority: number,
    wake: boolean,
  ): Promise<ChannelIdError | { command: BuiltCommand; conflict: string } | { command: BuiltCommand; pushed?: PushResult[] }> => {
    const command = build();
    const channels = await resolve(actor, 'command.enqueued', names);
    if (channels instanceof ChannelIdError) return channels;
    try {
      await app.commands.enqueue(command, channels, { priority, createdBy: actor, createdAt: app.clock() });
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      return { command, conflict: `CommandUUID ${command.uuid} is already in use` };
    }
    await app.audit.record({
      actor,
      action: 'command.enqueued',
      target: command.uuid,
      outcome: 'ok',
      detail: { requestType: command.requestType, devices: names, channels, priority },
    });
    // Enqueueing wakes the devices unless told not to: a device connects when pushed, not on a schedule.
    const pushed = wake ? await push.push(channels, actor) : undefined;
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
    const ids = channelNames(body.devices);
    if ('refused' in ids)
      return refuseEnqueue(request, reply, 400, 'bad-request', ids.refused, {
        devices: Array.isArray(body.devices) ? body.devices.length : null,
      });
    const priority = body.priority === undefined ? 0 : Number(body.priority);
    if (!Number.isInteger(priority) || priority < -100 || priority > 100)
      return refuseEnqueue(request, reply, 400, 'bad-request', 'priority must be an integer from -100 to 100', { devices: ids });
    try {
      const result = await enqueue(
        request.adminActor!,
        ids,
        () => (typeof body.plist === 'string' ? commandFromPlist(Buffer.from(body.plist, 'base64')) : commandFromJson(body.command)),
        priority,
        body.push !== false,
      );
      if (result instanceof ChannelIdError) return refuse(reply, result);
      if ('conflict' in result)
        return refuseEnqueue(request, reply, 409, 'conflict', result.conflict, {
          commandUuid: result.command.uuid,
          requestType: result.command.requestType,
          devices: ids,
          priority,
        });
      return reply.code(201).send({
        command_uuid: result.command.uuid,
        request_type: result.command.requestType,
        devices: ids,
        push: result.pushed ? Object.fromEntries(ids.map((id, i) => [nameKey(id), result.pushed?.[i]])) : null,
      });
    } catch (err) {
      if (err instanceof CommandError) return refuseEnqueue(request, reply, 400, 'bad-command', err.message, { devices: ids });
      throw err;
    }
  });

  // NanoMDM-compatible: GET /v1/push/{id,id,...} pushes by hand.
  admin.get('/push/:ids', async (request, reply) => {
    const ids = (request.params as { ids: string }).ids.split(',').filter(Boolean);
    const channels = await resolve(request.adminActor!, 'push.sent', ids);
    if (channels instanceof ChannelIdError) return refuse(reply, channels);
    return { status: nanoStatus(ids, await push.push(channels, request.adminActor!)) };
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
      const names = channelNames((request.params as { ids: string }).ids.split(',').filter(Boolean));
      if ('refused' in names) return refuseEnqueue(request, reply, 400, 'bad-request', names.refused, {});
      const ids = names as string[];
      if (!Buffer.isBuffer(request.body))
        return refuseEnqueue(request, reply, 400, 'bad-request', 'a plist body is needed', { devices: ids });
      try {
        const nopush = (request.query as { nopush?: string }).nopush;
        const result = await enqueue(request.adminActor!, ids, () => commandFromPlist(request.body as Buffer), 0, !nopush);
        if (result instanceof ChannelIdError) return refuse(reply, result);
        if ('conflict' in result)
          return refuseEnqueue(request, reply, 409, 'conflict', result.conflict, {
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
        if (err instanceof CommandError) return refuseEnqueue(request, reply, 400, 'bad-command', err.message, { devices: ids });
        throw err;
      }
    });
  });
}

/** A channel as the admin names it: NanoMDM's string (resolved by `channelFromId`) or its two parts. */
type ChannelName = string | { enrollment_id: string; user_id?: string | null };

const printableId = (v: unknown): v is string =>
  typeof v === 'string' && v.length > 0 && v.length <= MAX_ID_LENGTH && !/[\u0000-\u001f\u007f]/.test(v);

function isChannelName(value: unknown): value is ChannelName {
  if (typeof value === 'string') return printableId(value);
  if (!value || typeof value !== 'object' || Array.isArray(value)) return false;
  const { enrollment_id, user_id } = value as Record<string, unknown>;
  return printableId(enrollment_id) && (user_id == null || printableId(user_id));
}

/** How a result is keyed in a response: the id as the admin wrote it, or the JSON of a structural name. */
function nameKey(name: ChannelName): string {
  return typeof name === 'string' ? name : JSON.stringify(name);
}

/** NanoMDM's per-id status shape: `{"<id>": {"push_result": "<apns-id>"}}` or `{"<id>": {"push_error": "..."}}`. */
function nanoStatus(ids: string[], pushed: import('../push/service.ts').PushResult[] | undefined) {
  return Object.fromEntries(
    ids.map((id, i) => {
      const r = pushed?.[i];
      if (!r) return [id, {}];
      return [id, r.ok ? { push_result: r.apnsId ?? '' } : { push_error: `${r.reason}: ${r.message}` }];
    }),
  );
}
