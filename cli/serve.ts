import { serve } from '@hono/node-server';
import type { Server } from 'node:http';
import pino, { type Logger } from 'pino';
import { createApp } from '../api/app.js';
import { defaultConfig, type Config } from '../api/context.js';
import { openDatabase, type OpenedDatabase } from '../db/open.js';
import { startJobs } from '../jobs/scheduler.js';
import { ensureBootstrapKey } from '../services/access/bootstrap.js';

export interface ServeOptions {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl?: string;
  bootstrapKey?: string;
  jobs?: boolean;
  config?: Partial<Config>;
  logger?: Logger;
}

export interface Running {
  url: string;
  db: OpenedDatabase;
  close(): Promise<void>;
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<Config> {
  const mb = (v: string | undefined) => (v ? Math.round(Number(v) * 1024 * 1024) : undefined);
  return {
    ...(mb(env.FORFAIT_BODY_LIMIT_MB) ? { bodyLimit: mb(env.FORFAIT_BODY_LIMIT_MB)! } : {}),
    ...(mb(env.FORFAIT_IMPORT_LIMIT_MB) ? { importBodyLimit: mb(env.FORFAIT_IMPORT_LIMIT_MB)! } : {}),
    ...(env.FORFAIT_METRICS_PUBLIC === '1' ? { metricsPublic: true } : {}),
  };
}

export async function startServer(options: ServeOptions): Promise<Running> {
  const logger = options.logger ?? pino({ level: process.env.LOG_LEVEL ?? 'info' });
  const db = await openDatabase({
    databaseUrl: options.databaseUrl,
    dataDir: options.dataDir,
    log: (line) => logger.debug({ pg: line }),
  });
  const boot = await ensureBootstrapKey(db.db, { dataDir: options.dataDir, envKey: options.bootstrapKey });
  if (boot.created && boot.key) {
    // printed once, on purpose outside the JSON log so a person sees it
    process.stdout.write(`\nForfait bootstrap reseller key (shown once, also in ${boot.file}):\n  ${boot.key}\n\n`);
  }
  const created = createApp({ db: db.db, sql: db.sql, logger, config: { ...defaultConfig, ...options.config } });
  const jobs = options.jobs === false ? undefined : startJobs(
        {
          db: db.db,
          cdrs: { db: db.db, sql: db.sql, tariffs: created.tariffs },
          dataDir: options.dataDir,
          expireReservations: () => created.authorization.book.expire(),
        },
        logger,
      );
  const server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: created.app.fetch, port: options.port, hostname: options.host }, () => resolve(s as Server));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const url = `http://${options.host === '0.0.0.0' ? '127.0.0.1' : options.host}:${port}`;
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
