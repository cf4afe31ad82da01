import { ensurePki, openApp } from '../app/context.ts';
import { recordServerNames } from '../app/server-names.ts';
import { mintApiToken } from '../admin/tokens.ts';
import type { Config } from '../config.ts';
import type { AddressInfo } from 'node:net';
import { createServices, webhookSender } from '../app/services.ts';
import { buildHttpServer, buildMetricsServer, buildScepHttpServer, swapSecureContext } from '../http/server.ts';
import { LifecycleRunner } from '../lifecycle/runner.ts';
import { followServerPki } from '../pki/watch.ts';
import { probeAndRecord } from '../ops/probe.ts';
import { createLogger } from '../log.ts';
import { expiryWarning } from '../push/certificate.ts';

/** Runs the server until SIGINT/SIGTERM. */
export async function serve(config: Config): Promise<void> {
  const logger = createLogger(config.logLevel);
  const app = await openApp(config, { logger, create: true });
  const pki = await ensurePki(app);
  // The CLI's links and profiles read these, so they name this server without repeating its flags.
  await recordServerNames(app.store, config);
  const firstToken = (await app.store.listApiTokens()).length === 0 ? await mintApiToken(app.store, app.clock, 'initial-admin') : undefined;
  if (firstToken)
    await app.audit.record({
      actor: 'system',
      action: 'token.created',
      target: firstToken.record.id,
      outcome: 'ok',
      detail: { name: 'initial-admin' },
    });

  const [push] = await app.store.listCertificates({ role: 'push', status: 'active' });
  const pushWarning = push ? expiryWarning(push, app.clock()) : undefined;
  if (pushWarning) logger.warn({ notAfter: push!.notAfter.toISOString(), thresholdDays: pushWarning.days }, pushWarning.message);
  const services = createServices(app, pki);
  const server = await buildHttpServer(app, pki, services);
  await server.listen({ host: config.listen, port: config.port });
  const port = boundPort(server.server.address(), config.port);
  const base = `https://${config.hostnames[0]}:${port}`;
  logger.info({ listen: config.listen, port, url: base }, 'certmdm listening');

  const scepHttp = config.scepHttpPort === null ? undefined : await buildScepHttpServer(app, services.scep);
  let scepHttpUrl: string | undefined;
  if (scepHttp) {
    await scepHttp.listen({ host: config.listen, port: config.scepHttpPort ?? 0 });
    const scepPort = boundPort(scepHttp.server.address(), config.scepHttpPort ?? 0);
    scepHttpUrl = `http://${config.hostnames[0]}:${scepPort}/scep`;
    logger.info({ listen: config.listen, port: scepPort, url: scepHttpUrl }, 'certmdm scep-http listening');
  }

  const metricsServer = config.metricsPort === null ? undefined : await buildMetricsServer(app, services.metrics);
  let metricsUrl: string | undefined;
  if (metricsServer) {
    await metricsServer.listen({ host: config.metricsListen, port: config.metricsPort ?? 0 });
    const metricsPort = boundPort(metricsServer.server.address(), config.metricsPort ?? 0);
    const host = config.metricsListen.includes(':') ? `[${config.metricsListen}]` : config.metricsListen;
    metricsUrl = `http://${host}:${metricsPort}/metrics`;
    logger.info({ listen: config.metricsListen, port: metricsPort, url: metricsUrl }, 'certmdm metrics listening');
  }

  const lines = [
    '',
    `certmdm is serving on ${config.listen}:${port}`,
    `  server URL          ${base}/`,
    `  SCEP URL            ${base}/scep${scepHttpUrl ? `  (plain HTTP: ${scepHttpUrl})` : ''}`,
    `  MDMServiceConfig    ${base}/MDMServiceConfig`,
    `  public URL          ${config.publicUrl}  (ServerURL ${services.profiles.urls().serverUrl})`,
    `  health              ${base}/healthz`,
    ...(metricsUrl ? [`  metrics             ${metricsUrl}`] : []),
    `  admin API           ${base}/v1/certs  (Authorization: Bearer <token>)`,
    ...(config.console ? [`  admin console       ${base}/console  (accounts: certmdm admin create --name NAME)`] : []),
    `  TLS names           ${config.hostnames.join(', ')}`,
    `  root CA (SHA-256)   ${pki.authority.root.fingerprintSha256}`,
    `  data directory      ${app.dataDir.path}`,
    ...(firstToken ? ['', '  First admin API token (shown once, store it now):', `    ${firstToken.token}`] : []),
    '',
  ];
  process.stderr.write(lines.join('\n') + '\n');

  const swapTls = (live: typeof pki) => {
    swapSecureContext(server, app, live);
    logger.info({ tls: live.tls.certificate.fingerprintSha256 }, 'TLS certificate swapped in');
  };
  // The lifecycle engine: at start, then every --lifecycle-interval-minutes. A re-issued TLS certificate is swapped
  // into the listener without a restart.
  const runner = new LifecycleRunner({
    app,
    pki,
    profiles: services.profiles,
    push: services.push,
    webhook: webhookSender(app),
    onTlsChange: (live) => swapTls(live),
  });
  // With several instances on one database, the one holding the lifecycle lease runs the engine; the others try
  // again every interval, so when the leader dies another takes over within one interval.
  let leader: boolean | undefined;
  let running = false;
  const runLifecycle = async () => {
    // A run still going when the next interval comes (a large fleet, a short interval) is not doubled.
    if (running) return;
    running = true;
    try {
      const held = await app.store.holdLease('lifecycle');
      if (held !== leader) logger.info({ leader: held }, held ? 'lifecycle leader: this instance' : 'lifecycle leader: another instance');
      leader = held;
      if (!held) return;
      const report = await runner.run();
      services.metrics.lifecycleRan(app.clock());
      // What devices see at the public URL (a proxy's chain, perhaps): recorded for the metrics and alerts.
      await probeAndRecord(app.store, config.publicUrl, app.clock()).then(
        (probe) =>
          !probe.trusted && logger.warn({ url: probe.url, problem: probe.problem }, 'devices would not trust the chain at the public URL'),
        (err: unknown) => logger.warn({ err: (err as Error).message }, 'probing the public URL failed'),
      );
      logger.info({ planned: report.planned.length, done: report.done, attention: report.attention.length }, 'lifecycle run');
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'lifecycle run failed');
    } finally {
      running = false;
    }
  };
  let lifecycleTimer: NodeJS.Timeout | undefined;
  // Server certificates another instance replaced reach this one within --pki-poll-seconds.
  const pkiTimer =
    config.pkiPollSeconds > 0
      ? setInterval(
          () =>
            void followServerPki(app, pki, swapTls).then(
              (changed) =>
                changed &&
                logger.info(
                  { intermediate: pki.authority.intermediate.fingerprintSha256 },
                  'server certificates changed by another instance: loaded',
                ),
              (err: unknown) => logger.error({ err: (err as Error).message }, 'reading the server certificates failed'),
            ),
          config.pkiPollSeconds * 1000,
        )
      : undefined;
  if (config.lifecycleIntervalMinutes > 0) {
    await runLifecycle();
    lifecycleTimer = setInterval(() => void runLifecycle(), config.lifecycleIntervalMinutes * 60_000);
  }

  const stop = async (signal: string) => {
    logger.info({ signal }, 'certmdm stopping');
    clearInterval(lifecycleTimer);
    clearInterval(pkiTimer);
    await server.close();
    await scepHttp?.close();
    await metricsServer?.close();
    services.push.close();
    await app.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

function boundPort(address: AddressInfo | string | null, fallback: number): number {
  return typeof address === 'object' && address ? address.port : fallback;
}
