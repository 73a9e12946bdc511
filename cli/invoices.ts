// `forfait invoices run --period YYYY-MM`: the verb behind POST /v1/invoices/run and the monthly job.
import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { ConflictError, ValidationError } from '../services/shared/errors.js';
import { issueInvoice, loadInvoiceTenants } from '../services/invoices/issue.js';
import { parsePeriod } from '../services/invoices/period.js';
import { refuseUnconfiguredIssuer, type RunResult } from '../services/invoices/run.js';
import { settings } from './config.js';
import { fail, withDatabase } from './context.js';

export function invoicesCommand(): Command {
  const invoices = new Command('invoices').description('monthly invoices');
  invoices
    .command('run')
    .description('issue the invoices of a month for every tenant (or one); a month already invoiced is skipped. Prints { created, skipped } as JSON')
    .requiredOption('--period <YYYY-MM>', 'the month, in each tenant’s timezone')
    .option('--tenant <id>', 'only this tenant')
    .action(async (opts: { period: string; tenant?: string }) => {
      try {
        parsePeriod(opts.period);
      } catch (err) {
        if (err instanceof ValidationError) fail(`--period: ${err.details[0]?.message ?? err.message}`);
        throw err;
      }
      const result = await withDatabase(async ({ db }) => {
        const tenants = await loadInvoiceTenants(db, opts.tenant ? { tenantId: opts.tenant } : {}).catch(() => fail(`no tenant ${opts.tenant}`));
        if (opts.tenant && tenants.length === 0) fail(`no tenant ${opts.tenant}`);
        const bar = process.stderr.isTTY && tenants.length > 20
          ? new cliProgress.SingleBar({ format: 'invoicing [{bar}] {value}/{total} tenants', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic)
          : undefined;
        bar?.start(tenants.length, 0);
        const out: RunResult = { created: [], creditNotes: [], skipped: [] };
        const { issuer } = settings().invoicing;
        try {
          refuseUnconfiguredIssuer(issuer, tenants);
        } catch (err) {
          if (err instanceof ConflictError) fail(`${err.code}: ${err.message}`);
          throw err;
        }
        const now = new Date();
        try {
          for (const tenant of tenants) {
            const r = await issueInvoice(db, tenant, opts.period, { now, issuer });
            out.creditNotes.push(...(r.creditNotes ?? []));
            if (r.created) out.created.push(r.invoiceId);
            else out.skipped.push({ tenantId: r.tenantId, period: opts.period, reason: r.reason, ...(r.invoiceId ? { invoiceId: r.invoiceId } : {}) });
            bar?.increment();
          }
        } finally {
          bar?.stop();
        }
        return out;
      });
      process.stdout.write(JSON.stringify(result) + '\n');
    });
  return invoices;
}
