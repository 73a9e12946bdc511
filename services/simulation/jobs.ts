/**
 * Simulations as jobs (issue 25): a long run answers with a job id to poll,
 * like a long export would; its progress and then its result stay in this
 * server's memory for an hour. At most one simulation rates at a time per
 * server (it takes a core), ten may wait; more are refused with 429 (the
 * exports' queue, services/exports/queue.ts).
 */
import { randomUUID } from 'node:crypto';
import { ExportQueue } from '../exports/queue.js';
import { BusyError } from '../shared/errors.js';
import type { SimulationProgress } from './simulate.js';

const RUNNING = 1;
const WAITING = 10;

export type JobStatus = 'queued' | 'running' | 'done' | 'failed';

export interface Job<R> {
  id: string;
  /** Whose job it is: `reseller:<id>` or `tenant:<id>`; nobody else sees it. */
  owner: string;
  status: JobStatus;
  progress: SimulationProgress;
  createdAt: Date;
  finishedAt: Date | null;
  result: R | undefined;
  error: Error | undefined;
  /** Settles when the job is done or failed (never rejects). */
  settled: Promise<void>;
}

export class SimulationJobs<R> {
  private readonly jobs = new Map<string, Job<R>>();

  constructor(
    private readonly slots = new ExportQueue({ running: RUNNING, waiting: WAITING, maxWaitMs: 10 * 60_000 }),
    private readonly keepMs = 60 * 60_000,
  ) {}

  /** Starts `work` when a slot is free; refuses (429) when too many wait already. */
  start(owner: string, work: (progress: (p: SimulationProgress) => void) => Promise<R>): Job<R> {
    const { running, waiting } = this.slots.stats;
    if (running >= RUNNING && waiting >= WAITING) {
      throw new BusyError('TOO_MANY_REQUESTS', `${running} simulation running and ${waiting} waiting: try again later`, 30);
    }
    const job: Job<R> = {
      id: randomUUID(),
      owner,
      status: 'queued',
      progress: { tenants: 0, tenantsDone: 0, cdrs: 0 },
      createdAt: new Date(),
      finishedAt: null,
      result: undefined,
      error: undefined,
      settled: Promise.resolve(),
    };
    job.settled = this.slots
      .run(async () => {
        job.status = 'running';
        job.result = await work((p) => {
          job.progress = p;
        });
        job.status = 'done';
      })
      .catch((err: unknown) => {
        job.status = 'failed';
        job.error = err instanceof Error ? err : new Error(String(err));
      })
      .finally(() => {
        job.finishedAt = new Date();
        setTimeout(() => this.jobs.delete(job.id), this.keepMs).unref();
      });
    this.jobs.set(job.id, job);
    return job;
  }

  /** The job if `owner` started it, else undefined (another's job is not there for it). */
  get(id: string, owner: string): Job<R> | undefined {
    const job = this.jobs.get(id);
    return job !== undefined && job.owner === owner ? job : undefined;
  }
}

/** Waits for the job for at most `ms`; whether it settled. */
export async function settledWithin(job: Job<unknown>, ms: number): Promise<boolean> {
  if (ms <= 0) return job.status === 'done' || job.status === 'failed';
  let timer: NodeJS.Timeout | undefined;
  const done = await Promise.race([job.settled.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]);
  clearTimeout(timer);
  return done;
}
