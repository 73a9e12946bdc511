// `forfait archives run|list|restore`: the CDR archive job once, the archives of a tenant, a month put back for an audit.
import { Command } from 'commander';
import { archiveDueMonths } from '../services/archives/archive.js';
import { listArchives } from '../services/archives/list.js';
import { restoreMonth } from '../services/archives/restore.js';
import { systemActor } from '../services/audit/audit.js';
import { NotFoundError, ValidationError } from '../services/shared/errors.js';
import { settings } from './config.js';
import { fail, withDatabase } from './context.js';

export function archivesCommand(): Command {
  const archives = new Command('archives').description('CDR archives (months past each tenant’s cdrRetentionMonths)');
  archives
    .command('run')
    .description('archive and remove the months past retention now (what the nightly job does); prints what it did as JSON')
    .option('--tenant <id>', 'only this tenant')
    .action(async (opts: { tenant?: string }) => {
      const { archiveDir } = settings();
      const run = await withDatabase(({ db }) => archiveDueMonths(db, { dir: archiveDir, now: new Date(), ...(opts.tenant ? { tenantIds: [opts.tenant] } : {}) }));
      process.stdout.write(JSON.stringify(run) + '\n');
    });
  archives
    .command('list')
    .description('the archive files of a tenant, as JSON')
    .requiredOption('--tenant <id>', 'the tenant')
    .action(async (opts: { tenant: string }) => {
      const items = await withDatabase(({ db }) => listArchives(db, opts.tenant));
      process.stdout.write(JSON.stringify(items) + '\n');
    });
  archives
    .command('restore')
    .description('put an archived month of a tenant back into the database (checked against its manifest first); the next archive run removes it again')
    .requiredOption('--tenant <id>', 'the tenant')
    .requiredOption('--month <YYYY-MM>', 'the UTC month')
    .action(async (opts: { tenant: string; month: string }) => {
      const { archiveDir } = settings();
      const result = await withDatabase(async ({ db }) => {
        try {
          return await restoreMonth(db, archiveDir, opts.tenant, opts.month, systemActor('cli:archives restore'));
        } catch (err) {
          if (err instanceof ValidationError) fail(`${err.message} ${JSON.stringify(err.details)}`);
          if (err instanceof NotFoundError) fail(`no archive of ${opts.month} for tenant ${opts.tenant}`);
          throw err;
        }
      });
      process.stdout.write(JSON.stringify(result) + '\n');
    });
  return archives;
}
