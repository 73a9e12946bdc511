/**
 * The accounting export (issue 17, point 5): one row per invoice or credit note
 * issued in [from, to) (either may be left out), the file an accountant imports
 * into the sales journal.
 * Dates are days in the issuer's zone (the zone that dates the numbers), from
 * inclusive and to exclusive. Amounts are decimal strings with 2 decimals and a
 * point; a credit note's are negative, so a column sums to the period's
 * revenue. Rows in number order: invoices (2026-…) then credit notes (AV-2026-…).
 */
import { writeToString } from 'fast-csv';
import { DateTime } from 'luxon';
import type { Db } from '../../db/connection.js';
import { checkRange } from '../cdrs/view.js';
import { guardText } from '../exports/csvCells.js';
import { NotFoundError, ValidationError } from '../shared/errors.js';

export const ACCOUNTING_COLUMNS = [
  'number', 'kind', 'issued_on', 'period', 'tenant_id', 'tenant_name', 'reference', 'corrects', 'status', 'currency',
  'total_excl_vat', 'vat_rate', 'vat', 'total',
] as const;

/** A day 'YYYY-MM-DD' in the zone, as the instant it starts; or a 400 naming the field. */
function dayStart(value: string, field: 'from' | 'to', zone: string): Date {
  const d = /^\d{4}-\d{2}-\d{2}$/.test(value) ? DateTime.fromISO(value, { zone }) : undefined;
  if (d === undefined || !d.isValid) throw new ValidationError(`invalid ${field}`, [{ field, value, message: 'a day as YYYY-MM-DD' }]);
  return d.toJSDate();
}

export async function accountingExport(
  db: Db,
  scope: { tenantId?: string; resellerId?: string },
  range: { from?: string; to?: string },
  zone: string,
): Promise<string> {
  const from = range.from === undefined ? undefined : dayStart(range.from, 'from', zone);
  const to = range.to === undefined ? undefined : dayStart(range.to, 'to', zone);
  checkRange(from, to, range);
  let q = db
    .selectFrom('invoices as i')
    .innerJoin('tenants as t', 't.id', 'i.tenantId')
    .leftJoin('invoices as c', (j) => j.onRef('c.tenantId', '=', 'i.tenantId').onRef('c.id', '=', 'i.correctsInvoiceId'))
    .select([
      'i.number', 'i.kind', 'i.issuedAt', 'i.period', 'i.tenantId', 't.name as tenantName', 'i.reference', 'c.number as corrects', 'i.status',
      'i.currency', 'i.totalExclVat', 'i.vatRate', 'i.vat', 'i.total',
    ])
    .orderBy('i.number');
  if (from) q = q.where('i.issuedAt', '>=', from);
  if (to) q = q.where('i.issuedAt', '<', to);
  if (scope.tenantId !== undefined && scope.resellerId !== undefined) {
    // a reseller naming a tenant: one of its own, or a 404 (never an empty answer that says the id exists)
    const own = await db.selectFrom('tenants').select('id').where('id', '=', scope.tenantId).where('resellerId', '=', scope.resellerId).executeTakeFirst();
    if (!own) throw new NotFoundError('tenant');
  }
  if (scope.tenantId !== undefined) q = q.where('i.tenantId', '=', scope.tenantId);
  if (scope.resellerId !== undefined) q = q.where('t.resellerId', '=', scope.resellerId);
  const rows = await q.execute();
  return writeToString(
    rows.map((r) => [
      r.number, r.kind, DateTime.fromJSDate(r.issuedAt, { zone }).toISODate() ?? '', r.period, r.tenantId, guardText(r.tenantName), guardText(r.reference),
      r.corrects ?? '', r.status, r.currency, r.totalExclVat, r.vatRate, r.vat, r.total,
    ]),
    { headers: [...ACCOUNTING_COLUMNS], writeHeaders: true, includeEndRowDelimiter: true },
  );
}
