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
 *  4. months invoiced before whose CDRs changed since (late CDRs, rerates) are
 *     corrected (corrections.ts): what is owed more becomes lines of this
 *     invoice, labelled with their month; what is owed less a credit note per
 *     corrected invoice (AV-YYYY-NNNNNN, its own sequence);
 *  5. last, the numbers: the year's row of credit_note_sequences, then of
 *     invoice_sequences, is incremented and locked until commit, so numbers are
 *     allocated in commit order with no gap (a rolled-back transaction gives its
 *     numbers back) and no duplicate; always in that order, so two tenants'
 *     transactions cannot deadlock on them.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { DateTime } from 'luxon';
import type { Db, Trx } from '../../db/connection.js';
import { addMoney4, formatMoney4, mulMoney4Round2, parseMoney4, roundMoney2, type Money4 } from '../../engine/money.js';
import type { Issuer } from './issuer.js';
import { recordAudit, type Actor } from '../audit/audit.js';
import { CLASS_LINES, LICENCE_LINE, callsLabel, creditLabel, lateCallsLabel, licenceLabel, type CallClass, type Locale } from './labels.js';
import { pendingCorrections, type Correction, type CorrectionItem, type InvoicedMonth } from './corrections.js';
import { billedWindow } from './period.js';
import { frozenColumns, frozenFromCdr } from './frozenCalls.js';
import { intArray, textArray } from '../../db/arrays.js';
import { getInvoice, invoiceUserCalls, type InvoiceRecord, type UserCalls } from './read.js';

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

export type SkipReason = 'ALREADY_INVOICED' | 'TRIAL' | 'PERIOD_NOT_ENDED' | 'NOTHING_TO_INVOICE' | 'ISSUER_NOT_CONFIGURED';

export type IssueOutcome =
  | { created: true; tenantId: string; invoiceId: string; number: string; creditNotes: string[] }
  | { created: false; tenantId: string; reason: SkipReason; invoiceId?: string; creditNotes?: string[] };

export interface IssueOptions {
  now: Date;
  issuer: Issuer;
  /** Who asked (the API): what is issued goes in the audit trail in the same transaction. */
  actor?: Actor;
}

/** The audit rows of one issue: the invoice and each credit note it made, written in the issue's transaction. */
async function auditIssued(trx: Trx, actor: Actor, tenantId: string, period: string, outcome: IssueOutcome): Promise<void> {
  for (const id of outcome.creditNotes ?? []) {
    await recordAudit(trx, actor, { tenantId, action: 'creditNote.issue', targetType: 'invoice', targetId: id, after: { period } });
  }
  if (outcome.created) {
    await recordAudit(trx, actor, { tenantId, action: 'invoice.issue', targetType: 'invoice', targetId: outcome.invoiceId, after: { period, number: outcome.number } });
  }
}

/** A draft: what issuing would produce now, never stored (its transaction is rolled back), stamped SPECIMEN. */
export interface DraftDocument {
  record: InvoiceRecord;
  userCalls: { users: UserCalls[]; total: number };
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
  /** Calls' destination class; the month they are of when it is not the document's own (a correction). */
  callClass: CallClass | null;
  period: string | null;
  /** A correction's CDRs, frozen with the line. */
  items?: CorrectionItem[];
}

interface ItemGroup {
  lineNo: number;
  n: number;
  seconds: string;
  cost: string;
  amount: string;
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
      callClass: null,
      period: null,
    });
  }
  for (const { cls, lineNo } of CLASS_LINES) {
    const g = byLine.get(lineNo);
    if (!g || g.n === 0) continue;
    lines.push(callLine(lineNo, callsLabel(tenant.locale, cls, g.n, Number(g.seconds)), roundMoney2(m4(g.amount)), cls, null));
  }
  return lines;
}

/**
 * A call line is one lot: quantity 1 at its amount, so quantity × unit price is
 * the amount to the cent (issue 17, point 3). The count of calls and the time
 * charged are in the label; an average price per minute would not recompute.
 */
function callLine(lineNo: number, label: string, amount: Money4, callClass: CallClass, period: string | null, items?: CorrectionItem[]): LineDraft {
  return { lineNo, kind: 'calls', label, quantity: '1', unitPrice: cents(amount), amount, callClass, period, ...(items ? { items } : {}) };
}

/** First line number of the corrections of earlier months. */
const CORRECTION_LINES = 101;

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
    INSERT INTO invoice_items (tenant_id, invoice_id, line_no, kind, user_id, cdr_id, charged_seconds, cost, amount, ${frozenColumns})
    SELECT tenant_id, ${invoiceId}::uuid, ${classLineSql}, 'call', user_id, id, charged_seconds, cost,
           ${tenant.internal ? sql`0` : sql`cost`}, ${frozenFromCdr}
      FROM cdrs c
     WHERE tenant_id = ${tenant.id} AND direction = 'out' AND billable_seconds > 0
       AND started_at >= ${from} AND started_at < ${end}`.execute(trx);
  const r = await sql<ItemGroup>`
    SELECT line_no, count(*)::int AS n, COALESCE(sum(charged_seconds), 0)::text AS seconds,
           COALESCE(sum(cost), 0)::numeric(20,4)::text AS cost, COALESCE(sum(amount), 0)::numeric(20,4)::text AS amount
      FROM invoice_items WHERE tenant_id = ${tenant.id} AND invoice_id = ${invoiceId}
     GROUP BY line_no`.execute(trx);
  return r.rows;
}

export type DocumentKind = 'invoice' | 'credit_note';

/** The next number of the year: 2026-000001 for invoices, AV-2026-000001 for credit notes, each its own unbroken sequence. */
async function nextNumber(trx: Trx, kind: DocumentKind, year: number): Promise<string> {
  const r =
    kind === 'invoice'
      ? await sql<{ lastNumber: number }>`
          INSERT INTO invoice_sequences (year, last_number) VALUES (${year}, 1)
          ON CONFLICT (year) DO UPDATE SET last_number = invoice_sequences.last_number + 1
          RETURNING last_number`.execute(trx)
      : await sql<{ lastNumber: number }>`
          INSERT INTO credit_note_sequences (year, last_number) VALUES (${year}, 1)
          ON CONFLICT (year) DO UPDATE SET last_number = credit_note_sequences.last_number + 1
          RETURNING last_number`.execute(trx);
  return `${kind === 'credit_note' ? 'AV-' : ''}${year}-${String(r.rows[0]!.lastNumber).padStart(6, '0')}`;
}

interface DocumentDraft {
  id: string;
  kind: DocumentKind;
  period: string;
  vatRate: string;
  correctsInvoiceId: string | null;
  lines: LineDraft[];
}

/** Numbers and writes a document: its row, its lines and its corrections' items (its own items are frozen already). */
async function writeDocument(trx: Trx, tenant: InvoiceTenant, doc: DocumentDraft, options: IssueOptions): Promise<string> {
  const totalExclVat = addMoney4(...doc.lines.map((l) => l.amount));
  const vat = mulMoney4Round2(totalExclVat, doc.vatRate);
  const total = addMoney4(totalExclVat, vat);
  const year = DateTime.fromJSDate(options.now, { zone: options.issuer.timezone }).year;
  const number = await nextNumber(trx, doc.kind, year);
  await trx
    .insertInto('invoices')
    .values({
      tenantId: tenant.id,
      id: doc.id,
      number,
      period: doc.period,
      reference: tenant.reference?.trim() || tenant.id,
      status: tenant.internal ? 'not_billed' : 'issued',
      currency: tenant.currency,
      locale: tenant.locale,
      vatRate: doc.vatRate,
      totalExclVat: cents(totalExclVat),
      vat: cents(vat),
      total: cents(total),
      issuedAt: options.now,
      kind: doc.kind,
      correctsInvoiceId: doc.correctsInvoiceId,
    })
    .execute();
  await trx
    .insertInto('invoiceLines')
    .values(
      doc.lines.map((l) => ({
        tenantId: tenant.id,
        invoiceId: doc.id,
        lineNo: l.lineNo,
        kind: l.kind,
        label: l.label,
        quantity: l.quantity,
        unitPrice: l.unitPrice,
        amount: cents(l.amount),
        period: l.period,
        callClass: l.callClass,
      })),
    )
    .execute();
  const items = doc.lines.flatMap((l) => (l.items ?? []).map((item) => ({ lineNo: l.lineNo, item })));
  if (items.length > 0) {
    await sql`
      INSERT INTO invoice_items (tenant_id, invoice_id, line_no, kind, user_id, cdr_id, charged_seconds, cost, amount, ${frozenColumns})
      SELECT ${tenant.id}::uuid, ${doc.id}::uuid, v.line_no, 'call', v.user_id, v.cdr_id, v.seconds, v.cost, v.amount, ${frozenFromCdr}
        FROM unnest(${intArray(items.map((i) => i.lineNo))}::int[], ${textArray(items.map((i) => i.item.userId))}::uuid[],
                    ${textArray(items.map((i) => i.item.cdrId))}::bigint[], ${intArray(items.map((i) => i.item.chargedSeconds))}::int[],
                    ${textArray(items.map((i) => i.item.cost))}::numeric[], ${textArray(items.map((i) => i.item.amount))}::numeric[])
             AS v(line_no, user_id, cdr_id, seconds, cost, amount)
        LEFT JOIN cdrs c ON c.tenant_id = ${tenant.id} AND c.id = v.cdr_id`.execute(trx);
  }
  return number;
}

/** The corrections of earlier months: lines of this invoice (owed more) and credit notes (owed less), by corrected invoice. */
function splitCorrections(tenant: InvoiceTenant, corrections: Correction[], invoiced: Map<string, InvoicedMonth>) {
  const extra: LineDraft[] = [];
  const credits = new Map<string, DocumentDraft>();
  for (const c of corrections) {
    if (c.amount > 0) {
      extra.push(callLine(CORRECTION_LINES + extra.length, lateCallsLabel(tenant.locale, c.period, c.cls, c.counts), c.amount, c.cls, c.period, c.items));
      continue;
    }
    const corrected = invoiced.get(c.period)!;
    let note = credits.get(c.period);
    if (note === undefined) {
      note = { id: randomUUID(), kind: 'credit_note', period: c.period, vatRate: corrected.vatRate, correctsInvoiceId: corrected.id, lines: [] };
      credits.set(c.period, note);
    }
    const lineNo = CLASS_LINES.find((l) => l.cls === c.cls)!.lineNo;
    note.lines.push(callLine(lineNo, creditLabel(tenant.locale, c.period, c.cls, c.counts), c.amount, c.cls, c.period, c.items));
  }
  return { extra, credits: [...credits.values()] };
}

/**
 * Issues the invoice of `period` for `tenant`, or says why not. The billed
 * window is the month in the tenant's zone; for a tenant whose trial ends inside
 * the month it starts at trialEndsAt (the trial part is free), and a month that
 * ends at or before trialEndsAt is not invoiced at all.
 */
export async function issueInvoice(db: Db, tenant: InvoiceTenant, period: string, options: IssueOptions): Promise<IssueOutcome> {
  const { end } = billedWindow(period, tenant);
  if (options.now < end) return skipOf(tenant, 'PERIOD_NOT_ENDED');
  return db.transaction().execute(async (trx) => {
    const outcome = await issueIn(trx, tenant, period, options);
    if (options.actor) await auditIssued(trx, options.actor, tenant.id, period, outcome);
    return outcome;
  });
}

class DraftRollback extends Error {
  constructor(
    readonly outcome: IssueOutcome,
    readonly documents: DraftDocument[],
  ) {
    super('draft: rolled back');
  }
}

/**
 * What issuing `period` would produce now — the invoice and any credit note —
 * built by the same code in a transaction that is then rolled back: no number
 * is used, nothing is stored. A month that has not ended yet is drafted as it
 * stands (a preview). The documents are numbered SPECIMEN.
 */
export async function draftInvoice(db: Db, tenant: InvoiceTenant, period: string, options: IssueOptions): Promise<{ outcome: IssueOutcome; documents: DraftDocument[] }> {
  try {
    await db.transaction().execute(async (trx) => {
      const outcome = await issueIn(trx, tenant, period, options);
      const ids = [...(outcome.creditNotes ?? []), ...(outcome.created ? [outcome.invoiceId] : [])];
      const documents: DraftDocument[] = [];
      for (const id of ids) {
        const record = { ...(await getInvoice(trx, tenant.id, id)), number: 'SPECIMEN', specimen: true };
        documents.push({ record, userCalls: await invoiceUserCalls(trx, record, 1000) });
      }
      throw new DraftRollback(outcome, documents);
    });
  } catch (err) {
    if (err instanceof DraftRollback) return { outcome: err.outcome, documents: err.documents };
    throw err;
  }
  throw new Error('unreachable: a draft always rolls back');
}

function skipOf(tenant: InvoiceTenant, reason: SkipReason, invoiceId?: string, creditNotes: string[] = []): IssueOutcome {
  return {
    created: false,
    tenantId: tenant.id,
    reason,
    ...(invoiceId ? { invoiceId } : {}),
    ...(creditNotes.length > 0 ? { creditNotes } : {}),
  };
}

async function issueIn(trx: Trx, tenant: InvoiceTenant, period: string, options: IssueOptions): Promise<IssueOutcome> {
  const { from, end } = billedWindow(period, tenant);
  const skip = (reason: SkipReason, invoiceId?: string, creditNotes: string[] = []) => skipOf(tenant, reason, invoiceId, creditNotes);
  if (tenant.trialEndsAt !== null && tenant.trialEndsAt >= end) return skip('TRIAL');
  {
    // one lock per tenant: a month's corrections read every document of the tenant
    await sql`SELECT pg_advisory_xact_lock(hashtextextended(${`invoice:${tenant.id}`}, 0))`.execute(trx);
    const existing = await trx
      .selectFrom('invoices')
      .select('id')
      .where('tenantId', '=', tenant.id)
      .where('period', '=', period)
      .where('kind', '=', 'invoice')
      .executeTakeFirst();
    if (existing) return skip('ALREADY_INVOICED', existing.id);

    const invoiceId = randomUUID();
    const groups = await freezeItems(trx, tenant, invoiceId, from, end);
    const lines = linesOf(tenant, groups);
    // internal tenants are invoiced at 0: nothing of theirs is ever owed more or less
    const { extra, credits } = tenant.internal
      ? { extra: [], credits: [] }
      : await pendingCorrections(trx, tenant, period).then(({ invoiced, corrections }) => splitCorrections(tenant, corrections, invoiced));
    const creditNotes: string[] = [];
    for (const note of credits) {
      await writeDocument(trx, tenant, note, options);
      creditNotes.push(note.id);
    }
    if (lines.length === 0 && extra.length === 0) return skip('NOTHING_TO_INVOICE', undefined, creditNotes);
    const number = await writeDocument(
      trx,
      tenant,
      { id: invoiceId, kind: 'invoice', period, vatRate: tenant.vatRate, correctsInvoiceId: null, lines: [...lines, ...extra] },
      options,
    );
    return { created: true as const, tenantId: tenant.id, invoiceId, number, creditNotes };
  }
}

export type { CallClass };
