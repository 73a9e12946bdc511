/**
 * What if? (issue 25) A past period's outgoing CDRs rated again under a tariff
 * — a saved one or a draft that is never stored — by the rerate's own compute
 * step, without writing anything: per tenant and in total, the current and the
 * simulated cost.
 *
 * Each tenant is read in one READ ONLY, REPEATABLE READ transaction (its users'
 * counters, its forfait_usage and its CDRs agree), the CDRs by
 * `COPY … TO STDOUT` in id order — the order a rerate takes them, which the
 * forfait of each month depends on — and their bytes go to a worker thread of
 * the simulation's own (simulationWorker.ts) that parses, rates and sums them:
 * memory holds a few chunks of bytes and the per-user and per-destination
 * sums, whatever the number of CDRs, and the thread that answers the PBX only
 * moves bytes.
 */
import type { Readable } from 'node:stream';

import { rawSql } from '../../db/connection.js';
import type { Rate } from '../../engine/index.js';
import { periodOf } from '../../engine/periods.js';
import type { RerateUser } from '../cdrs/rerateCompute.js';
import { loadTenantContext, type CdrDeps } from '../cdrs/context.js';
import { periodRange } from '../cdrs/view.js';
import { copyStream } from '../exports/cdrExport.js';
import { WorkerPool, workerEntry } from '../shared/workerPool.js';
import { SIMULATION_COLUMNS, type TenantTally } from './tally.js';

/** What the worker needs to rate one tenant's CDRs. */
export interface SimulationTenantInput {
  tenantId: string;
  timezone: string;
  freeNumbers: string[];
  currentPeriod: string;
  /** forfait_usage as [`${userId}|${period}`, seconds] */
  usage: [string, number][];
  users: RerateUser[];
}

export interface SimulationRequest {
  /** The rates to simulate: a saved tariff's or a draft's. */
  rates: Rate[];
  from: string;
  to: string;
  tenantIds: readonly string[];
}

export interface SimulationProgress {
  tenants: number;
  tenantsDone: number;
  /** CDRs rated so far. */
  cdrs: number;
}

/** A tenant's tally with what the answer shows of it and its users. */
export interface TenantRun {
  tenantId: string;
  name: string;
  tally: TenantTally;
  people: Map<string, { identifiant: string; fullName: string }>;
}

/** Bytes handed to the worker at a time; two such chunks at most are in flight. */
const CHUNK_BYTES = 512 * 1024;

/**
 * Simulates `request` tenant after tenant. `now` fixes the current forfait
 * period of users that never had one (as a rerate at that instant would).
 */
export async function runSimulation(
  deps: CdrDeps,
  request: SimulationRequest,
  options: { now?: Date; onProgress?: (p: SimulationProgress) => void } = {},
): Promise<TenantRun[]> {
  const progress: SimulationProgress = { tenants: request.tenantIds.length, tenantsDone: 0, cdrs: 0 };
  const report = () => options.onProgress?.({ ...progress });
  report();
  const pool = new WorkerPool(() => workerEntry(import.meta.url, 'simulationWorker'), { size: 1, maxQueue: 4 });
  try {
    await pool.run('tariff', request.rates);
    const runs: TenantRun[] = [];
    for (const tenantId of request.tenantIds) {
      runs.push(await simulateTenant(deps, pool, tenantId, request, options.now ?? new Date(), (n) => {
        progress.cdrs += n;
        report();
      }));
      progress.tenantsDone++;
      report();
    }
    return runs;
  } finally {
    await pool.close();
  }
}

async function simulateTenant(
  deps: CdrDeps,
  pool: WorkerPool,
  tenantId: string,
  request: SimulationRequest,
  now: Date,
  rated: (n: number) => void,
): Promise<TenantRun> {
  const ctx = await loadTenantContext(deps, tenantId);
  const range = periodRange(request, ctx.timezone);
  const from = range.from!;
  const to = range.to!;
  return deps.db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute(async (trx) => {
      const tenant = await trx.selectFrom('tenants').select('name').where('id', '=', tenantId).executeTakeFirstOrThrow();
      const users = await trx
        .selectFrom('users')
        .select(['id', 'billingEnabled', 'forfaitPeriod', 'forfaitMinutes', 'usedSeconds', 'identifiant', 'fullName'])
        .where('tenantId', '=', tenantId)
        .execute();
      const usage = await trx
        .selectFrom('forfaitUsage')
        .select(['userId', 'period', 'usedSeconds'])
        .where('tenantId', '=', tenantId)
        .where('period', '>=', periodOf(from, ctx.timezone))
        .where('period', '<=', periodOf(new Date(to.getTime() - 1), ctx.timezone))
        .execute();
      const input: SimulationTenantInput = {
        tenantId,
        timezone: ctx.timezone,
        freeNumbers: [...ctx.freeNumbers],
        currentPeriod: periodOf(now, ctx.timezone),
        usage: usage.map((u) => [`${u.userId}|${u.period}`, u.usedSeconds]),
        users: users.map((u) => ({ id: u.id, billingEnabled: u.billingEnabled, forfaitPeriod: u.forfaitPeriod, forfaitMinutes: u.forfaitMinutes, usedSeconds: u.usedSeconds })),
      };
      await pool.run('tenant', input);
      const raw = await rawSql(trx);
      // COPY takes no parameters: the values are settings of this transaction, each bound (as the export and the
      // archive do), read once per statement as InitPlans
      await raw`SELECT set_config('forfait_simulation.tenant', ${tenantId}, true),
                       set_config('forfait_simulation.from', ${from.toISOString()}, true), set_config('forfait_simulation.to', ${to.toISOString()}, true)`;
      const select = `SELECT ${SIMULATION_COLUMNS} FROM cdrs
        WHERE tenant_id = (SELECT current_setting('forfait_simulation.tenant')::uuid) AND direction = 'out' AND user_id IS NOT NULL
          AND started_at >= (SELECT current_setting('forfait_simulation.from')::timestamptz)
          AND started_at < (SELECT current_setting('forfait_simulation.to')::timestamptz) ORDER BY id`;
      await feed(await copyStream(raw, `COPY (${select}) TO STDOUT`), pool, rated);
      const tally = await pool.run<TenantTally>('end', null);
      return {
        tenantId,
        name: tenant.name,
        tally,
        people: new Map(users.map((u) => [u.id, { identifiant: u.identifiant, fullName: u.fullName }])),
      };
    });
}

/** The COPY bytes to the worker in chunks, at most two waiting there. */
async function feed(source: Readable, pool: WorkerPool, rated: (n: number) => void): Promise<void> {
  const inFlight: Promise<number>[] = [];
  let parts: Buffer[] = [];
  let size = 0;
  const send = async () => {
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    parts = [];
    size = 0;
    inFlight.push(pool.run<number>('rows', bytes, [bytes.buffer]));
    if (inFlight.length >= 2) rated(await inFlight.shift()!);
  };
  for await (const chunk of source) {
    const b = chunk as Buffer;
    parts.push(b);
    size += b.length;
    if (size >= CHUNK_BYTES) await send();
  }
  // postgres.js may leave the socket paused after a COPY that filled the stream's buffer: the
  // connection would hang at its next statement (the COMMIT, then whoever takes it from the pool)
  source._read(0);
  if (size > 0) await send();
  for (const p of inFlight.splice(0)) rated(await p);
}
