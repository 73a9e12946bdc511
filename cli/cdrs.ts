// `forfait cdrs import|spool`: the same verbs as POST /v1/cdrs/import and the spool job.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import cliProgress from 'cli-progress';
import { Command, Option } from 'commander';
import { defaultSpoolRoot, ingestCdrSpool } from '../jobs/ingestCdrSpool.js';
import { CDR_FORMATS, type CdrFormat } from '../services/cdrs/formats.js';
import { importCdrCsv } from '../services/cdrs/importCsv.js';
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
          return await importCdrCsv(deps, opts.tenant, withProgress(file, size), { format: opts.format, source: `cli:${opts.format}` });
        } catch (err) {
          if (err instanceof ValidationError) fail(`${err.message} ${JSON.stringify(err.details)}`);
          if (err instanceof NotFoundError) fail(`no tenant ${opts.tenant}`);
          throw err;
        }
      });
      process.stdout.write(JSON.stringify(summary) + '\n');
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
