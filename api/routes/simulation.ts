import { OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { runSimulation, type TenantRun } from '../../services/simulation/simulate.js';
import { simulationCsv, simulationResult, type SimulationResult } from '../../services/simulation/report.js';
import { type Job, type SimulationJobs, settledWithin } from '../../services/simulation/jobs.js';
import { jobOwner, prepareSimulation, quoteCall } from '../../services/simulation/service.js';
import { NotFoundError } from '../../services/shared/errors.js';
import type { TariffIndexCache } from '../../services/tariffs/tariffs.js';
import { RateSchema } from './tariffs.js';
import type { AppEnv, Deps } from '../context.js';
import { IdParam, Uuid, type DefineRoute, json, jsonRequest } from '../route.js';

/** What a finished job keeps: the answer, and the per-user sums the CSV `by=user` reads. */
interface Finished {
  result: SimulationResult;
  runs: TenantRun[];
}

const SimulateBody = z
  .object({
    from: z.string().min(4).max(40).openapi({ example: '2026-11-01', description: 'First day (or instant) of the period, in each tenant’s timezone' }),
    to: z.string().min(4).max(40).openapi({ example: '2026-12-01', description: 'End of the period, excluded' }),
    tenantIds: z.array(Uuid).max(10_000).optional().openapi({ description: 'A reseller’s: these tenants (default: the tenants rated with the tariff now). A tenant: its own id only.' }),
    tariffCsv: z.string().optional().openapi({ description: 'A draft tariff CSV (SPEC §6) to simulate instead of the stored rates; checked like an upload, never saved' }),
  })
  .strict()
  .openapi('SimulateRequest', { example: { from: '2026-10-01', to: '2026-11-01' } });

const SimulateQuery = z.object({
  format: z.enum(['json', 'csv']).optional().openapi({ description: 'csv: one line per tenant (or per user with by=user)' }),
  by: z.enum(['tenant', 'user']).optional(),
  wait: z.coerce.number().int().min(0).max(60_000).optional().openapi({ description: 'Milliseconds to wait for the result before answering 202 with the job (default 20000)' }),
});

const Sums = {
  calls: z.number().int(),
  currentBillableMinutes: z.string(),
  simulatedBillableMinutes: z.string(),
  currentCost: z.string(),
  simulatedCost: z.string(),
  difference: z.string().openapi({ description: 'simulated − current' }),
  differencePercent: z.string().nullable(),
};
const SimulationSchema = z
  .object({
    tariffId: z.string(),
    draft: z.boolean(),
    from: z.string(),
    to: z.string(),
    tenants: z.array(
      z.object({
        tenantId: z.string(),
        name: z.string(),
        ...Sums,
        changed: z.number().int(),
        skipped: z.number().int(),
        topUsers: z.array(z.object({ userId: z.string(), identifiant: z.string(), fullName: z.string(), ...Sums })),
        destinations: z.object({
          gains: z.array(z.object({ destination: z.string(), ...Sums })),
          losses: z.array(z.object({ destination: z.string(), ...Sums })),
        }),
      }),
    ),
    total: z.object({ ...Sums, changed: z.number().int(), skipped: z.number().int() }),
  })
  .openapi('Simulation');
const JobSchema = z
  .object({
    jobId: z.string(),
    status: z.enum(['queued', 'running', 'done', 'failed']),
    progress: z.object({ tenants: z.number().int(), tenantsDone: z.number().int(), cdrs: z.number().int() }),
    result: SimulationSchema.optional(),
    error: z.string().optional(),
  })
  .openapi('SimulationJob');

const QuoteBody = z
  .object({
    callee: z.string().min(1).max(64).openapi({ example: '+33612345678' }),
    durationSeconds: z.number().int().min(0).max(864_000),
    at: z.string().max(40).optional().openapi({ description: 'When the call starts (default now): which rates are valid' }),
    tenantId: Uuid.optional().openapi({ description: 'A reseller’s: read the callee as this tenant dials it (country, free numbers)' }),
    forfaitSeconds: z.number().int().min(0).max(100_000_000).optional().openapi({ description: 'Forfait seconds left to the caller (default 0)' }),
  })
  .strict()
  .openapi('QuoteRequest', { example: { callee: '0612345678', durationSeconds: 125, at: '2026-11-03T10:15:00+01:00' } });
const QuoteSchema = z
  .object({
    tariffId: z.string(),
    callee: z.string(),
    at: z.string(),
    rate: RateSchema.nullable(),
    freeNumber: z.boolean(),
    billableSeconds: z.number().int(),
    forfaitSeconds: z.number().int(),
    chargedSeconds: z.number().int(),
    cost: z.string(),
  })
  .openapi('Quote');

const access = { scope: 'tenant', permission: 'tariffs:manage', reseller: true } as const;
const csvOut = { 'text/csv': { schema: z.string() } };
const DEFAULT_WAIT_MS = 20_000;

function jobView(job: Job<Finished>) {
  return {
    jobId: job.id,
    status: job.status,
    progress: job.progress,
    ...(job.result ? { result: job.result.result } : {}),
    ...(job.error ? { error: job.error.message } : {}),
  };
}

async function answer(c: Context<AppEnv>, job: Job<Finished>, query: z.infer<typeof SimulateQuery>) {
  if (job.status === 'failed') throw job.error;
  if (job.status !== 'done') return c.json(jobView(job), 202, { location: `/v1/simulations/${job.id}` });
  if (query.format === 'csv') {
    const by = query.by ?? 'tenant';
    return c.body(await simulationCsv(job.result!.runs, by), 200, {
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': `attachment; filename="simulation-${job.result!.result.tariffId}-${by}.csv"`,
    });
  }
  return c.json(jobView(job), 200);
}

/** POST /v1/tariffs/{id}/simulate and /quote (mounted beside tariffsApp). */
export function tariffSimulationApp(deps: Deps, defineRoute: DefineRoute, tariffs: TariffIndexCache, jobs: SimulationJobs<Finished>) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(
    defineRoute({
      method: 'post',
      path: '/{id}/simulate',
      tags: ['tariffs'],
      summary: 'What if? Rate a past period again under this tariff (or a draft CSV) without writing anything',
      description:
        'Every outgoing CDR of the period, for each tenant, rated by the rerate’s own rules (SPEC §4, each CDR in its own month’s forfait as actually used): calls, billable minutes, current and simulated cost, the difference in amount and percent, the ten users whose cost changes most, the destinations that gain or lose most. Answers 200 with the result when it is ready within `wait`, else 202 with a job to poll at GET /v1/simulations/{jobId}.',
      access,
      records: true,
      bodyLimit: deps.config.importBodyLimit,
      request: { params: IdParam, query: SimulateQuery, body: jsonRequest(SimulateBody) },
      responses: {
        200: { description: 'The simulation (JSON job with its result, or CSV)', content: { 'application/json': { schema: JobSchema }, ...csvOut } },
        202: json('Still running: poll the job', JobSchema),
      },
    }),
    async (c) => {
      const p = c.get('principal');
      const tariffId = c.req.valid('param').id;
      const body = c.req.valid('json');
      const query = c.req.valid('query');
      const request = await prepareSimulation(deps.db, p, tariffId, body);
      const now = deps.clock?.() ?? new Date();
      const job = jobs.start(jobOwner(p), async (progress) => {
        const runs = await runSimulation({ db: deps.db, sql: deps.sql, tariffs }, request, { now, onProgress: progress });
        return { runs, result: simulationResult({ tariffId, draft: request.draft, from: body.from, to: body.to }, runs) };
      });
      await settledWithin(job, query.wait ?? DEFAULT_WAIT_MS);
      return answer(c, job, query) as never;
    },
  );
  app.openapi(
    defineRoute({
      method: 'post',
      path: '/{id}/quote',
      tags: ['tariffs'],
      summary: 'One call’s price under this tariff: the rate found, billable seconds and cost (SPEC §4)',
      description: 'As a user with billing on pays it, with `forfaitSeconds` of forfait left (default 0). A callee no rate matches is a 400 naming it. Nothing is written.',
      access,
      request: { params: IdParam, body: jsonRequest(QuoteBody) },
      responses: { 200: json('The quote', QuoteSchema) },
    }),
    async (c) => {
      const now = deps.clock?.() ?? new Date();
      const q = await quoteCall({ db: deps.db, sql: deps.sql, tariffs }, c.get('principal'), c.req.valid('param').id, c.req.valid('json'), now);
      return c.json(q, 200);
    },
  );
  return app;
}

/** GET /v1/simulations/{jobId}: a simulation's progress, then its result (JSON or CSV). */
export function simulationsApp(defineRoute: DefineRoute, jobs: SimulationJobs<Finished>) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(
    defineRoute({
      method: 'get',
      path: '/{id}',
      tags: ['tariffs'],
      summary: 'A simulation job: its progress while it runs (202), its result when done (200); `format=csv` like the POST',
      description: 'Only who started it sees a job; kept an hour after it ends, on the server that ran it.',
      access,
      request: { params: IdParam, query: SimulateQuery.omit({ wait: true }) },
      responses: {
        200: { description: 'Done', content: { 'application/json': { schema: JobSchema }, ...csvOut } },
        202: json('Still running', JobSchema),
      },
    }),
    async (c) => {
      const job = jobs.get(c.req.valid('param').id, jobOwner(c.get('principal')));
      if (job === undefined) throw new NotFoundError('simulation');
      return answer(c, job, c.req.valid('query')) as never;
    },
  );
  return app;
}

export type { Finished as FinishedSimulation };
