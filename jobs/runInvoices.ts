import type { Db } from '../db/connection.js';
import type { Issuer } from '../services/invoices/issuer.js';
import { runDueInvoices, type RunResult } from '../services/invoices/run.js';

/**
 * SPEC §9/§10: the previous month's invoices on the 1st, in each tenant's zone.
 * Scheduled hourly (and run at start): each tenant whose month ended at least
 * `graceHours` ago (FORFAIT_INVOICE_GRACE_HOURS, default 2) gets its previous month invoiced
 * once; months already invoiced are skipped, so reruns and catch-up after
 * downtime are safe.
 */
export async function runMonthlyInvoices(
  db: Db,
  invoicing: { issuer: Issuer; graceHours: number },
  now: Date = new Date(),
): Promise<{ created: number; skipped: Record<string, number> }> {
  const result: RunResult = await runDueInvoices(db, { ...invoicing, now });
  const skipped: Record<string, number> = {};
  for (const s of result.skipped) skipped[s.reason] = (skipped[s.reason] ?? 0) + 1;
  return { created: result.created.length, skipped };
}
