/**
 * Issuing one tenant's invoice for one month (SPEC §9, §4 last paragraph).
 *
 * One transaction per invoice:
 *  1. an advisory lock on (tenant, period), then "is it invoiced already?": a
 *     second run, racing or not, finds the first one's invoice and does nothing;
 *  2. the items are frozen into invoice_items: the users enabled during the
 *     billed window (licences) and the outgoing billable CDRs that started in it,
 *     each with its cost now (set-based INSERT … SELECT, nothing through JS);
 *  3. the lines are the items grouped by line, each rounded half-up to cents
 *     once; total excl. VAT = sum of the rounded lines; VAT = round2(total × rate);
 *  4. last, the number: the year's row of invoice_sequences is incremented and
 *     locked until commit, so numbers are allocated in commit order with no gap
 *     (a rolled-back transaction gives its number back) and no duplicate.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { DateTime } from 'luxon';
import type { Db, Trx } from '../../db/connection.js';
import { Dec, addMoney4, formatMoney4, mulMoney4Round2, parseMoney4, roundMoney2, type Money4 } from '../../engine/money.js';
import type { Issuer } from './issuer.js';
import { CLASS_LINES, LICENCE_LINE, callsLabel, licenceLabel, type CallClass, type Locale } from './labels.js';
import { monthWindow } from '../../engine/periods.js';

/** What invoicing needs of a tenant (and of its product type). */
export interface InvoiceTenant {
  id: string;
  resellerId: string;
  reference: string | null;
  productName: string;
  monthlyFeePerUser: string;
  currency: string;
  locale: Locale;
  timezone: string;
  vatRate: string;
  internal: boolean;
  trialEndsAt: Date | null;
}

export type SkipReason = 'ALREADY_INVOICED' | 'TRIAL' | 'PERIOD_NOT_ENDED' | 'NOTHING_TO_INVOICE';

export type IssueOutcome =
  | { created: true; tenantId: string; invoiceId: string; number: string }
  | { created: false; tenantId: string; reason: SkipReason; invoiceId?: string };

export interface IssueOptions {
  now: Date;
  issuer: Issuer;
}

export async function loadInvoiceTenants(db: Db, scope: { tenantId?: string; resellerId?: string } = {}): Promise<InvoiceTenant[]> {
  let q = db
    .selectFrom('tenants as t')
    .innerJoin('productTypes as p', 'p.code', 't.productType')
    .select([
      't.id', 't.resellerId', 't.reference', 'p.name as productName', 'p.monthlyFeePerUser', 't.currency', 't.locale',
      't.timezone', 't.vatRate', 't.internal', 't.trialEndsAt',
    ])
    .orderBy('t.id');
  if (scope.tenantId !== undefined) q = q.where('t.id', '=', scope.tenantId);
  if (scope.resellerId !== undefined) q = q.where('t.resellerId', '=', scope.resellerId);
  return q.execute();
}

/** numeric text with 4 decimals → Money4. */
const m4 = (s: string | null | undefined): Money4 => parseMoney4(s ?? '0');

/** 2 decimals from Money4 units already rounded to cents. */
const cents = (m: Money4): string => formatMoney4(m).slice(0, -2);

interface LineDraft {
  lineNo: number;
  kind: 'licence' | 'calls';
  label: string;
  quantity: string;
  unitPrice: string;
  amount: Money4;
}

interface ItemGroup {
  lineNo: number;
  n: number;
  seconds: string;
  cost: string;
  amount: string;
}

/** Average price of a charged minute, 4 decimals, for information on call lines. */
function averagePerMinute(cost: Money4, seconds: number): string {
  if (seconds === 0) return '0.0000';
  return new Dec(cost).div(10_000).times(60).div(seconds).toFixed(4, Dec.ROUND_HALF_UP);
}

function linesOf(tenant: InvoiceTenant, groups: ItemGroup[]): LineDraft[] {
  const lines: LineDraft[] = [];
  const byLine = new Map(groups.map((g) => [g.lineNo, g]));
  const licences = byLine.get(LICENCE_LINE);
  if (licences && licences.n > 0) {
    lines.push({
      lineNo: LICENCE_LINE,
      kind: 'licence',
      label: licenceLabel(tenant.locale, tenant.productName),
      quantity: String(licences.n),
      unitPrice: tenant.internal ? '0' : tenant.monthlyFeePerUser,
      amount: roundMoney2(m4(licences.amount)),
    });
  }
  for (const { cls, lineNo } of CLASS_LINES) {
    const g = byLine.get(lineNo);
    if (!g || g.n === 0) continue;
    const seconds = Number(g.seconds);
    const amount = m4(g.amount);
    lines.push({
      lineNo,
      kind: 'calls',
      label: callsLabel(tenant.locale, cls, g.n, seconds),
      quantity: new Dec(seconds).div(60).toFixed(4, Dec.ROUND_HALF_UP),
      unitPrice: tenant.internal ? '0' : averagePerMinute(amount, seconds),
      amount: roundMoney2(amount),
    });
  }
  return lines;
}

const classLineSql = sql.raw(
  `CASE COALESCE(class, 'free') ${CLASS_LINES.map((c) => `WHEN '${c.cls}' THEN ${c.lineNo}`).join(' ')} ELSE ${CLASS_LINES[CLASS_LINES.length - 1]!.lineNo} END`,
);

async function freezeItems(trx: Trx, tenant: InvoiceTenant, invoiceId: string, from: Date, end: Date): Promise<ItemGroup[]> {
  const fee = tenant.monthlyFeePerUser;
  const billedFee = tenant.internal ? '0' : fee;
  // A user counts when enabled at any moment of [from, end): enabled by the last
  // event before `from`, or an `enabled` event inside the window.
  await sql`
    INSERT INTO invoice_items (tenant_id, invoice_id, line_no, kind, user_id, cost, amount)
    SELECT ${tenant.id}::uuid, ${invoiceId}::uuid, ${LICENCE_LINE}, 'licence', user_id, ${fee}::numeric, ${billedFee}::numeric
      FROM user_status_events
     WHERE tenant_id = ${tenant.id} AND at < ${end}
     GROUP BY user_id
    HAVING bool_or(status = 'enabled' AND at >= ${from})
        OR (array_agg(status ORDER BY at DESC, id DESC) FILTER (WHERE at < ${from}))[1] = 'enabled'`.execute(trx);
  // Outgoing calls that were billed time (answered, billable seconds > 0), by start time.
  await sql`
    INSERT INTO invoice_items (tenant_id, invoice_id, line_no, kind, user_id, cdr_id, charged_seconds, cost, amount)
    SELECT tenant_id, ${invoiceId}::uuid, ${classLineSql}, 'call', user_id, id, charged_seconds, cost,
           ${tenant.internal ? sql`0` : sql`cost`}
      FROM cdrs
     WHERE tenant_id = ${tenant.id} AND direction = 'out' AND billable_seconds > 0
       AND started_at >= ${from} AND started_at < ${end}`.execute(trx);
  const r = await sql<ItemGroup>`
    SELECT line_no, count(*)::int AS n, COALESCE(sum(charged_seconds), 0)::text AS seconds,
           COALESCE(sum(cost), 0)::numeric(20,4)::text AS cost, COALESCE(sum(amount), 0)::numeric(20,4)::text AS amount
      FROM invoice_items WHERE tenant_id = ${tenant.id} AND invoice_id = ${invoiceId}
     GROUP BY line_no`.execute(trx);
  return r.rows;
}

async function nextNumber(trx: Trx, year: number): Promise<string> {
  const r = await sql<{ lastNumber: number }>`
    INSERT INTO invoice_sequences (year, last_number) VALUES (${year}, 1)
    ON CONFLICT (year) DO UPDATE SET last_number = invoice_sequences.last_number + 1
    RETURNING last_number`.execute(trx);
  return `${year}-${String(r.rows[0]!.lastNumber).padStart(6, '0')}`;
}

/**
 * Issues the invoice of `period` for `tenant`, or says why not. The billed
 * window is the month in the tenant's zone; for a tenant whose trial ends inside
 * the month it starts at trialEndsAt (the trial part is free), and a month that
 * ends at or before trialEndsAt is not invoiced at all.
 */
export async function issueInvoice(db: Db, tenant: InvoiceTenant, period: string, options: IssueOptions): Promise<IssueOutcome> {
  const { start, end } = monthWindow(period, tenant.timezone);
  const skip = (reason: SkipReason, invoiceId?: string): IssueOutcome => ({ created: false, tenantId: tenant.id, reason, ...(invoiceId ? { invoiceId } : {}) });
  if (options.now < end) return skip('PERIOD_NOT_ENDED');
  if (tenant.trialEndsAt !== null && tenant.trialEndsAt >= end) return skip('TRIAL');
  const from = tenant.trialEndsAt !== null && tenant.trialEndsAt > start ? tenant.trialEndsAt : start;

  return db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(hashtextextended(${`invoice:${tenant.id}:${period}`}, 0))`.execute(trx);
    const existing = await trx.selectFrom('invoices').select('id').where('tenantId', '=', tenant.id).where('period', '=', period).executeTakeFirst();
    if (existing) return skip('ALREADY_INVOICED', existing.id);

    const invoiceId = randomUUID();
    const groups = await freezeItems(trx, tenant, invoiceId, from, end);
    const lines = linesOf(tenant, groups);
    if (lines.length === 0) return skip('NOTHING_TO_INVOICE');

    const totalExclVat = addMoney4(...lines.map((l) => l.amount));
    const vat = mulMoney4Round2(totalExclVat, tenant.vatRate);
    const total = addMoney4(totalExclVat, vat);
    const year = DateTime.fromJSDate(options.now, { zone: options.issuer.timezone }).year;
    const number = await nextNumber(trx, year);
    await trx
      .insertInto('invoices')
      .values({
        tenantId: tenant.id,
        id: invoiceId,
        number,
        period,
        reference: tenant.reference?.trim() || tenant.id,
        status: tenant.internal ? 'not_billed' : 'issued',
        currency: tenant.currency,
        locale: tenant.locale,
        vatRate: tenant.vatRate,
        totalExclVat: cents(totalExclVat),
        vat: cents(vat),
        total: cents(total),
        issuedAt: options.now,
      })
      .execute();
    await trx
      .insertInto('invoiceLines')
      .values(
        lines.map((l) => ({
          tenantId: tenant.id,
          invoiceId,
          lineNo: l.lineNo,
          kind: l.kind,
          label: l.label,
          quantity: l.quantity,
          unitPrice: l.unitPrice,
          amount: cents(l.amount),
        })),
      )
      .execute();
    return { created: true as const, tenantId: tenant.id, invoiceId, number };
  });
}

export type { CallClass };
