/** Reading issued invoices: the SPEC §9 JSON shape, one by id, the tenant's list. */
import { validate as isUuid } from 'uuid';
import { sql } from 'kysely';
import type { Db } from '../../db/connection.js';
import { NotFoundError, ValidationError } from '../shared/errors.js';
import { parsePeriod } from './period.js';

export interface InvoiceLineView {
  kind: 'licence' | 'calls';
  label: string;
  quantity: string;
  unitPrice: string;
  amount: string;
}

export interface InvoiceView {
  id: string;
  number: string;
  tenantId: string;
  reference: string;
  period: string;
  status: 'issued' | 'not_billed';
  currency: string;
  lines: InvoiceLineView[];
  totalExclVat: string;
  vat: string;
  total: string;
  issuedAt: string;
}

/** Extra fields the PDF and details need besides the §9 JSON. */
export interface InvoiceRecord extends InvoiceView {
  locale: 'fr' | 'en';
  vatRate: string;
  /** Line numbers of `lines`, in the same order (they link the details' items to their line). */
  lineNos: number[];
}


/** A quantity without trailing zeros: "5.0000" → "5", "12.5000" → "12.5". */
export function trimDecimal(s: string): string {
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

/** A unit price with 2 to 4 decimals: "5.0000" → "5.00", "0.1234" → "0.1234". */
export function price(s: string): string {
  const [int = '0', frac = ''] = s.split('.');
  const f = frac.replace(/0+$/, '');
  return `${int}.${f.length < 2 ? f.padEnd(2, '0') : f}`;
}

/** The invoice of the tenant, or NotFoundError (also for another tenant's id or a malformed id). */
export async function getInvoice(db: Db, tenantId: string, id: string): Promise<InvoiceRecord> {
  if (!isUuid(id)) throw new NotFoundError('invoice');
  const inv = await db.selectFrom('invoices').selectAll().where('tenantId', '=', tenantId).where('id', '=', id).executeTakeFirst();
  if (!inv) throw new NotFoundError('invoice');
  const lines = await db
    .selectFrom('invoiceLines')
    .select(['lineNo', 'kind', 'label', 'quantity', 'unitPrice', 'amount'])
    .where('tenantId', '=', tenantId)
    .where('invoiceId', '=', id)
    .orderBy('lineNo')
    .execute();
  return {
    id: inv.id,
    number: inv.number,
    tenantId: inv.tenantId,
    reference: inv.reference,
    period: inv.period,
    status: inv.status,
    currency: inv.currency,
    lines: lines.map((l) => ({ kind: l.kind === 'licence' ? ('licence' as const) : ('calls' as const), label: l.label, quantity: trimDecimal(l.quantity), unitPrice: price(l.unitPrice), amount: l.amount })),
    totalExclVat: inv.totalExclVat,
    vat: inv.vat,
    total: inv.total,
    issuedAt: inv.issuedAt.toISOString(),
    locale: inv.locale === 'en' ? 'en' : 'fr',
    vatRate: inv.vatRate,
    lineNos: lines.map((l) => l.lineNo),
  };
}

export function invoiceView(r: InvoiceRecord): InvoiceView {
  const { locale: _l, vatRate: _v, lineNos: _n, ...view } = r;
  return view;
}

function decodeCursor(cursor: string): { period: string; number: string } {
  const [period, number] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (period === undefined || number === undefined || !/^\d{4}-\d{2}$/.test(period) || !/^\d{4}-\d{6,}$/.test(number)) {
    throw new ValidationError('invalid cursor', [{ field: 'cursor', value: cursor, message: 'not a cursor of this list' }]);
  }
  return { period, number };
}

/** The tenant's invoices, newest period first. */
export async function listInvoices(
  db: Db,
  tenantId: string,
  f: { limit: number; cursor?: string; period?: string },
): Promise<{ items: InvoiceView[]; nextCursor: string | null }> {
  let q = db.selectFrom('invoices').select('id').where('tenantId', '=', tenantId);
  if (f.period !== undefined) q = q.where('period', '=', parsePeriod(f.period));
  if (f.cursor !== undefined) {
    const c = decodeCursor(f.cursor);
    q = q.where((eb) => eb.or([eb('period', '<', c.period), eb.and([eb('period', '=', c.period), eb('number', '<', c.number)])]));
  }
  const rows = await q.select(['period', 'number']).orderBy('period', 'desc').orderBy('number', 'desc').limit(f.limit + 1).execute();
  const page = rows.slice(0, f.limit);
  const items = await Promise.all(page.map(async (r) => invoiceView(await getInvoice(db, tenantId, r.id))));
  const last = page[page.length - 1];
  const nextCursor = rows.length > f.limit && last ? Buffer.from(`${last.period}|${last.number}`).toString('base64url') : null;
  return { items, nextCursor };
}

/** One user's calls on an invoice (the PDF's annex). */
export interface UserCalls {
  identifiant: string;
  fullName: string;
  calls: number;
  chargedSeconds: number;
  /** Sum of the invoiced CDR amounts, 4 decimals (the invoice rounds per line, not per user). */
  amount: string;
}

/** The invoice's calls by user, in identifiant order, at most `limit` users (and how many there are). */
export async function invoiceUserCalls(db: Db, invoice: InvoiceRecord, limit: number): Promise<{ users: UserCalls[]; total: number }> {
  const r = await sql<UserCalls & { total: number }>`
    WITH per_user AS (
      SELECT user_id, count(*)::int AS calls, sum(charged_seconds)::int AS charged_seconds, sum(amount)::numeric(20,4)::text AS amount
        FROM invoice_items WHERE tenant_id = ${invoice.tenantId} AND invoice_id = ${invoice.id} AND kind = 'call'
       GROUP BY user_id
    )
    SELECT COALESCE(u.identifiant, e.identifiant, '') AS identifiant, COALESCE(u.full_name, e.full_name, '') AS full_name,
           p.calls, p.charged_seconds, p.amount, count(*) OVER ()::int AS total
      FROM per_user p
      LEFT JOIN users u ON u.tenant_id = ${invoice.tenantId} AND u.id = p.user_id
      LEFT JOIN LATERAL (
        SELECT identifiant, full_name FROM user_status_events x
         WHERE x.tenant_id = ${invoice.tenantId} AND x.user_id = p.user_id ORDER BY x.at DESC, x.id DESC LIMIT 1
      ) e ON u.id IS NULL
     ORDER BY 1, 2
     LIMIT ${limit}`.execute(db);
  return { users: r.rows.map(({ total: _t, ...u }) => u), total: r.rows[0]?.total ?? 0 };
}
