import { OpenAPIHono, z } from '@hono/zod-openapi';
import { detailsPageOffThread, renderFacturXml, renderInvoicePdf } from '../../reports/renderPool.js';
import { NotFoundError } from '../../services/shared/errors.js';
import type { ExportQueue } from '../../services/exports/queue.js';
import { exportWithSlot } from '../../services/exports/slot.js';
import { invoiceDetailsCsv } from '../../services/invoices/details.js';
import { assertCallsFrozen } from '../../services/invoices/frozenCalls.js';
import type { Issuer } from '../../services/invoices/issuer.js';
import { getInvoice, invoiceUserCalls, invoiceView, listInvoices } from '../../services/invoices/read.js';
import { runInvoices } from '../../services/invoices/run.js';
import { accountingExport } from '../../services/invoices/accountingExport.js';
import { draftInvoice, loadInvoiceTenants } from '../../services/invoices/issue.js';
import { parsePeriod } from '../../services/invoices/period.js';
import { ConflictError } from '../../services/shared/errors.js';
import { tenantOf } from '../auth.js';
import type { AppEnv, Deps } from '../context.js';
import { jsonAndPdfRoutes, ListQuery, listOf, type DefineRoute, json, jsonRequest } from '../route.js';
import { actorOf } from '../../services/audit/audit.js';

const Period = z.string().openapi({ example: '2026-10', description: 'A month, YYYY-MM, in each tenant’s timezone' });

export const InvoiceSchema = z
  .object({
    id: z.string(),
    kind: z.enum(['invoice', 'credit_note']).openapi({ description: 'An invoice, or a credit note (avoir, numbered AV-YYYY-NNNNNN) correcting the invoice `corrects` names' }),
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
        quantity: z.string().openapi({ description: 'licences: users; calls: 1 (one lot: the label gives the count of calls and the time charged). Before issue 17, calls: charged minutes', example: '12' }),
        unitPrice: z.string().openapi({ description: 'licences: the monthly fee; calls: the amount of the lot, so quantity × unit price = amount', example: '5.00' }),
        amount: z.string().openapi({ example: '60.00', description: 'Negative on a credit note' }),
        period: z.string().optional().openapi({ example: '2026-10', description: 'A line correcting an earlier, already invoiced month: that month' }),
      }),
    ),
    totalExclVat: z.string().openapi({ example: '72.35' }),
    vat: z.string().openapi({ example: '14.47' }),
    total: z.string().openapi({ example: '86.82' }),
    issuedAt: z.string(),
    corrects: z.object({ id: z.string(), number: z.string() }).nullable().openapi({ description: 'A credit note: the invoice it corrects' }),
  })
  .openapi('Invoice');

const RunAnswer = z
  .object({
    created: z.array(z.string()).openapi({ description: 'Ids of the invoices issued by this run' }),
    creditNotes: z.array(z.string()).openapi({ description: 'Ids of the credit notes issued by this run: months invoiced before whose calls now cost less' }),
    skipped: z.array(
      z.object({
        tenantId: z.string(),
        period: z.string(),
        reason: z.enum(['ALREADY_INVOICED', 'TRIAL', 'PERIOD_NOT_ENDED', 'NOTHING_TO_INVOICE', 'ISSUER_NOT_CONFIGURED']),
        invoiceId: z.string().optional().openapi({ description: 'ALREADY_INVOICED: the invoice issued before' }),
      }),
    ),
    drafts: z.array(InvoiceSchema).optional().openapi({ description: 'A draft run: the documents it would issue, numbered SPECIMEN, never stored' }),
  })
  .openapi('InvoiceRunResult');

const csvOut = { 'text/csv': { schema: z.string() } };

/** At most this many users in the PDF's annex; the details CSV lists them all. */
const ANNEX_USERS = 1000;

export function invoicesApp(deps: Deps, defineRoute: DefineRoute, exports: ExportQueue, issuer: Issuer) {
  const app = new OpenAPIHono<AppEnv>();
  const read = { scope: 'tenant', permission: 'invoices:read' } as const;
  /** What the PDF and the XML say of the client. */
  const billedTenant = async (tenantId: string) => {
    const tenant = await deps.db.selectFrom('tenants').select(['name', 'timezone', 'country', 'billingAddress']).where('id', '=', tenantId).executeTakeFirst();
    if (!tenant) throw new NotFoundError('invoice');
    return tenant;
  };

  app.openapi(
    defineRoute({
      method: 'post',
      path: '/run',
      tags: ['invoices'],
      summary: 'Issue the invoices of a month: a reseller key for all its tenants, an invoices:run key for its own tenant',
      description:
        'One invoice per tenant and month (in the tenant’s timezone), numbered YYYY-NNNNNN in one unbroken sequence per year of issue. Running a month again creates nothing new (ALREADY_INVOICED). A month that has not ended in the tenant’s zone is PERIOD_NOT_ENDED; a month that ends at or before trialEndsAt is TRIAL; a month with no enabled user and no charged call is NOTHING_TO_INVOICE.',
      access: { scope: 'tenant', permission: 'invoices:run', reseller: true },
      request: {
        body: jsonRequest(
          z
            .object({
              period: Period,
              draft: z.boolean().optional().openapi({ description: 'Build the documents without issuing them: nothing stored, no number used (SPECIMEN)' }),
            })
            .strict()
            .openapi({ example: { period: '2026-10' } }),
        ),
      },
      responses: {
        200: json('What was issued and what was not', RunAnswer),
        409: { description: 'ISSUER_NOT_CONFIGURED: the FORFAIT_ISSUER_* settings are still the placeholders (internal tenants and drafts go ahead)' },
      },
    }),
    async (c) => {
      const principal = c.get('principal');
      const { period, draft } = c.req.valid('json');
      const scope = principal.kind === 'reseller' ? { resellerId: principal.resellerId } : { tenantId: principal.tenantId };
      const { drafts, ...result } = await runInvoices(deps.db, scope, period, { issuer, draft: draft === true, actor: actorOf(principal) });
      return c.json({ ...result, ...(drafts ? { drafts: drafts.map((d) => invoiceView(d.record)) } : {}) }, 200);
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

  // static paths first: /{id} would read them as ids
  app.openapi(
    defineRoute({
      method: 'get',
      path: '/export.csv',
      tags: ['invoices'],
      summary: 'Accounting export: one row per invoice or credit note issued in [from, to) (a reseller key: all its tenants)',
      description:
        'Columns number, kind (invoice | credit_note), issued_on, period, tenant_id, tenant_name, reference, corrects (the invoice a credit note corrects), status, currency, total_excl_vat, vat_rate, vat, total. Days in the issuer’s timezone, `from` inclusive, `to` exclusive; amounts with 2 decimals and a point, negative on credit notes.',
      access: { scope: 'tenant', permission: 'invoices:read', reseller: true },
      request: {
        query: z.object({
          from: z.string().max(10).optional().openapi({ example: '2026-11-01', description: 'Default: the first document' }),
          to: z.string().max(10).optional().openapi({ example: '2026-12-01', description: 'Default: no end' }),
          tenantId: z.string().uuid().optional().openapi({ description: 'A reseller key: one of its tenants only' }),
        }),
      },
      responses: { 200: { description: 'CSV with a header', content: csvOut } },
    }),
    async (c) => {
      const principal = c.get('principal');
      const { from, to, tenantId } = c.req.valid('query');
      const scope = principal.kind === 'reseller' ? { resellerId: principal.resellerId, ...(tenantId ? { tenantId } : {}) } : { tenantId: tenantOf(principal) };
      const csv = await accountingExport(deps.db, scope, { ...(from ? { from } : {}), ...(to ? { to } : {}) }, issuer.timezone);
      return c.body(csv, 200, {
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': `attachment; filename="invoices-${from ?? 'start'}-${to ?? 'now'}.csv"`,
      }) as never;
    },
  );

  app.openapi(
    defineRoute({
      method: 'get',
      path: '/preview.pdf',
      tags: ['invoices'],
      summary: 'The invoice of a month as it would be issued now, stamped SPECIMEN: nothing stored, no number used',
      description: 'A month not ended yet is previewed as it stands. 409 CONFLICT when there is nothing to preview (the month is invoiced already, or has nothing to invoice).',
      access: read,
      request: { query: z.object({ period: Period }) },
      responses: { 200: { description: 'PDF (A4), stamped SPECIMEN', content: { 'application/pdf': { schema: z.string().openapi({ format: 'binary' }) } } } },
    }),
    async (c) => {
      const tenantId = tenantOf(c.get('principal'));
      const period = parsePeriod(c.req.valid('query').period);
      const [invoicing] = await loadInvoiceTenants(deps.db, { tenantId });
      const tenant = await deps.db.selectFrom('tenants').select(['name', 'timezone', 'billingAddress']).where('id', '=', tenantId).executeTakeFirst();
      if (!invoicing || !tenant) throw new NotFoundError('tenant');
      const { outcome, documents } = await draftInvoice(deps.db, invoicing, period, { issuer, now: new Date() });
      const draft = documents.find((d) => d.record.kind === 'invoice');
      if (!draft) throw new ConflictError('CONFLICT', `nothing to preview for ${period}: ${outcome.created ? 'no invoice' : outcome.reason}`, [{ field: 'period', value: period, message: outcome.created ? 'no invoice' : outcome.reason }]);
      const file = await renderInvoicePdf({ invoice: draft.record, tenant, issuer, userCalls: draft.userCalls });
      return c.body(new Uint8Array(file), 200, { 'content-type': 'application/pdf', 'content-disposition': `inline; filename="invoice-${period}-specimen.pdf"` }) as never;
    },
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
      const tenant = await billedTenant(tenantOf(c.get('principal')));
      const userCalls = await invoiceUserCalls(deps.db, invoice, ANNEX_USERS);
      // a Factur-X document: the CII XML embedded and declared in the PDF's metadata (issue 17), made off-thread too
      return { file: await renderInvoicePdf({ invoice, tenant, issuer, userCalls, facturX: tenant }), filename: `${invoice.kind === 'credit_note' ? 'credit-note' : 'invoice'}-${invoice.number}.pdf` };
    },
    xml: {
      summary: 'The invoice or credit note as Factur-X CII XML (EN 16931 profile), the XML its PDF embeds',
      description: 'CII XML',
      render: async (invoice, c) => ({ text: await renderFacturXml(invoice, issuer, await billedTenant(tenantOf(c.get('principal')))), filename: 'factur-x.xml' }),
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
      request: {
        params: z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' } }) }),
        query: z.object({ excel: z.enum(['0', '1']).optional().openapi({ description: '1 for French Excel: a UTF-8 BOM, `;` between cells, a decimal comma' }) }),
      },
      responses: {
        200: { description: 'CSV with a header', content: csvOut },
        408: { description: 'REQUEST_TIMEOUT: waited 30 s for an export slot' },
        409: { description: 'CONFLICT: calls of the invoice were archived before invoices froze their details (migration 0150); the details name the archive files to restore' },
        429: { description: 'TOO_MANY_REQUESTS: the export queue is full (Retry-After)' },
      },
    }),
    async (c) => {
      const tenantId = tenantOf(c.get('principal'));
      const invoice = await getInvoice(deps.db, tenantId, c.req.valid('param').id);
      const tenant = await deps.db.selectFrom('tenants').select(['country', 'timezone', 'numberDisplay', 'trialEndsAt']).where('id', '=', tenantId).executeTakeFirstOrThrow();
      await assertCallsFrozen(deps.db, invoice, tenant);
      const body = await exportWithSlot(exports, async () => ({ stream: invoiceDetailsCsv(deps.db, invoice, tenant, detailsPageOffThread, c.req.valid('query').excel === '1'), close: async () => undefined }), c.req.raw.signal);
      return c.body(body, 200, {
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': `attachment; filename="invoice-${invoice.number}-details.csv"`,
      }) as never;
    },
  );

  return app;
}
