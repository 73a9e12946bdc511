/**
 * An invoice keeps its frozen details (issue 22). What the details CSV shows of
 * an invoiced call is copied from its CDR into its invoice_items row when the
 * invoice is issued (migration 0150), so the CDR's month may be archived and
 * dropped and the details CSV stays the same file. Why frozen and not read back
 * from the archive: see docs/invoices.md ("Details of archived months").
 */
import { sql } from 'kysely';
import type { Db, Trx } from '../../db/connection.js';
import { ConflictError } from '../shared/errors.js';
import { billedWindow } from './period.js';

/** The CDR columns an invoice item keeps, under the same names in invoice_items. */
export const FROZEN_CALL_COLUMNS = ['call_id', 'started_at', 'callee', 'destination', 'class', 'identifiant'] as const;

/** `c.call_id, c.started_at, …`: the frozen columns read from the CDR aliased `c`. */
export const frozenFromCdr = sql.raw(FROZEN_CALL_COLUMNS.map((c) => `c.${c}`).join(', '));
/** `call_id, started_at, …`: the frozen columns of invoice_items. */
export const frozenColumns = sql.raw(FROZEN_CALL_COLUMNS.join(', '));

/**
 * Copies the CDR's details into the tenant's call items that lack them: the
 * items issued before migration 0150 whose month was archived before it, when
 * `forfait archives restore` puts their CDRs back (the one change migration
 * 0150's trigger lets an invoice item take). Returns how many items it filled.
 */
export async function freezeCallDetails(trx: Trx, tenantId: string): Promise<number> {
  const r = await sql`
    UPDATE invoice_items i
       SET (${frozenColumns}) = (${frozenFromCdr})
      FROM cdrs c
     WHERE i.tenant_id = ${tenantId} AND i.kind = 'call' AND i.call_id IS NULL
       AND c.tenant_id = i.tenant_id AND c.id = i.cdr_id`.execute(trx);
  return Number(r.numAffectedRows ?? 0n);
}

/**
 * Refuses (409) the details of an invoice some of whose calls have no frozen
 * details — items issued before migration 0150 whose month was archived before
 * it — naming the archive files to restore, rather than a file with blank calls.
 */
export async function assertCallsFrozen(db: Db, invoice: { id: string; tenantId: string; period: string }, tenant: { timezone: string; trialEndsAt: Date | null }): Promise<void> {
  const missing = await sql<{ period: string; n: number }>`
    SELECT COALESCE(l.period, ${invoice.period}) AS period, count(*)::int AS n
      FROM invoice_items i
      LEFT JOIN invoice_lines l ON l.tenant_id = i.tenant_id AND l.invoice_id = i.invoice_id AND l.line_no = i.line_no
     WHERE i.tenant_id = ${invoice.tenantId} AND i.invoice_id = ${invoice.id} AND i.kind = 'call' AND i.call_id IS NULL
     GROUP BY 1 ORDER BY 1`.execute(db);
  if (missing.rows.length === 0) return;
  const months = new Set<string>();
  for (const { period } of missing.rows) {
    const w = billedWindow(period, tenant);
    for (const at of [w.start, new Date(w.end.getTime() - 1)]) months.add(at.toISOString().slice(0, 7));
  }
  const files = await db
    .selectFrom('cdrArchives')
    .select(['file', sql<string>`to_char(month, 'YYYY-MM')`.as('month')])
    .where('tenantId', '=', invoice.tenantId)
    .where(sql<boolean>`to_char(month, 'YYYY-MM') = ANY(${[...months]}::text[])`)
    .orderBy('month')
    .orderBy('part')
    .execute();
  const n = missing.rows.reduce((s, r) => s + r.n, 0);
  throw new ConflictError(
    'CONFLICT',
    `${n} call${n === 1 ? '' : 's'} of this invoice were archived before invoices froze their details: restore ${files.length > 0 ? files.map((f) => f.file).join(', ') : `the months ${[...months].join(', ')}`} (forfait archives restore) and ask again`,
    files.length > 0
      ? files.map((f) => ({ field: 'archive', value: f.file, message: `restore month ${f.month}: forfait archives restore --month ${f.month}` }))
      : [...months].map((m) => ({ field: 'month', value: m, message: 'no archive of this month is recorded' })),
  );
}
