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
import type postgres from 'postgres';
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

interface ItemRow {
  lineNo: number;
  kind: 'licence' | 'call';
  chargedSeconds: number;
  cost: string;
  amount: string;
  matricule: string | null;
  identifiant: string | null;
  fullName: string | null;
  callId: string | null;
  startedAt: Date | null;
  callee: string | null;
  destination: string | null;
  class: string | null;
}

export interface DetailsTenant {
  country: string;
  timezone: string;
  numberDisplay: 'international' | 'national';
}

export function invoiceDetailsCsv(sql: postgres.Sql, invoice: InvoiceRecord, tenant: DetailsTenant): Readable {
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
    const items = sql<ItemRow[]>`
      SELECT i.line_no AS "lineNo", i.kind, i.charged_seconds AS "chargedSeconds", i.cost::text AS cost, i.amount::text AS amount,
             COALESCE(u.matricule, e.matricule) AS matricule, COALESCE(c.identifiant, u.identifiant, e.identifiant) AS identifiant,
             COALESCE(u.full_name, e.full_name) AS "fullName",
             c.call_id AS "callId", c.started_at AS "startedAt", c.callee, c.destination, c.class
        FROM invoice_items i
        LEFT JOIN cdrs c ON c.tenant_id = i.tenant_id AND c.id = i.cdr_id
        LEFT JOIN users u ON u.tenant_id = i.tenant_id AND u.id = i.user_id
        LEFT JOIN LATERAL (
          SELECT matricule, identifiant, full_name FROM user_status_events x
           WHERE x.tenant_id = i.tenant_id AND x.user_id = i.user_id ORDER BY x.at DESC, x.id DESC LIMIT 1
        ) e ON u.id IS NULL
       WHERE i.tenant_id = ${invoice.tenantId} AND i.invoice_id = ${invoice.id}
       ORDER BY i.line_no, c.started_at NULLS FIRST, COALESCE(u.matricule, e.matricule), i.id`;
    for await (const batch of items.cursor(1000)) {
      for (const r of batch) {
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
