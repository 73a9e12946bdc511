import { OpenAPIHono, z } from '@hono/zod-openapi';
import { actorOf } from '../../services/audit/audit.js';
import { csvEncodings } from '../../services/shared/csvText.js';
import type { Context } from 'hono';
import type { TariffIndexCache } from '../../services/tariffs/tariffs.js';
import { loadTenantContext, type CdrDeps } from '../../services/cdrs/context.js';
import { CDR_FORMATS } from '../../services/cdrs/formats.js';
import { importCdrCsv } from '../../services/cdrs/importCsv.js';
import { ingestCdrs, Ingestor } from '../../services/cdrs/ingest.js';
import { reprocessRejects } from '../../services/cdrs/rejects.js';
import type { CdrInput, IncomingCdr } from '../../services/cdrs/types.js';
import { listCdrs, loadTenantDisplay } from '../../services/cdrs/view.js';
import type { ExportQueue } from '../../services/exports/queue.js';
import { cdrExportQuery, openCdrExport, type CdrExportFilters, type ExportTenant } from '../../services/exports/cdrExport.js';
import { exportWithSlot } from '../../services/exports/slot.js';
import { tenantOf } from '../auth.js';
import type { AppEnv, Deps } from '../context.js';
import { ListQuery, listOf, type DefineRoute, json } from '../route.js';

export const MAX_JSON_CDRS = 100_000;

const Direction = z.enum(['out', 'in']);
const Disposition = z.enum(['answered', 'no_answer', 'busy', 'failed']);

// Only callId is checked here (400 naming the index); every other field is checked
// CDR by CDR, and a bad one is a MALFORMED reject that names its field.
const CdrIn = z
  .looseObject({
    callId: z.string().trim().min(1).max(200).openapi({ example: 'a1b2c3d4-0001' }),
    identifiant: z.string().optional().openapi({ example: '1234567' }),
    caller: z.string().optional(),
    callee: z.string().optional().openapi({ example: '0612345678' }),
    direction: Direction.optional(),
    startedAt: z.string().optional().openapi({ example: '2026-11-03T10:15:00+01:00' }),
    answeredAt: z.string().nullable().optional(),
    durationSeconds: z.unknown().optional().openapi({ type: 'integer', example: 85 }),
    disposition: Disposition.optional(),
    site: z.string().nullable().optional(),
    line: z.string().nullable().optional(),
  })
  .openapi('CdrIn');

/** The documented CDR: a call of user 1234567 to a French mobile. */
const CDR_EXAMPLE = {
  callId: 'a1b2c3d4-0001',
  identifiant: '1234567',
  caller: '+33123456789',
  callee: '0612345678',
  direction: 'out',
  startedAt: '2026-11-03T10:15:00+01:00',
  answeredAt: '2026-11-03T10:15:04+01:00',
  durationSeconds: 85,
  disposition: 'answered',
  site: 'Paris',
  line: 'L1',
};

const Rejected = z
  .object({
    index: z.number().int().optional(),
    line: z.number().int().optional(),
    callId: z.string().nullable(),
    reason: z.enum(['UNKNOWN_USER', 'NO_RATE', 'MALFORMED']),
    field: z.string().optional(),
    message: z.string(),
  })
  .openapi('RejectedCdr');

const IngestAnswer = z
  .object({
    accepted: z.number().int(),
    duplicates: z.number().int(),
    rejected: z.array(Rejected).openapi({ description: 'Each rejected record (at most 10,000 listed; all are stored)' }),
    rejectedCount: z.number().int(),
    unknownRange: z
      .array(
        z.object({
          index: z.number().int().optional(),
          line: z.number().int().optional(),
          callId: z.string(),
          callee: z.string(),
          message: z.string(),
        }),
      )
      .openapi({ description: 'Records rated whose callee lies outside the number ranges the metadata knows (numberCheck unknown_range on the CDR); at most 10,000 listed' }),
    unknownRangeCount: z.number().int(),
    encoding: z.enum(csvEncodings).optional().openapi({ description: 'CSV imports: how the file was read' }),
    notes: z.array(z.string()).optional().openapi({ description: 'CSV imports: what reading the file did (a conversion from Windows-1252, a BOM removed)' }),
  })
  .openapi('CdrIngestResult');

export const CdrSchema = z
  .object({
    id: z.string(),
    callId: z.string(),
    userId: z.string().nullable(),
    identifiant: z.string().nullable(),
    caller: z.string().nullable(),
    callee: z.string(),
    direction: Direction,
    startedAt: z.string(),
    answeredAt: z.string().nullable(),
    durationSeconds: z.number().int(),
    disposition: Disposition,
    site: z.string().nullable(),
    line: z.string().nullable(),
    rateId: z.string().nullable(),
    destination: z.string().nullable(),
    class: z.string().nullable(),
    billableSeconds: z.number().int(),
    forfaitSeconds: z.number().int(),
    chargedSeconds: z.number().int(),
    cost: z.string().openapi({ example: '0.6417' }),
    originalCost: z.string().nullable(),
    reservationId: z.string().nullable(),
    ratedAt: z.string(),
    reratedAt: z.string().nullable(),
    numberCheck: z.enum(['unknown_range']).nullable().openapi({ description: 'unknown_range: the callee has a possible length but lies outside the number ranges known to the metadata; rated all the same' }),
  })
  .openapi('Cdr');

/** SPEC §7 filters of the CDR list and exports. */
export const CdrFilterQuery = z.object({
  from: z.string().max(40).optional().openapi({ example: '2026-11-01' }),
  to: z.string().max(40).optional().openapi({ example: '2026-12-01' }),
  identifiant: z.string().max(200).optional(),
  site: z.string().max(200).optional(),
  line: z.string().max(200).optional(),
  class: z.enum(['fixed', 'mobile', 'special', 'international', 'free']).optional(),
  direction: Direction.optional(),
  excel: z.enum(['0', '1']).optional().openapi({ description: 'CSV exports: 1 for French Excel (a UTF-8 BOM, `;` between cells, a decimal comma); lists ignore it' }),
  /** One user's calls (served by cdrs_user_idx, migration 0050). */
  userId: z.uuid().optional().openapi({ description: "one user's calls (the user's id)" }),
});

export const csvExportResponses = {
  200: { description: 'CSV with a header (SPEC §6 CDR export), streamed', content: { 'text/csv': { schema: z.string() } } },
  408: { description: 'REQUEST_TIMEOUT: waited 30 s for an export slot' },
  429: { description: 'TOO_MANY_REQUESTS: 3 exports running and 10 waiting (Retry-After)' },
};

/** What an export needs of its tenant. */
export async function exportTenant(deps: Deps, tenantId: string): Promise<ExportTenant> {
  return loadTenantDisplay(deps.db, tenantId);
}

/** The CSV answer of a CDR export, holding an export slot while it streams. */
export async function cdrExportAnswer(c: Context<AppEnv>, deps: Deps, exports: ExportQueue, tenant: ExportTenant, filters: CdrExportFilters, filename: string) {
  cdrExportQuery(tenant, filters); // a bad filter is a 400 before queueing
  const body = await exportWithSlot(exports, () => openCdrExport(deps.sql, tenant, filters), c.req.raw.signal);
  return c.body(body, 200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="${filename}"` });
}

const nativeExample = `call_id,identifiant,caller,callee,direction,started_at,answered_at,duration_seconds,disposition,site,line
c-0001,1234567,+33123456789,0612345678,out,2026-11-03T10:15:00+01:00,2026-11-03T10:15:04+01:00,85,answered,Paris,L1`;

/** NDJSON lines as received CDRs; a line that is not a JSON object is kept to be rejected as MALFORMED. */
async function* ndjsonRecords(body: ReadableStream<Uint8Array> | null): AsyncGenerator<IncomingCdr> {
  if (body === null) return;
  const decoder = new TextDecoder();
  let rest = '';
  let index = 0;
  const record = (line: string): IncomingCdr | undefined => {
    const text = line.trim();
    const at = index++;
    if (text === '') return undefined;
    try {
      const v: unknown = JSON.parse(text);
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) return { position: at, raw: text, input: v as CdrInput };
    } catch {
      // below
    }
    return { position: at, raw: text.slice(0, 10_000), input: {}, error: { field: 'row', message: 'not a JSON object' } };
  };
  for await (const chunk of body) {
    rest += decoder.decode(chunk, { stream: true });
    for (let nl = rest.indexOf('\n'); nl !== -1; nl = rest.indexOf('\n')) {
      const r = record(rest.slice(0, nl));
      rest = rest.slice(nl + 1);
      if (r) yield r;
    }
  }
  rest += decoder.decode();
  const last = record(rest);
  if (last) yield last;
}

export function cdrsApp(deps: Deps, defineRoute: DefineRoute, tariffs: TariffIndexCache, exports: ExportQueue) {
  const app = new OpenAPIHono<AppEnv>();
  const cdrDeps: CdrDeps = { db: deps.db, sql: deps.sql, tariffs };

  app.openapi(
    defineRoute({
      method: 'get',
      path: '/export.csv',
      tags: ['cdrs'],
      summary: 'The tenant’s CDRs as CSV, oldest first, with the filters of GET /v1/cdrs; streamed (an export: SPEC §7 limits)',
      description:
        'Columns: reference, call_id, identifiant, caller, callee, direction, started_at, answered_at, duration_seconds, disposition, site, line, destination, class, billable_seconds, forfait_seconds, charged_seconds, cost. Numbers in the tenant’s display, times in its zone with their offset (`2026-10-01 14:03:07+02`), cost with 4 decimals, text cells starting with = + - @ prefixed with \'. 429 with Retry-After when 3 exports run and 10 wait; 408 after 30 s of waiting.',
      access: { scope: 'tenant', permission: 'cdrs:read' },
      request: { query: CdrFilterQuery },
      responses: csvExportResponses,
    }),
    async (c) => {
      const tenant = await exportTenant(deps, tenantOf(c.get('principal')));
      return cdrExportAnswer(c, deps, exports, tenant, c.req.valid('query'), 'cdrs.csv') as never;
    },
  );

  app.openapi(
    defineRoute({
      method: 'post',
      path: '/',
      tags: ['cdrs'],
      summary: 'Rate CDRs: a JSON array (one transaction, up to 100,000) or NDJSON (streamed, in batches)',
      description:
        'Each CDR is rated exactly once by callId: a known callId counts as a duplicate. A JSON array item without a callId is a 400 naming its index; any other bad field rejects that CDR only (MALFORMED), as do an unknown identifiant (UNKNOWN_USER) and a callee no rate matches (NO_RATE). Rejected CDRs are stored with their raw record for POST /v1/cdrs/rejects/reprocess.',
      access: { scope: 'tenant', permission: 'cdrs:write' },
      bodyLimit: deps.config.cdrBodyLimit,
      records: true,
      request: {
        body: {
          required: false,
          content: {
            'application/json': { schema: z.array(CdrIn).max(MAX_JSON_CDRS).openapi({ example: [CDR_EXAMPLE] }) },
            'application/x-ndjson': {
              schema: z.string().openapi({ description: 'one CDR object per line', example: `${JSON.stringify({ ...CDR_EXAMPLE, callId: 'a1b2c3d4-0002' })}\n` }),
            },
          },
        },
      },
      responses: { 200: json('What was rated, duplicated, rejected', IngestAnswer) },
    }),
    async (c) => {
      const tenantId = tenantOf(c.get('principal'));
      const type = c.req.header('content-type') ?? '';
      if (/^application\/(x-)?ndjson/i.test(type)) {
        const ctx = await loadTenantContext(cdrDeps, tenantId);
        const ingestor = new Ingestor(cdrDeps, ctx, { source: 'api:ndjson', positionKind: 'index', actor: actorOf(c.get('principal')) });
        try {
          for await (const r of ndjsonRecords(c.req.raw.body)) await ingestor.push(r);
        } catch (err) {
          await ingestor.abandon();
          throw err;
        }
        return c.json(await ingestor.finish(), 200);
      }
      const body = c.req.valid('json') as CdrInput[];
      const { rated: _rated, ...answer } = await ingestCdrs(cdrDeps, tenantId, body ?? [], 'api', actorOf(c.get('principal')));
      return c.json(answer, 200);
    },
  );

  app.openapi(
    defineRoute({
      method: 'post',
      path: '/import',
      tags: ['cdrs'],
      summary: 'Rate a CDR CSV file: native (with header), Asterisk Master.csv or FreeSWITCH mod_cdr_csv (SPEC §6)',
      description:
        'The body is streamed and rated in batches of one transaction each; sending the same file again rates nothing twice. Times without an offset are in the tenant’s timezone. Rejected lines are listed with their line number.',
      access: { scope: 'tenant', permission: 'cdrs:write' },
      bodyLimit: deps.config.cdrImportBodyLimit,
      request: {
        query: z.object({ format: z.enum(CDR_FORMATS).default('native') }),
        body: { required: true, content: { 'text/csv': { schema: z.string().openapi({ example: nativeExample }) } } },
      },
      responses: { 200: json('What was rated, duplicated, rejected', IngestAnswer) },
    }),
    async (c) => {
      const tenantId = tenantOf(c.get('principal'));
      const { format } = c.req.valid('query');
      const body = c.req.raw.body ?? (async function* () {})();
      return c.json(await importCdrCsv(cdrDeps, tenantId, body, { format, actor: actorOf(c.get('principal')) }), 200);
    },
  );

  app.openapi(
    defineRoute({
      method: 'post',
      path: '/rejects/reprocess',
      tags: ['cdrs'],
      summary: 'Rate again the rejected CDRs that now can be (UNKNOWN_USER, NO_RATE after the user or rate was added)',
      access: { scope: 'tenant', permission: 'cdrs:write' },
      responses: {
        200: {
          description: 'Counts',
          content: {
            'application/json': {
              schema: z.object({ examined: z.number().int(), accepted: z.number().int(), duplicates: z.number().int(), stillRejected: z.number().int() }),
            },
          },
        },
      },
    }),
    async (c) => c.json(await reprocessRejects(cdrDeps, tenantOf(c.get('principal')), actorOf(c.get('principal'))), 200),
  );

  app.openapi(
    defineRoute({
      method: 'get',
      path: '/',
      tags: ['cdrs'],
      summary: 'Rated CDRs, newest first; from/to are dates or date-times in the tenant’s timezone (from inclusive, to exclusive)',
      access: { scope: 'tenant', permission: 'cdrs:read' },
      request: {
        query: ListQuery.extend(CdrFilterQuery.shape),
      },
      responses: { 200: json('CDRs', listOf(CdrSchema)) },
    }),
    async (c) => {
      return c.json(await listCdrs(deps.db, tenantOf(c.get('principal')), c.req.valid('query')), 200);
    },
  );
  return app;
}
