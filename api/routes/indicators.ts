import { OpenAPIHono, z } from '@hono/zod-openapi';
import { GRANULARITIES, indicatorRequest } from '../../services/indicators/query.js';
import type { IndicatorWorkerData } from '../../services/indicators/worker.js';
import { availableParallelism } from 'node:os';
import { sameDatabase } from '../../db/connection.js';
import { WorkerPool, workerEntry } from '../../services/shared/workerPool.js';
import { ExportQueue } from '../../services/exports/queue.js';
import { BusyError, NotFoundError } from '../../services/shared/errors.js';
import { tenantOf } from '../auth.js';
import type { AppEnv, Deps } from '../context.js';
import type { DefineRoute } from '../route.js';
import { json } from '../route.js';

const LineFigure = z.object({ line: z.string().nullable(), calls: z.number().int(), seconds: z.number().int() }).openapi('LineFigure');

export const IndicatorsSchema = z
  .object({
    period: z.object({
      from: z.string().openapi({ example: '2026-10-01T00:00:00+02:00' }),
      to: z.string().openapi({ example: '2026-11-01T00:00:00+01:00' }),
      timezone: z.string().openapi({ example: 'Europe/Paris' }),
      granularity: z.enum(GRANULARITIES),
    }),
    currency: z.string().openapi({ example: 'EUR' }),
    locale: z.string().openapi({ example: 'fr' }),
    outgoing: z.object({
      calls: z.number().int(),
      answered: z.number().int(),
      talkSeconds: z.number().int(),
      cost: z.string().openapi({ example: '1234.5600' }),
      byDestination: z.array(
        z.object({
          destination: z.string().nullable(),
          class: z.string().nullable(),
          calls: z.number().int(),
          seconds: z.number().int(),
          cost: z.string(),
        }),
      ),
      topLines: z.array(LineFigure),
    }),
    incoming: z.object({ calls: z.number().int(), missed: z.number().int(), talkSeconds: z.number().int(), topLines: z.array(LineFigure) }),
    series: z.array(
      z.object({
        start: z.string().openapi({ example: '2026-10-25T02:00:00+01:00' }),
        outgoingCalls: z.number().int(),
        outgoingAnswered: z.number().int(),
        incomingCalls: z.number().int(),
        incomingMissed: z.number().int(),
        talkSeconds: z.number().int(),
        cost: z.string(),
      }),
    ),
  })
  .openapi('Indicators');

/**
 * Indicator requests computed at once by this server: half its cores (at least one), so reports never
 * take every core from the PBX's authorizations and their commits (issue #24); up to 16 more wait in
 * order, the next is refused with 429. The same bounded semaphore as the CSV exports'.
 */
export const indicatorLimits = { running: Math.max(1, Math.floor(availableParallelism() / 2)), waiting: 16, maxWaitMs: 30_000 };

/** The indicators' routes, and what ends their worker threads (the app's close). */
export function indicatorsApp(deps: Deps, defineRoute: DefineRoute): { app: OpenAPIHono<AppEnv>; close: () => Promise<void> } {
  const app = new OpenAPIHono<AppEnv>();
  const lane = new ExportQueue(indicatorLimits);
  // the requests the lane lets run are run by worker threads, each with a connection of its own (issue #24)
  const workerData: IndicatorWorkerData = { connection: sameDatabase(deps.sql, `${deps.sql.options.connection.application_name ?? 'forfait'}-indicators`) };
  const indicatorEntry = new URL('../../services/indicators/', import.meta.url).href;
  const workers = new WorkerPool(() => workerEntry(indicatorEntry, 'worker'), {
    size: indicatorLimits.running,
    maxQueue: indicatorLimits.running,
    workerData: { ...workerData },
  });
  const inLane = async <T>(f: () => Promise<T>): Promise<T> => {
    try {
      return await lane.run(f);
    } catch (err) {
      if (!(err instanceof BusyError)) throw err;
      const { running, waiting } = lane.stats;
      throw new BusyError(err.code, `${running} indicator requests running and ${waiting} waiting: try again later`, err.retryAfterSeconds);
    }
  };
  app.openapi(
    defineRoute({
      method: 'get',
      path: '/',
      tags: ['indicators'],
      summary: 'Activity indicators (SPEC §8): calls, talk time, cost, destinations, most active lines, and a series by hour, day or month',
      description:
        'Periods are in the tenant’s timezone: `from` inclusive, `to` exclusive, dates (midnight) or date-times; default the current month. ' +
        'Series buckets start at local hours, days or months (a fall-back night has two 02:00 hours, told apart by their offset). ' +
        '`talkSeconds` and `seconds` are answered durations; series `talkSeconds` counts both directions. `line` is the CDR’s line, or its caller number when it has none; ' +
        'the `line` filter matches that value. Money in the tenant’s currency, 4 decimals.',
      access: { scope: 'tenant', permission: 'indicators:read' },
      request: {
        query: z.object({
          from: z.string().max(40).optional().openapi({ example: '2026-10-01' }),
          to: z.string().max(40).optional().openapi({ example: '2026-11-01' }),
          granularity: z.enum(GRANULARITIES).default('day'),
          site: z.string().max(200).optional(),
          line: z.string().max(200).optional(),
          class: z.enum(['fixed', 'mobile', 'special', 'international', 'free']).optional(),
          top: z.coerce.number().int().min(1).max(100).default(10).openapi({ description: 'Lines in each topLines list' }),
        }),
      },
      responses: {
        200: json('Indicators', IndicatorsSchema),
        429: { description: 'TOO_MANY_REQUESTS: too many indicator requests running and waiting (Retry-After)' },
      },
    }),
    async (c) => {
      const tenantId = tenantOf(c.get('principal'));
      const tenant = await deps.db.selectFrom('tenants').select(['id', 'timezone', 'currency', 'locale']).where('id', '=', tenantId).executeTakeFirst();
      if (!tenant) throw new NotFoundError('tenant');
      // the answer's bytes as the service wrote them (its series built by PostgreSQL): no object of 10,000 points to serialize here
      const request = indicatorRequest(tenant, c.req.valid('query')); // a 400 before waiting for a turn
      const body = await inLane(() => workers.run<Uint8Array<ArrayBuffer>>('indicators', request));
      return c.body(body, 200, { 'content-type': 'application/json' }) as never;
    },
  );
  return { app, close: () => workers.close() };
}
