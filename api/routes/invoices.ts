import { OpenAPIHono, z } from '@hono/zod-openapi';
import { renderInvoicePdf } from '../../reports/invoicePdf.js';
import { detailsPageOffThread } from '../../reports/renderPool.js';
import { NotFoundError } from '../../services/shared/errors.js';
import type { ExportQueue } from '../../services/exports/queue.js';
import { exportWithSlot } from '../../services/exports/slot.js';
import { invoiceDetailsCsv } from '../../services/invoices/details.js';
import type { Issuer } from '../../services/invoices/issuer.js';
import { getInvoice, invoiceUserCalls, invoiceView, listInvoices } from '../../services/invoices/read.js';
import { runInvoices } from '../../services/invoices/run.js';
import { tenantOf } from '../auth.js';
import type { AppEnv, Deps } from '../context.js';
import { jsonAndPdfRoutes, ListQuery, listOf, type DefineRoute, json, jsonRequest } from '../route.js';
import { actorOf } from '../../services/audit/audit.js';

const Period = z.string().openapi({ example: '2026-10', description: 'A month, YYYY-MM, in each tenant’s timezone' });

export const InvoiceSchema = z
  .object({
    id: z.string(),
    number: z.string().openapi({ example: '2026-000001' }),
    tenantId: z.string(),
    reference: z.string().openapi({ description: 'The tenant’s reference at issue, or its id when it had none' }),
    period: z.string().openapi({ example: '2026-10' }),
    status: z.enum(['issued', 'not_billed']),
    currency: z.string().openapi({ example: 'EUR' }),
    lines: z.array(
      z.object({
        kind: z.enum(['licence', 'calls']),
        label: z.string(),
        quantity: z.string().openapi({ description: 'licences: users; calls: charged minutes', example: '12' }),
        unitPrice: z.string().openapi({ description: 'licences: the monthly fee; calls: the average price of a charged minute', example: '5.00' }),
        amount: z.string().openapi({ example: '60.00' }),
      }),
    ),
    totalExclVat: z.string().openapi({ example: '72.35' }),
    vat: z.string().openapi({ example: '14.47' }),
    total: z.string().openapi({ example: '86.82' }),
    issuedAt: z.string(),
  })
  .openapi('Invoice');

const RunAnswer = z
  .object({
    created: z.array(z.string()).openapi({ description: 'Ids of the invoices issued by this run' }),
    skipped: z.array(
      z.object({
        tenantId: z.string(),
        period: z.string(),
        reason: z.enum(['ALREADY_INVOICED', 'TRIAL', 'PERIOD_NOT_ENDED', 'NOTHING_TO_INVOICE']),
        invoiceId: z.string().optional().openapi({ description: 'ALREADY_INVOICED: the invoice issued before' }),
      }),
    ),
  })
  .openapi('InvoiceRunResult');

const csvOut = { 'text/csv': { schema: z.string() } };

/** At most this many users in the PDF's annex; the details CSV lists them all. */
const ANNEX_USERS = 1000;

export function invoicesApp(deps: Deps, defineRoute: DefineRoute, exports: ExportQueue, issuer: Issuer) {
  const app = new OpenAPIHono<AppEnv>();
  const read = { scope: 'tenant', permission: 'invoices:read' } as const;

  app.openapi(
    defineRoute({
      method: 'post',
      path: '/run',
      tags: ['invoices'],
      summary: 'Issue the invoices of a month: a reseller key for all its tenants, an invoices:run key for its own tenant',
      description:
        'One invoice per tenant and month (in the tenant’s timezone), numbered YYYY-NNNNNN in one unbroken sequence per year of issue. Running a month again creates nothing new (ALREADY_INVOICED). A month that has not ended in the tenant’s zone is PERIOD_NOT_ENDED; a month that ends at or before trialEndsAt is TRIAL; a month with no enabled user and no charged call is NOTHING_TO_INVOICE.',
      access: { scope: 'tenant', permission: 'invoices:run', reseller: true },
      request: { body: jsonRequest(z.object({ period: Period }).strict()) },
      responses: { 200: json('What was issued and what was not', RunAnswer) },
    }),
    async (c) => {
      const principal = c.get('principal');
      const { period } = c.req.valid('json');
      const scope = principal.kind === 'reseller' ? { resellerId: principal.resellerId } : { tenantId: principal.tenantId };
      return c.json(await runInvoices(deps.db, scope, period, { issuer, actor: actorOf(principal) }), 200);
    },
  );

  app.openapi(
    defineRoute({
      method: 'get',
      path: '/',
      tags: ['invoices'],
      summary: 'The tenant’s invoices, newest period first',
      access: read,
      request: { query: ListQuery.extend({ period: z.string().max(7).optional().openapi({ example: '2026-10' }) }) },
      responses: { 200: json('Invoices', listOf(InvoiceSchema)) },
    }),
    async (c) => c.json(await listInvoices(deps.db, tenantOf(c.get('principal')), c.req.valid('query')), 200),
  );

  // GET /{id} also serves /{id}.pdf (Hono reads "{id}.pdf" as one parameter "id.pdf"), as for users.
  jsonAndPdfRoutes(app, defineRoute, {
    tags: ['invoices'],
    access: read,
    json: { summary: 'One invoice (SPEC §9), amounts as decimal strings with 2 decimals', description: 'Invoice', schema: InvoiceSchema },
    pdf: { summary: 'The invoice as a PDF in the tenant’s locale, with an annex of the calls by user', description: 'PDF (A4)' },
    read: (c, id) => getInvoice(deps.db, tenantOf(c.get('principal')), id),
    view: invoiceView,
    render: async (invoice, c) => {
      const tenantId = tenantOf(c.get('principal'));
      const tenant = await deps.db.selectFrom('tenants').select(['name', 'timezone']).where('id', '=', tenantId).executeTakeFirst();
      if (!tenant) throw new NotFoundError('invoice');
      const userCalls = await invoiceUserCalls(deps.db, invoice, ANNEX_USERS);
      return { file: await renderInvoicePdf({ invoice, tenant, issuer, userCalls }), filename: `invoice-${invoice.number}.pdf` };
    },
  });

  app.openapi(
    defineRoute({
      method: 'get',
      path: '/{id}/details.csv',
      tags: ['invoices'],
      summary: 'Every licensed user and every CDR behind the invoice, then its lines and totals (an export: SPEC §7 limits)',
      description:
        'Rows `licence` (one per user counted) and `call` (one per CDR, with its cost at issue) carry `line_no`; their `amount`s summed per line and rounded half-up to cents give the `line` rows, which sum to `total_excl_vat`; then `vat` and `total`. 429 with Retry-After when 3 exports run and 10 wait; 408 after 30 s of waiting.',
      access: read,
      request: { params: z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' } }) }) },
      responses: {
        200: { description: 'CSV with a header', content: csvOut },
        408: { description: 'REQUEST_TIMEOUT: waited 30 s for an export slot' },
        429: { description: 'TOO_MANY_REQUESTS: the export queue is full (Retry-After)' },
      },
    }),
    async (c) => {
      const tenantId = tenantOf(c.get('principal'));
      const invoice = await getInvoice(deps.db, tenantId, c.req.valid('param').id);
      const tenant = await deps.db.selectFrom('tenants').select(['country', 'timezone', 'numberDisplay']).where('id', '=', tenantId).executeTakeFirstOrThrow();
      const body = await exportWithSlot(exports, async () => ({ stream: invoiceDetailsCsv(deps.db, invoice, tenant, detailsPageOffThread), close: async () => undefined }), c.req.raw.signal);
      return c.body(body, 200, {
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': `attachment; filename="invoice-${invoice.number}-details.csv"`,
      }) as never;
    },
  );

  return app;
}
