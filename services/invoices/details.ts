/**
 * An invoice's details CSV (SPEC §9): every service (one row per licensed user)
 * and every CDR behind the invoice, as frozen at issue in invoice_items, then
 * one row per invoice line and the three totals. The item amounts of a line,
 * summed and rounded half-up to cents, give that line's amount; the lines give
 * the totals. Read through a cursor and written by fast-csv: constant memory
 * whatever the size of the invoice.
 */
import { Readable } from 'node:stream';
import { format } from 'fast-csv';
import type { Db } from '../../db/connection.js';
import { formatNumber } from '../../engine/index.js';
import { tenantCountry } from '../../engine/index.js';
import { formatInZone } from '../cdrs/time.js';
import { guardText } from '../exports/csvCells.js';
import type { InvoiceRecord } from './read.js';

export const DETAILS_COLUMNS = [
  'invoice_number', 'reference', 'record', 'line_no', 'label', 'matricule', 'identifiant', 'full_name', 'call_id', 'started_at',
  'callee', 'destination', 'class', 'charged_seconds', 'quantity', 'unit_price', 'cost', 'amount',
] as const;

type DetailsRow = Record<(typeof DETAILS_COLUMNS)[number], string>;

export interface DetailsTenant {
  country: string;
  timezone: string;
  numberDisplay: 'international' | 'national';
}

/**
 * The items of an invoice with what they name: the CDR, and the user (its row,
 * or the last event written about it when it was deleted since).
 */
function invoiceItems(db: Db, invoice: InvoiceRecord) {
  return db
    .selectFrom('invoiceItems as i')
    .leftJoin('cdrs as c', (j) => j.onRef('c.tenantId', '=', 'i.tenantId').onRef('c.id', '=', 'i.cdrId'))
    .leftJoin('users as u', (j) => j.onRef('u.tenantId', '=', 'i.tenantId').onRef('u.id', '=', 'i.userId'))
    .leftJoinLateral(
      (eb) =>
        eb
          .selectFrom('userStatusEvents as x')
          .select(['x.matricule', 'x.identifiant', 'x.fullName'])
          .whereRef('x.tenantId', '=', 'i.tenantId')
          .whereRef('x.userId', '=', 'i.userId')
          .orderBy('x.at', 'desc')
          .orderBy('x.id', 'desc')
          .limit(1)
          .as('e'),
      (j) => j.on('u.id', 'is', null),
    )
    .select((eb) => [
      'i.lineNo',
      'i.kind',
      'i.chargedSeconds',
      'i.cost',
      'i.amount',
      eb.fn.coalesce('u.matricule', 'e.matricule').as('matricule'),
      eb.fn.coalesce('c.identifiant', 'u.identifiant', 'e.identifiant').as('identifiant'),
      eb.fn.coalesce('u.fullName', 'e.fullName').as('fullName'),
      'c.callId',
      'c.startedAt',
      'c.callee',
      'c.destination',
      'c.class',
    ])
    .where('i.tenantId', '=', invoice.tenantId)
    .where('i.invoiceId', '=', invoice.id)
    .orderBy('i.lineNo')
    .orderBy('c.startedAt', (o) => o.asc().nullsFirst())
    .orderBy((eb) => eb.fn.coalesce('u.matricule', 'e.matricule'))
    .orderBy('i.id');
}

export function invoiceDetailsCsv(db: Db, invoice: InvoiceRecord, tenant: DetailsTenant): Readable {
  const lineLabels = new Map(invoice.lines.map((l, i) => [invoice.lineNos[i]!, l.label]));
  const country = tenantCountry(tenant.country);
  const numbers = new Map<string, string>();
  const show = (n: string | null) => {
    if (n === null) return '';
    let hit = numbers.get(n);
    if (hit === undefined) {
      hit = formatNumber(n, tenant.numberDisplay, country);
      if (numbers.size >= 100_000) numbers.clear();
      numbers.set(n, hit);
    }
    return hit;
  };
  const base = { invoice_number: invoice.number, reference: guardText(invoice.reference) };
  const empty: DetailsRow = Object.fromEntries(DETAILS_COLUMNS.map((c) => [c, ''])) as DetailsRow;

  async function* rows(): AsyncGenerator<DetailsRow> {
    for await (const r of invoiceItems(db, invoice).stream(1000)) {
      yield {
        ...empty,
        ...base,
        record: r.kind,
        line_no: String(r.lineNo),
        label: guardText(lineLabels.get(r.lineNo) ?? ''),
        matricule: guardText(r.matricule),
        identifiant: guardText(r.identifiant),
        full_name: guardText(r.fullName),
        call_id: guardText(r.callId),
        started_at: r.startedAt ? formatInZone(r.startedAt, tenant.timezone) : '',
        callee: show(r.callee),
        destination: guardText(r.destination),
        class: r.class ?? '',
        charged_seconds: r.kind === 'call' ? String(r.chargedSeconds) : '',
        quantity: '1',
        unit_price: r.kind === 'licence' ? r.amount : '',
        cost: r.cost,
        amount: r.amount,
      };
    }
    for (const [i, l] of invoice.lines.entries()) {
      yield { ...empty, ...base, record: 'line', line_no: String(invoice.lineNos[i]), label: guardText(l.label), quantity: l.quantity, unit_price: l.unitPrice, amount: l.amount };
    }
    yield { ...empty, ...base, record: 'total_excl_vat', amount: invoice.totalExclVat };
    yield { ...empty, ...base, record: 'vat', unit_price: invoice.vatRate, amount: invoice.vat };
    yield { ...empty, ...base, record: 'total', amount: invoice.total };
  }

  const source = Readable.from(rows());
  const csv = format<DetailsRow, DetailsRow>({ headers: [...DETAILS_COLUMNS] });
  source.once('error', (err) => csv.destroy(err));
  csv.once('close', () => source.destroy());
  return source.pipe(csv);
}
