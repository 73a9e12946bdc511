import { serve } from '@hono/node-server';
import type { Server } from 'node:http';
import pino, { type Logger } from 'pino';
import { createApp } from '../api/app.js';
import { defaultConfig } from '../api/context.js';
import { openDatabase, type OpenedDatabase } from '../db/open.js';
import { startJobs } from '../jobs/scheduler.js';
import { ensureBootstrapKey } from '../services/access/bootstrap.js';
import { preloadBooks, tenantsWithPbxKeys } from '../services/authorization/preload.js';
import { newServerId, SERVER_SETTING } from '../services/cluster/membership.js';
import { ensureBootstrapPerson } from '../services/people/bootstrap.js';
import type { Settings } from './config.js';

export interface ServeOptions {
  settings: Settings;
  jobs?: boolean;
  logger?: Logger;
}

export interface Running {
  url: string;
  db: OpenedDatabase;
  close(): Promise<void>;
}

export async function startServer(options: ServeOptions): Promise<Running> {
  const { settings } = options;
  const logger = options.logger ?? pino({ level: settings.logLevel });
  // every connection names this server: the reservations fence reads it (services/cluster/)
  const serverId = newServerId();
  const db = await openDatabase({
    databaseUrl: settings.databaseUrl,
    dataDir: settings.dataDir,
    pgSettings: settings.pgSettings,
    log: (line) => logger.debug({ pg: line }),
    settings: { [SERVER_SETTING]: serverId },
  });
  const boot = await ensureBootstrapKey(db.db, { dataDir: settings.dataDir, envKey: settings.bootstrapKey });
  if (boot.created && boot.key) {
    // printed once, on purpose outside the JSON log so a person sees it
    process.stdout.write(`\nForfait bootstrap reseller key (shown once, also in ${boot.file}):\n  ${boot.key}\n\n`);
  }
  const person = await ensureBootstrapPerson(db.db, { dataDir: settings.dataDir });
  const config = { ...defaultConfig, ...settings.api, issuer: settings.invoicing.issuer, portal: settings.portal };
  const created = createApp({ db: db.db, sql: db.sql, logger, config }, { serverId });
  const jobs = options.jobs === false ? undefined : startJobs(
        {
          db: db.db,
          cdrs: { db: db.db, sql: db.sql, tariffs: created.tariffs },
          dataDir: settings.dataDir,
          archiveDir: settings.archiveDir,
          invoicing: settings.invoicing,
          expireReservations: () => created.authorization.book.expire(),
        },
        logger,
      );
  // the books of the tenants PBXs call, loaded before the server listens: no call waits for its
  // tenant's book after a start (docs/authorization.md); until then a PBX finds the port closed and
  // fails over at once instead of waiting out its timeout
  if (settings.preloadBooks) {
    // after the forfaits' renewal at start: it rewrites every user of a tenant whose month began during the
    // downtime, which a loaded book would re-read whole on the event loop (~1 s for 100,000 users)
    await jobs?.caughtUp('renew-forfaits');
    const started = performance.now();
    const done = await preloadBooks(created.authorization, await tenantsWithPbxKeys(db.db), logger);
    const ms = Math.round(performance.now() - started);
    logger.info({ loaded: done.loaded.length, elsewhere: done.elsewhere.length, failed: done.failed, ms }, 'account books preloaded');
  }
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch: created.fetch, port: settings.port, hostname: settings.host }, () => resolve(s as Server)) as Server;
    s.once('error', reject); // a port in use (EADDRINUSE) or not ours to take (EACCES)
  }).catch(async (err: unknown) => {
    // nothing serves: stop what started (the embedded PostgreSQL above all), then say why
    await jobs?.stop();
    await created.close();
    await db.close();
    throw err;
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : settings.port;
  const url = `http://${settings.host === '0.0.0.0' ? '127.0.0.1' : settings.host}:${port}`;
  if (person.created) {
    // once the server listens, with the address to open: the README's new user needs nothing else
    const portal = `http://${settings.host === '0.0.0.0' || settings.host === '::' ? 'localhost' : settings.host}:${port}/portal`;
    process.stdout.write(
      `Forfait portal sign-in (shown once, also in ${person.file}):\n  open:     ${portal}\n  email:    ${person.email}\n  password: ${person.password}\n\n`,
    );
  }
  // the others forward this server's tenants' requests to it from now on
  await created.cluster.join(settings.advertiseUrl ?? url);
  logger.info({ url, server: serverId, database: db.embedded ? 'embedded' : 'DATABASE_URL' }, 'forfait listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    db,
    close() {
      closing ??= (async () => {
        // stop taking requests, let the ones in flight finish within the grace, then cut them:
        // a client that never ends its upload (or never reads its download) cannot hold the shutdown
        let cut: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          cut = setTimeout(() => {
            logger.warn({ graceSeconds: settings.shutdownGraceSeconds }, 'shutdown: cutting the requests still in flight');
            server.closeAllConnections();
          }, settings.shutdownGraceSeconds * 1000);
        });
        clearTimeout(cut);
        await jobs?.stop();
        await created.close();
        await db.close();
        logger.info('forfait stopped');
      })();
      return closing;
    },
  };
}

/** How long the stopping itself (jobs, pool, PostgreSQL's fast shutdown) may take after the grace before the exit is forced. */
const STOPPING_MS = 20_000;

/**
 * `forfait serve`: runs until SIGINT/SIGTERM, then shuts down and exits 0:
 * requests in flight get FORFAIT_SHUTDOWN_GRACE_S, then are cut; the jobs, the
 * pool and the embedded PostgreSQL stop. Whatever goes wrong then (a stop that
 * hangs or fails, a second signal) the exit is forced, and the embedded
 * PostgreSQL is never left behind: it gets an immediate shutdown first.
 */
/** Signals this close to the first are the same Ctrl-C delivered twice. */
const SAME_SIGNAL_MS = 1_000;

export async function serveUntilSignal(options: ServeOptions): Promise<void> {
  const running = await startServer(options);
  let signalled: number | undefined;
  const forced = (why: string) => {
    process.stderr.write(`${why}: exiting now\n`);
    running.db.embedded?.kill();
    process.exit(1);
  };
  const stop = (signal: string) => {
    if (signalled !== undefined) {
      // one Ctrl-C arrives twice under `npm start` (the terminal signals the process group, npm forwards it):
      // only a second signal a person sends on purpose, a moment later, forces the exit
      if (performance.now() - signalled >= SAME_SIGNAL_MS) forced(`${signal} again`);
      return;
    }
    signalled = performance.now();
    process.stderr.write(`\n${signal}: finishing requests in flight (${options.settings.shutdownGraceSeconds} s at most) and stopping…\n`);
    const force = setTimeout(() => forced('shutdown took too long'), options.settings.shutdownGraceSeconds * 1000 + STOPPING_MS);
    force.unref();
    running.close().then(
      () => process.exit(0),
      (err: unknown) => forced(`shutdown failed: ${String(err)}`),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
