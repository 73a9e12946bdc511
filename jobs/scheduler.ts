import cron from 'node-cron';
import type { Logger } from 'pino';
import type { Db } from '../db/connection.js';
import { renewForfaits } from './renewForfaits.js';
import { runMonthlyInvoices } from './runInvoices.js';
import { defaultSpoolRoot, ingestCdrSpool } from './ingestCdrSpool.js';
import { archiveCdrs, clusterClosedMonths, ensurePartitionsAhead } from './cdrPartitions.js';
import type { CdrDeps } from '../services/cdrs/context.js';
import type { Issuer } from '../services/invoices/issuer.js';

/** What a job may use: the database, and the running app's in-memory services. */
export interface JobContext {
  db: Db;
  /** What CDR rating needs (the spool job). */
  cdrs: CdrDeps;
  /** The data folder; CDR files are dropped in <dataDir>/spool/cdr/<tenantId>/. */
  dataDir: string;
  /** Who issues the invoices, and how long after a tenant's month ends the invoicing waits for late CDRs. */
  invoicing: { issuer: Issuer; graceHours: number };
  /** Where the CDR archive job writes (settings.archiveDir). */
  archiveDir: string;
  /** Closes the reservations of this process's tenants whose call outlived maxSeconds + 60 s. */
  expireReservations(): Promise<number>;
}

export interface Job {
  name: string;
  /** node-cron expression (seconds field allowed), in UTC: each job is idempotent and works per tenant zone itself. */
  schedule: string;
  run(ctx: JobContext): Promise<unknown>;
}

export const jobs: Job[] = [
  // every 5 minutes: a tenant whose month started since the last run is renewed
  { name: 'renew-forfaits', schedule: '*/5 * * * *', run: (ctx) => renewForfaits(ctx.db) },
  // every 10 seconds: reservations past maxSeconds + 60 s give their credit back
  { name: 'expire-reservations', schedule: '*/10 * * * * *', run: (ctx) => ctx.expireReservations() },
  // hourly: each tenant's previous month is invoiced once its month has ended in its zone (plus a grace)
  { name: 'monthly-invoices', schedule: '0 7 * * * *', run: (ctx) => runMonthlyInvoices(ctx.db, ctx.invoicing) },
  // every 30 seconds: CDR files dropped by PBXs are rated and moved to done/ or failed/
  { name: 'cdr-spool', schedule: '*/30 * * * * *', run: (ctx) => ingestCdrSpool(ctx.cdrs, defaultSpoolRoot(ctx.dataDir)) },
  // daily: the CDR partitions of this UTC month and the next two (late CDRs make theirs on demand)
  { name: 'cdr-partitions', schedule: '0 10 0 * * *', run: (ctx) => ensurePartitionsAhead(ctx.db, new Date()) },
  // daily, at night: each tenant's months past cdrRetentionMonths archived (written, fsynced, verified), then removed
  { name: 'cdr-archive', schedule: '0 30 3 * * *', run: (ctx) => archiveCdrs(ctx.db, ctx.archiveDir, new Date()) },
  // daily, at night: each closed month (3 days after its end) rewritten once in user order, for per-user history reads
  { name: 'cdr-cluster', schedule: '0 0 4 * * *', run: (ctx) => clusterClosedMonths(ctx.db, new Date()) },
];

export function startJobs(ctx: JobContext, logger: Logger): { stop(): Promise<void>; caughtUp(name: string): Promise<void> } {
  const running = new Set<Promise<unknown>>();
  const tasks = jobs.map((job) =>
    cron.schedule(
      job.schedule,
      () => {
        const p = job
          .run(ctx)
          .then((result) => logger.debug({ job: job.name, result }, 'job done'))
          .catch((err: unknown) => logger.error({ job: job.name, err }, 'job failed'))
          .finally(() => running.delete(p));
        running.add(p);
      },
      { timezone: 'UTC', noOverlap: true, name: job.name },
    ),
  );
  // catch up at start (after downtime over a month boundary)
  const catchUps = new Map<string, Promise<void>>();
  for (const job of jobs) {
    const p = job.run(ctx).then(
      () => undefined,
      (err: unknown) => logger.error({ job: job.name, err }, 'job failed'),
    );
    catchUps.set(job.name, p);
    running.add(p);
    void p.finally(() => running.delete(p));
  }
  return {
    /** Settles when the job's run at start is over (failed or not). */
    caughtUp: (name) => catchUps.get(name) ?? Promise.resolve(),
    async stop() {
      for (const t of tasks) await t.stop();
      await Promise.allSettled([...running]);
    },
  };
}
