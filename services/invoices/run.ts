/**
 * "Run invoices": the verb behind POST /v1/invoices/run, `forfait invoices run`
 * and the monthly job. Each tenant's invoice is its own transaction (issue.ts),
 * so one tenant's failure does not undo the others' and a rerun completes them.
 */
import type { Db } from '../../db/connection.js';
import { issueInvoice, loadInvoiceTenants, type InvoiceTenant, type IssueOutcome, type SkipReason } from './issue.js';
import type { Issuer } from './issuer.js';
import { monthStart, previousPeriod } from '../../engine/periods.js';
import { parsePeriod } from './period.js';
import { recordAudit, type Actor } from '../audit/audit.js';

export interface RunResult {
  created: string[];
  skipped: { tenantId: string; period: string; reason: SkipReason; invoiceId?: string }[];
}

export interface RunOptions {
  issuer: Issuer;
  now?: Date;
  /** Tenants invoiced at once (each its own transaction). */
  concurrency?: number;
  /** Who asked (the API): each invoice issued is in the audit trail (the monthly job's are not). */
  actor?: Actor;
}

async function runEach(db: Db, work: { tenant: InvoiceTenant; period: string }[], options: RunOptions): Promise<RunResult> {
  const now = options.now ?? new Date();
  const result: RunResult = { created: [], skipped: [] };
  const outcomes: { period: string; outcome: IssueOutcome }[] = new Array(work.length);
  let next = 0;
  const worker = async () => {
    while (next < work.length) {
      const i = next++;
      const { tenant, period } = work[i]!;
      const outcome = await issueInvoice(db, tenant, period, { now, issuer: options.issuer });
      outcomes[i] = { period, outcome };
      if (options.actor && outcome.created) {
        await recordAudit(db, options.actor, { tenantId: tenant.id, action: 'invoice.issue', targetType: 'invoice', targetId: outcome.invoiceId, after: { period } });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 2, work.length)) }, worker));
  for (const { period, outcome } of outcomes) {
    if (outcome.created) result.created.push(outcome.invoiceId);
    else result.skipped.push({ tenantId: outcome.tenantId, period, reason: outcome.reason, ...(outcome.invoiceId ? { invoiceId: outcome.invoiceId } : {}) });
  }
  return result;
}

/** Invoices `period` for one tenant, a reseller's tenants, or (no scope) every tenant. */
export async function runInvoices(
  db: Db,
  scope: { tenantId?: string; resellerId?: string },
  period: string,
  options: RunOptions,
): Promise<RunResult> {
  parsePeriod(period);
  const tenants = await loadInvoiceTenants(db, scope);
  return runEach(db, tenants.map((tenant) => ({ tenant, period })), options);
}

/**
 * The scheduled run: for every tenant, the month before the current one in its
 * zone, once `graceHours` of the new month have passed there (CDRs of the last
 * calls of the month arrive a little after it). Idempotent: already invoiced
 * months are skipped, so running it hourly (and at start) is safe and catches up
 * after downtime.
 */
export async function runDueInvoices(db: Db, options: RunOptions & { graceHours: number; scope?: { tenantId?: string; resellerId?: string } }): Promise<RunResult> {
  const now = options.now ?? new Date();
  const due = (await loadInvoiceTenants(db, options.scope))
    .filter((t) => now.getTime() >= monthStart(now, t.timezone).getTime() + options.graceHours * 3_600_000)
    .map((tenant) => ({ tenant, period: previousPeriod(now, tenant.timezone) }));
  return runEach(db, due, { ...options, now });
}
