// `forfait cdrs import|spool`: the same verbs as POST /v1/cdrs/import and the spool job.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import cliProgress from 'cli-progress';
import { Command, Option } from 'commander';
import { defaultSpoolRoot, ingestCdrSpool } from '../jobs/ingestCdrSpool.js';
import { CDR_FORMATS, type CdrFormat } from '../services/cdrs/formats.js';
import { importCdrCsv } from '../services/cdrs/importCsv.js';
import { systemActor } from '../services/audit/audit.js';
import type { RejectedItem } from '../services/cdrs/types.js';
import { NotFoundError, ValidationError } from '../services/shared/errors.js';
import { TariffIndexCache } from '../services/tariffs/tariffs.js';
import { settings } from './config.js';
import { fail, withDatabase } from './context.js';

/** The file's chunks, with a progress bar by bytes on a terminal. */
async function* withProgress(file: string, size: number): AsyncGenerator<Buffer> {
  const bar = process.stderr.isTTY && size > 1_000_000
    ? new cliProgress.SingleBar({ format: 'rating [{bar}] {percentage}% {value}/{total} MB', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic)
    : undefined;
  const mb = (n: number) => Math.round(n / 1e5) / 10;
  bar?.start(mb(size), 0);
  let read = 0;
  try {
    for await (const chunk of createReadStream(file)) {
      read += (chunk as Buffer).length;
      bar?.update(mb(read));
      yield chunk as Buffer;
    }
  } finally {
    bar?.stop();
  }
}

/** Exit code of an import that rated the file but rejected some of its rows (1: nothing could be imported, 2: bad usage). */
export const REJECTED_EXIT_CODE = 3;

/** When every row was refused for its shape, the format given is probably not the file's. */
function formatAdvice(rejected: readonly RejectedItem[]): string {
  const first = rejected[0];
  if (first === undefined || !rejected.every((r) => r.reason === 'MALFORMED' && (r.field === 'row' || r.field === 'header'))) return '';
  return '; every row has the wrong shape: is --format the file\'s (native, asterisk for Master.csv, freeswitch for mod_cdr_csv)?';
}

export function cdrsCommand(): Command {
  const cdrs = new Command('cdrs').description('call detail records');
  cdrs
    .command('import')
    .description('rate a CDR CSV file (native with header, Asterisk Master.csv or FreeSWITCH mod_cdr_csv); prints the summary as JSON')
    .argument('<file>', 'the CSV file')
    .requiredOption('--tenant <id>', 'the tenant whose CDRs these are')
    .addOption(new Option('--format <format>', 'file format').choices([...CDR_FORMATS]).default('native'))
    .action(async (file: string, opts: { tenant: string; format: CdrFormat }) => {
      const size = await stat(file).then((s) => s.size, () => fail(`cannot read ${file}`));
      const summary = await withDatabase(async ({ db, sql }) => {
        const deps = { db, sql, tariffs: new TariffIndexCache(db) };
        try {
          return await importCdrCsv(deps, opts.tenant, withProgress(file, size), { format: opts.format, source: `cli:${opts.format}`, actor: systemActor('cli:cdrs import') });
        } catch (err) {
          if (err instanceof ValidationError) {
            for (const d of err.details) process.stderr.write(`line ${d.line ?? '?'}${d.field ? ` ${d.field}` : ''}: ${d.message}\n`);
            fail(`${err.message}; nothing was imported`);
          }
          if (err instanceof NotFoundError) fail(`no tenant ${opts.tenant}`);
          throw err;
        }
      });
      process.stdout.write(JSON.stringify(summary) + '\n');
      for (const note of summary.notes) process.stderr.write(`forfait: ${note}\n`);
      if (summary.unknownRangeCount > 0) {
        process.stderr.write(`forfait: ${summary.unknownRangeCount} call(s) to numbers outside the known ranges were rated all the same (numberCheck unknown_range)\n`);
      }
      if (summary.rejectedCount > 0) {
        // the rest is rated; a script must still know that some rows were not
        process.stderr.write(
          `forfait: ${summary.rejectedCount} row(s) rejected, listed in "rejected" with their line; fix them and run \`forfait cdrs import\` again (rated rows are not rated twice)${formatAdvice(summary.rejected)}\n`,
        );
        process.exitCode = REJECTED_EXIT_CODE;
      }
    });
  cdrs
    .command('spool')
    .description('rate the files waiting in var/spool/cdr/<tenantId>/ once (what the scheduled job does)')
    .option('--dir <dir>', 'spool root (default: spool/cdr under FORFAIT_DATA_DIR)')
    .action(async (opts: { dir?: string }) => {
      const dir = opts.dir ?? defaultSpoolRoot(settings().dataDir);
      const result = await withDatabase(({ db, sql }) => ingestCdrSpool({ db, sql, tariffs: new TariffIndexCache(db) }, dir, { settleMs: 0 }));
      process.stdout.write(JSON.stringify(result) + '\n');
    });
  return cdrs;
}
