/**
 * An invoice's details CSV (SPEC §9): every service (one row per licensed user)
 * and every CDR behind the invoice, as frozen at issue in invoice_items (its
 * cost and its details: the same file after the CDR's month is archived), then
 * one row per invoice line and the three totals. The item amounts of a line,
 * summed and rounded half-up to cents, give that line's amount; the lines give
 * the totals. Read through a cursor and written by fast-csv a page at a time:
 * constant memory whatever the size of the invoice.
 */
import { Readable } from 'node:stream';
import { writeToString } from 'fast-csv';
import type { Db } from '../../db/connection.js';
import { formatNumber } from '../../engine/index.js';
import { tenantCountry } from '../../engine/index.js';
import { formatInZone } from '../cdrs/time.js';
import { EXCEL, guardText, withExcelBom } from '../exports/csvCells.js';
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
 * The items of an invoice with what they name: the call's details frozen at
 * issue (services/invoices/frozenCalls.ts: never cdrs, whose month may have been
 * archived since), and the user (its row, or the last event written about it
 * when it was deleted since).
 */
function invoiceItems(db: Db, invoice: InvoiceRecord) {
  return db
    .selectFrom('invoiceItems as i')
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
      eb.fn.coalesce('i.identifiant', 'u.identifiant', 'e.identifiant').as('identifiant'),
      eb.fn.coalesce('u.fullName', 'e.fullName').as('fullName'),
      'i.callId',
      'i.startedAt',
      'i.callee',
      'i.destination',
      'i.class',
    ])
    .where('i.tenantId', '=', invoice.tenantId)
    .where('i.invoiceId', '=', invoice.id)
    .orderBy('i.lineNo')
    .orderBy('i.startedAt', (o) => o.asc().nullsFirst())
    .orderBy((eb) => eb.fn.coalesce('u.matricule', 'e.matricule'))
    .orderBy('i.id');
}

/** One invoice item as read (a licence or a CDR), before formatting. */
export type ItemRow = Awaited<ReturnType<ReturnType<typeof invoiceItems>['execute']>>[number];

/** What formatting a page of items needs besides the items (plain data: it goes to a report worker). */
export interface DetailsContext {
  invoice: InvoiceRecord;
  tenant: DetailsTenant;
  /** For French Excel (services/exports/csvCells.ts EXCEL): `;` between cells, the decimal comma. */
  excel?: boolean;
}

/** Where a page stands: the first carries the header, the last the lines and totals. */
export interface DetailsPart {
  first: boolean;
  last: boolean;
}

/** Makes the text of one page of the CSV: the work a report worker does (reports/renderWorker.ts). */
export type DetailsFormatter = (ctx: DetailsContext, items: ItemRow[], part: DetailsPart) => Promise<string>;

/** Formatted numbers by tenant display, bounded: a worker keeps it from one page to the next. */
const numberCache = new Map<string, string>();

/**
 * One page of the CSV as text, exactly the bytes fast-csv's stream writes for
 * those rows at that place: the header first, rows joined by "\n", no final
 * newline, so the pages joined are the whole file.
 */
export function detailsPage(ctx: DetailsContext, items: ItemRow[], part: DetailsPart): Promise<string> {
  const { invoice, tenant } = ctx;
  const lineLabels = new Map(invoice.lines.map((l, i) => [invoice.lineNos[i]!, l.label]));
  const country = tenantCountry(tenant.country);
  const show = (n: string | null) => {
    if (n === null) return '';
    const key = `${tenant.numberDisplay}|${tenant.country}|${n}`;
    let hit = numberCache.get(key);
    if (hit === undefined) {
      hit = formatNumber(n, tenant.numberDisplay, country);
      if (numberCache.size >= 100_000) numberCache.clear();
      numberCache.set(key, hit);
    }
    return hit;
  };
  const base = { invoice_number: invoice.number, reference: guardText(invoice.reference) };
  const empty: DetailsRow = Object.fromEntries(DETAILS_COLUMNS.map((c) => [c, ''])) as DetailsRow;
  const rows: DetailsRow[] = items.map((r) => ({
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
  }));
  if (part.last) {
    for (const [i, l] of invoice.lines.entries()) {
      rows.push({ ...empty, ...base, record: 'line', line_no: String(invoice.lineNos[i]), label: guardText(l.label), quantity: l.quantity, unit_price: l.unitPrice, amount: l.amount });
    }
    rows.push({ ...empty, ...base, record: 'total_excl_vat', amount: invoice.totalExclVat });
    rows.push({ ...empty, ...base, record: 'vat', unit_price: invoice.vatRate, amount: invoice.vat });
    rows.push({ ...empty, ...base, record: 'total', amount: invoice.total });
  }
  if (ctx.excel) {
    for (const row of rows) for (const c of DECIMAL_COLUMNS) row[c] = row[c].replace('.', EXCEL.decimal);
  }
  const delimiter = ctx.excel ? EXCEL.delimiter : ',';
  return writeToString<DetailsRow, DetailsRow>(rows, { headers: [...DETAILS_COLUMNS], writeHeaders: part.first, delimiter }).then((text) =>
    part.first || text === '' ? text : `\n${text}`,
  );
}

/** The columns that hold decimals (amounts, prices, the VAT rate): a decimal comma for Excel. */
const DECIMAL_COLUMNS = ['unit_price', 'cost', 'amount'] as const;

const PAGE = 1000;

/**
 * The details CSV as a stream: the items read through a cursor (constant
 * memory), each page of 1,000 made by `format` — a report worker in the server
 * (api/routes/invoices.ts), so the luxon, libphonenumber and CSV work of a large
 * invoice stays off the thread that answers the PBX (issue #24).
 */
export function invoiceDetailsCsv(db: Db, invoice: InvoiceRecord, tenant: DetailsTenant, format: DetailsFormatter = detailsPage, excel = false): Readable {
  const ctx: DetailsContext = { invoice, tenant, excel };
  async function* pages(): AsyncGenerator<string> {
    let page: ItemRow[] = [];
    let first = true;
    for await (const r of invoiceItems(db, invoice).stream(PAGE)) {
      page.push(r);
      if (page.length < PAGE) continue;
      yield await format(ctx, page, { first, last: false });
      page = [];
      first = false;
    }
    yield await format(ctx, page, { first, last: true });
  }
  const text = Readable.from(pages(), { objectMode: false });
  return excel ? withExcelBom(text) : text;
}
