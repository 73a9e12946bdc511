import { Decimal } from 'decimal.js';
import { monthWindow } from '../../engine/periods.js';
import { testDb } from '../support/app.js';

/** Half-up (away from zero) to cents with decimal.js, independent of the engine's helpers. */
export function cents(d: Decimal.Value): string {
  return new Decimal(d).toDecimalPlaces(2, Decimal.ROUND_HALF_UP).toFixed(2);
}

/**
 * A month of a tenant seen two ways: what its rated CDRs cost now (per class,
 * each class rounded once to the cent, as an invoice issued today would show),
 * and what every document (invoices, later invoices' correction lines, credit
 * notes) billed of it. Also the same at the items' 4 decimals.
 */
export async function monthBalance(tenantId: string, period: string, zone = 'Europe/Paris') {
  const { sql } = testDb();
  const { start, end } = monthWindow(period, zone);
  const rated = await sql<{ cls: string; cost: string }[]>`
    SELECT COALESCE(class, 'free') AS cls, sum(cost)::text AS cost FROM cdrs
     WHERE tenant_id = ${tenantId} AND direction = 'out' AND billable_seconds > 0 AND started_at >= ${start} AND started_at < ${end}
     GROUP BY 1`;
  const [billed] = await sql<{ lines: string | null }[]>`
    SELECT sum(l.amount)::text AS lines FROM invoice_lines l JOIN invoices i ON i.tenant_id = l.tenant_id AND i.id = l.invoice_id
     WHERE l.tenant_id = ${tenantId} AND l.kind = 'calls' AND COALESCE(l.period, i.period) = ${period}`;
  const [items] = await sql<{ items: string | null; cost: string | null }[]>`
    SELECT (SELECT sum(x.amount) FROM invoice_items x JOIN cdrs c ON c.tenant_id = x.tenant_id AND c.id = x.cdr_id
             WHERE x.tenant_id = ${tenantId} AND c.started_at >= ${start} AND c.started_at < ${end})::text AS items,
           (SELECT sum(cost) FROM cdrs WHERE tenant_id = ${tenantId} AND direction = 'out' AND billable_seconds > 0
               AND started_at >= ${start} AND started_at < ${end})::text AS cost`;
  return {
    rated: rated.reduce((s, r) => s.plus(cents(r.cost)), new Decimal(0)).toFixed(2),
    billed: new Decimal(billed!.lines ?? 0).toFixed(2),
    ratedExact: new Decimal(items!.cost ?? 0).toFixed(4),
    billedExact: new Decimal(items!.items ?? 0).toFixed(4),
  };
}
