/**
 * Charges that arrive after their month was invoiced (issue 17, point 2).
 *
 * An issued document never changes. When a tenant's next invoice is issued,
 * every month already invoiced is compared with its rated CDRs as they are now:
 * for each month and destination class,
 *
 *   difference = round2(sum of the costs of the month's billable outgoing CDRs)
 *              − sum of every document's call lines for that month and class
 *
 * (the invoice's own line, then any correction line or credit note since). A
 * positive difference is a line of the new invoice, labelled with its month; a
 * negative one a line of a credit note correcting that month's invoice. So the
 * documents of a month always add up, line by line, to the invoice the month
 * would get if it were issued today, to the cent.
 *
 * The CDRs behind a difference are frozen on the document as items whose
 * amount is what was not yet invoiced of each (its cost now − the amounts
 * already invoiced for it): a late CDR carries its whole cost, a re-rated one
 * the difference. Differences that do not move a month's rounded total (a few
 * ten-thousandths) wait, and are frozen with the next one that does.
 *
 * A month whose CDRs were archived (any UTC month its billed window touches has
 * a file in cdr_archives) is closed: its rows left the database, its invoice
 * stands (issue 22), and it is no longer compared.
 */
import { sql } from 'kysely';
import { textArray } from '../../db/arrays.js';
import type { Trx } from '../../db/connection.js';
import { addMoney4, negateMoney4, parseMoney4, roundMoney2, type Money4 } from '../../engine/money.js';
import { classOfLine, CLASS_LINES, type CallClass, type CorrectionCounts } from './labels.js';
import { billedWindow } from './period.js';

/** A CDR's part of a correction: what was not yet invoiced of it. */
export interface CorrectionItem {
  cdrId: string;
  userId: string | null;
  /** Charged seconds not yet invoiced (a late CDR: all of them). */
  chargedSeconds: number;
  /** The CDR's cost now, 4 decimals. */
  cost: string;
  /** cost now − amounts already invoiced for it, 4 decimals, signed. */
  amount: string;
}

export interface Correction {
  period: string;
  cls: CallClass;
  /** Signed, a whole number of cents. */
  amount: Money4;
  counts: CorrectionCounts;
  items: CorrectionItem[];
}

/** The invoice a month already has. */
export interface InvoicedMonth {
  id: string;
  number: string;
  period: string;
  vatRate: string;
}

const m4 = (s: string | null | undefined): Money4 => parseMoney4(s ?? '0');
const classOrder = new Map(CLASS_LINES.map((c, i) => [c.cls, i]));

/**
 * Every month of the tenant already invoiced (but `except`) whose documents no
 * longer add up to its rated CDRs, with the difference per class. Runs in the
 * issuing transaction, under the tenant's invoice lock.
 */
export async function pendingCorrections(
  trx: Trx,
  tenant: { id: string; timezone: string; trialEndsAt: Date | null },
  except: string,
): Promise<{ invoiced: Map<string, InvoicedMonth>; corrections: Correction[] }> {
  const months = await trx
    .selectFrom('invoices')
    .select(['id', 'number', 'period', 'vatRate'])
    .where('tenantId', '=', tenant.id)
    .where('kind', '=', 'invoice')
    .where('status', '=', 'issued')
    .where('period', '<>', except)
    .orderBy('period')
    .execute();
  const invoiced = new Map(months.map((m) => [m.period, m]));
  // a month whose CDRs were archived (services/archives/) is closed: its rows left cdrs, not its invoice
  const archived = new Set(
    (await trx.selectFrom('cdrArchives').select(sql<string>`to_char(month, 'YYYY-MM')`.as('month')).distinct().where('tenantId', '=', tenant.id).execute()).map((a) => a.month),
  );
  const open = months
    .map((m) => ({ ...m, window: billedWindow(m.period, tenant) }))
    .filter((m) => ![m.window.start, new Date(m.window.end.getTime() - 1)].some((at) => archived.has(at.toISOString().slice(0, 7))));
  if (open.length === 0) return { invoiced, corrections: [] };

  const windows = open.map((m) => m.window);
  const w = sql`unnest(${textArray(open.map((m) => m.period))}::text[], ${textArray(windows.map((x) => x.from.toISOString()))}::timestamptz[],
                       ${textArray(windows.map((x) => x.end.toISOString()))}::timestamptz[]) AS w(period, from_at, to_at)`;
  const billed = sql`c.tenant_id = ${tenant.id} AND c.direction = 'out' AND c.billable_seconds > 0 AND c.started_at >= w.from_at AND c.started_at < w.to_at`;

  const rated = await sql<{ period: string; cls: string; cost: string }>`
    SELECT w.period, COALESCE(c.class, 'free') AS cls, sum(c.cost)::numeric(20,4)::text AS cost
      FROM ${w} JOIN cdrs c ON ${billed}
     GROUP BY 1, 2`.execute(trx);
  const lines = await sql<{ period: string; lineNo: number; callClass: string | null; amount: string }>`
    SELECT COALESCE(l.period, i.period) AS period, l.line_no, l.call_class, sum(l.amount)::numeric(20,4)::text AS amount
      FROM invoice_lines l JOIN invoices i ON i.tenant_id = l.tenant_id AND i.id = l.invoice_id
     WHERE l.tenant_id = ${tenant.id} AND l.kind = 'calls' AND i.status = 'issued'
       AND COALESCE(l.period, i.period) = ANY(${textArray(open.map((m) => m.period))}::text[])
     GROUP BY 1, 2, 3`.execute(trx);

  const differences = new Map<string, { period: string; cls: CallClass; amount: Money4 }>();
  const entry = (period: string, cls: CallClass) => {
    const key = `${period}|${cls}`;
    let d = differences.get(key);
    if (d === undefined) {
      d = { period, cls, amount: 0 as Money4 };
      differences.set(key, d);
    }
    return d;
  };
  for (const r of rated.rows) {
    const cls = classOfLine(0, r.cls) ?? 'free';
    const d = entry(r.period, cls);
    d.amount = addMoney4(d.amount, roundMoney2(m4(r.cost)));
  }
  for (const l of lines.rows) {
    const cls = classOfLine(l.lineNo, l.callClass);
    if (cls === undefined) continue;
    const d = entry(l.period, cls);
    d.amount = addMoney4(d.amount, negateMoney4(m4(l.amount)));
  }
  const moved = [...differences.values()].filter((d) => d.amount !== 0);
  if (moved.length === 0) return { invoiced, corrections: [] };

  // the CDRs not (or not wholly) invoiced yet, of the months that move
  const items = await sql<CorrectionItem & { period: string; cls: string; invoicedBefore: number }>`
    SELECT w.period, COALESCE(c.class, 'free') AS cls, c.id::text AS cdr_id, c.user_id, c.cost::text AS cost,
           (c.charged_seconds - COALESCE(s.seconds, 0))::int AS charged_seconds,
           (c.cost - COALESCE(s.amount, 0))::numeric(20,4)::text AS amount, s.n::int AS invoiced_before
      FROM ${w} JOIN cdrs c ON ${billed}
      CROSS JOIN LATERAL (
        SELECT count(*) AS n, sum(x.amount) AS amount, sum(x.charged_seconds) AS seconds
          FROM invoice_items x WHERE x.tenant_id = ${tenant.id} AND x.cdr_id = c.id AND x.kind = 'call'
      ) s
     WHERE w.period = ANY(${textArray([...new Set(moved.map((d) => d.period))])}::text[])
       AND c.cost <> COALESCE(s.amount, 0)
     ORDER BY c.started_at, c.id`.execute(trx);

  const corrections = new Map<string, Correction>();
  for (const d of moved) corrections.set(`${d.period}|${d.cls}`, { ...d, counts: { late: 0, rerated: 0 }, items: [] });
  for (const { period, cls, invoicedBefore, ...item } of items.rows) {
    const c = corrections.get(`${period}|${classOfLine(0, cls) ?? 'free'}`);
    if (c === undefined) continue;
    c.items.push(item);
    if (invoicedBefore === 0) c.counts.late++;
    else c.counts.rerated++;
  }
  return {
    invoiced,
    corrections: [...corrections.values()].sort((a, b) => (a.period < b.period ? -1 : a.period > b.period ? 1 : classOrder.get(a.cls)! - classOrder.get(b.cls)!)),
  };
}
