/**
 * "Run invoices": the verb behind POST /v1/invoices/run, `forfait invoices run`
 * and the monthly job. Each tenant's invoice is its own transaction (issue.ts),
 * so one tenant's failure does not undo the others' and a rerun completes them.
 */
import type { Db } from '../../db/connection.js';
import { draftInvoice, issueInvoice, loadInvoiceTenants, type DraftDocument, type InvoiceTenant, type IssueOutcome, type SkipReason } from './issue.js';
import { issuerPlaceholders, type Issuer } from './issuer.js';
import { ConflictError } from '../shared/errors.js';
import { monthStart, previousPeriod } from '../../engine/periods.js';
import { parsePeriod } from './period.js';
import type { Actor } from '../audit/audit.js';

export interface RunResult {
  created: string[];
  /** Credit notes issued with the run: months invoiced before whose calls now cost less (issue 17). */
  creditNotes: string[];
  skipped: { tenantId: string; period: string; reason: SkipReason; invoiceId?: string }[];
  /** A draft run: the documents it would issue, never stored (SPECIMEN). */
  drafts?: DraftDocument[];
}

export interface RunOptions {
  issuer: Issuer;
  now?: Date;
  /** Tenants invoiced at once (each its own transaction). */
  concurrency?: number;
  /** Build the documents and roll them back: nothing stored, no number used, stamped SPECIMEN. */
  draft?: boolean;
  /** Who asked (the API): each invoice issued is in the audit trail (the monthly job's are not). */
  actor?: Actor;
}

/**
 * A real invoice carries the issuer's legal mentions: while they are the
 * placeholder defaults, issuing for a tenant that is billed is refused (409
 * ISSUER_NOT_CONFIGURED), before anything is written. Internal tenants (never
 * billed) and drafts go ahead.
 */
export function refuseUnconfiguredIssuer(issuer: Issuer, tenants: readonly InvoiceTenant[], draft = false): void {
  if (draft || !tenants.some((t) => !t.internal)) return;
  const placeholders = issuerPlaceholders(issuer);
  if (placeholders.length === 0) return;
  throw new ConflictError(
    'ISSUER_NOT_CONFIGURED',
    `the issuer settings are placeholders: set ${placeholders.join(', ')} before issuing real invoices, or run a draft`,
    placeholders.map((field) => ({ field, message: 'still the placeholder default' })),
  );
}

async function runEach(db: Db, work: { tenant: InvoiceTenant; period: string }[], options: RunOptions): Promise<RunResult> {
  const now = options.now ?? new Date();
  const result: RunResult = { created: [], creditNotes: [], skipped: [] };
  const outcomes: { period: string; outcome: IssueOutcome }[] = new Array(work.length);
  const drafts: DraftDocument[] = [];
  let next = 0;
  const worker = async () => {
    while (next < work.length) {
      const i = next++;
      const { tenant, period } = work[i]!;
      if (options.draft) {
        const d = await draftInvoice(db, tenant, period, { now, issuer: options.issuer });
        drafts.push(...d.documents);
        outcomes[i] = { period, outcome: d.outcome.created ? { ...d.outcome, invoiceId: '', creditNotes: [] } : { ...d.outcome, creditNotes: [] } };
        continue;
      }
      const outcome = await issueInvoice(db, tenant, period, { now, issuer: options.issuer, actor: options.actor });
      outcomes[i] = { period, outcome };
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 2, work.length)) }, worker));
  for (const { period, outcome } of outcomes) {
    result.creditNotes.push(...(outcome.creditNotes ?? []));
    if (outcome.created) {
      if (!options.draft) result.created.push(outcome.invoiceId);
    }
    else result.skipped.push({ tenantId: outcome.tenantId, period, reason: outcome.reason, ...(outcome.invoiceId ? { invoiceId: outcome.invoiceId } : {}) });
  }
  if (options.draft) result.drafts = drafts;
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
  refuseUnconfiguredIssuer(options.issuer, tenants, options.draft);
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
  const placeholders = issuerPlaceholders(options.issuer).length > 0;
  const tenants = await loadInvoiceTenants(db, options.scope);
  // the job does not stop: billed tenants wait (ISSUER_NOT_CONFIGURED) until the issuer is set, internal ones are invoiced
  const waiting = placeholders ? tenants.filter((t) => !t.internal) : [];
  const due = (placeholders ? tenants.filter((t) => t.internal) : tenants)
    .filter((t) => now.getTime() >= monthStart(now, t.timezone).getTime() + options.graceHours * 3_600_000)
    .map((tenant) => ({ tenant, period: previousPeriod(now, tenant.timezone) }));
  const result = await runEach(db, due, { ...options, now });
  for (const t of waiting) result.skipped.push({ tenantId: t.id, period: previousPeriod(now, t.timezone), reason: 'ISSUER_NOT_CONFIGURED' });
  return result;
}
