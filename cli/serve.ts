import { serve } from '@hono/node-server';
import type { Server } from 'node:http';
import pino, { type Logger } from 'pino';
import { createApp } from '../api/app.js';
import { defaultConfig } from '../api/context.js';
import { openDatabase, type OpenedDatabase } from '../db/open.js';
import { startJobs } from '../jobs/scheduler.js';
import { ensureBootstrapKey } from '../services/access/bootstrap.js';
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
  const db = await openDatabase({
    databaseUrl: settings.databaseUrl,
    dataDir: settings.dataDir,
    pgSettings: settings.pgSettings,
    log: (line) => logger.debug({ pg: line }),
  });
  const boot = await ensureBootstrapKey(db.db, { dataDir: settings.dataDir, envKey: settings.bootstrapKey });
  if (boot.created && boot.key) {
    // printed once, on purpose outside the JSON log so a person sees it
    process.stdout.write(`\nForfait bootstrap reseller key (shown once, also in ${boot.file}):\n  ${boot.key}\n\n`);
  }
  const person = await ensureBootstrapPerson(db.db, { dataDir: settings.dataDir });
  if (person.created) {
    process.stdout.write(
      `Forfait portal sign-in (shown once, also in ${person.file}):\n  open /portal on this server\n  email:    ${person.email}\n  password: ${person.password}\n\n`,
    );
  }
  const config = { ...defaultConfig, ...settings.api, issuer: settings.invoicing.issuer, portal: settings.portal };
  const created = createApp({ db: db.db, sql: db.sql, logger, config });
  const jobs = options.jobs === false ? undefined : startJobs(
        {
          db: db.db,
          cdrs: { db: db.db, sql: db.sql, tariffs: created.tariffs },
          dataDir: settings.dataDir,
          invoicing: settings.invoicing,
          expireReservations: () => created.authorization.book.expire(),
        },
        logger,
      );
  const server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: created.app.fetch, port: settings.port, hostname: settings.host }, () => resolve(s as Server));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : settings.port;
  const url = `http://${settings.host === '0.0.0.0' ? '127.0.0.1' : settings.host}:${port}`;
  logger.info({ url, database: db.embedded ? 'embedded' : 'DATABASE_URL' }, 'forfait listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    db,
    close() {
      closing ??= (async () => {
        // stop taking requests, let the ones in flight finish
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await jobs?.stop();
        await created.close();
        await db.close();
        logger.info('forfait stopped');
      })();
      return closing;
    },
  };
}

/** `forfait serve`: runs until SIGINT/SIGTERM, then shuts down and exits 0. */
export async function serveUntilSignal(options: ServeOptions): Promise<void> {
  const running = await startServer(options);
  let signalled = false;
  const stop = (signal: string) => {
    if (signalled) return;
    signalled = true;
    process.stderr.write(`\n${signal}: finishing requests in flight and stopping…\n`);
    const force = setTimeout(() => process.exit(1), 30_000);
    force.unref();
    running.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`shutdown failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
