import cron from 'node-cron';
import type { Logger } from 'pino';
import type { Db } from '../db/connection.js';
import { renewForfaits } from './renewForfaits.js';

export interface Job {
  name: string;
  /** node-cron expression, evaluated in UTC: each job is idempotent and works per tenant zone itself. */
  schedule: string;
  run(db: Db): Promise<unknown>;
}

export const jobs: Job[] = [
  // every 5 minutes: a tenant whose month started since the last run is renewed
  { name: 'renew-forfaits', schedule: '*/5 * * * *', run: (db) => renewForfaits(db) },
];

export function startJobs(db: Db, logger: Logger): { stop(): Promise<void> } {
  const running = new Set<Promise<unknown>>();
  const tasks = jobs.map((job) =>
    cron.schedule(
      job.schedule,
      () => {
        const p = job
          .run(db)
          .then((result) => logger.info({ job: job.name, result }, 'job done'))
          .catch((err: unknown) => logger.error({ job: job.name, err }, 'job failed'))
          .finally(() => running.delete(p));
        running.add(p);
      },
      { timezone: 'UTC', noOverlap: true, name: job.name },
    ),
  );
  // catch up at start (after downtime over a month boundary)
  for (const job of jobs) {
    const p = job.run(db).catch((err: unknown) => logger.error({ job: job.name, err }, 'job failed'));
    running.add(p);
    void p.finally(() => running.delete(p));
  }
  return {
    async stop() {
      for (const t of tasks) await t.stop();
      await Promise.allSettled([...running]);
    },
  };
}
