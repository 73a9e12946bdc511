// `forfait users import|export`: the same verbs as the HTTP API, for scripts.
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';
import cliProgress from 'cli-progress';
import { Command, Option } from 'commander';
import { exportUsersCsv, type ExportFormat } from '../services/users/export.js';
import { countUsers } from '../services/users/repo.js';
import { importModes, importUsers, type ImportMode, type ImportProgress } from '../services/users/import.js';
import { systemActor } from '../services/audit/audit.js';
import { fail, failOnInputError, withDatabase } from './context.js';

/** Files at least this long get a progress bar (on a terminal). */
const progressFrom = 5_000;

/** The import's progress on a terminal (`stream`, stderr by default); nothing elsewhere. */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): { update(p: ImportProgress): void; stop(): void } {
  if (!stream.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { format: `${label} {phase} [{bar}] {percentage}% {value}/{total}`, stream, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let total = 0;
  return {
    update(p) {
      if (!started && p.total < progressFrom) return;
      if (!started) {
        bar.start(p.total, p.done, { phase: p.phase });
        started = true;
      } else if (p.total !== total) {
        // a phase's total is known better as it goes (the validate phase counts line breaks first): the bar ends at 100 %
        bar.setTotal(p.total);
      }
      total = p.total;
      bar.update(p.done, { phase: p.phase });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

export async function tenantExists(db: Parameters<Parameters<typeof withDatabase>[0]>[0]['db'], id: string): Promise<boolean> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) return false;
  return (await db.selectFrom('tenants').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
}

export function usersCommand(): Command {
  const users = new Command('users').description('the directory of a tenant: users CSV import and export (SPEC §6)');

  users
    .command('import <file>')
    .description('import a users CSV (13 fields, optional 14–16); every line is checked first, any error → nothing written')
    .requiredOption('--tenant <id>', 'tenant id')
    .addOption(new Option('--mode <mode>', 'append: only new; upsert: create or update; sync: upsert and delete the absent').choices(importModes).makeOptionMandatory())
    .option('--dry-run', 'print the plan (created, updated, deleted, unchanged) without writing')
    .action(async (file: string, opts: { tenant: string; mode: ImportMode; dryRun?: boolean }) => {
      const csv = await readFile(file).catch((err: unknown) => fail(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`));
      await withDatabase(async ({ db }) => {
        if (!(await tenantExists(db, opts.tenant))) fail(`no tenant ${opts.tenant}`);
        const bar = progressBar(opts.dryRun ? 'dry run' : 'import');
        try {
          const result = await importUsers(db, opts.tenant, csv, { mode: opts.mode, dryRun: opts.dryRun ?? false, createdBy: 'cli', actor: systemActor('cli:users import'), onProgress: (p) => bar.update(p) });
          bar.stop();
          process.stdout.write(JSON.stringify(result) + '\n');
          // what reading the file did (a conversion from Windows-1252, a BOM removed), as `cdrs import` says it
          for (const note of result.notes) process.stderr.write(`forfait: ${note}\n`);
        } catch (err) {
          bar.stop();
          failOnInputError(err);
        }
      });
    });

  users
    .command('export')
    .description('write the directory as a users CSV (the import format); sync-importing it changes nothing')
    .requiredOption('--tenant <id>', 'tenant id')
    .option('--out <file>', 'file to write (default: standard output)')
    .addOption(new Option('--format <format>', 'full: 16 fields; portal: the portal’s 13').choices(['full', 'portal']).default('full'))
    .action(async (opts: { tenant: string; out?: string; format: ExportFormat }) => {
      await withDatabase(async ({ db }) => {
        if (!(await tenantExists(db, opts.tenant))) fail(`no tenant ${opts.tenant}`);
        const out = opts.out ? createWriteStream(opts.out) : process.stdout;
        const total = await countUsers(db, opts.tenant);
        const bar = opts.out ? progressBar('export') : { update: () => undefined, stop: () => undefined };
        let done = 0;
        for await (const chunk of exportUsersCsv(db, opts.tenant, opts.format)) {
          if (!out.write(chunk)) await once(out, 'drain');
          done += chunk.split('\r\n').length - 1;
          bar.update({ phase: 'write', done, total });
        }
        bar.stop();
        if (opts.out) {
          out.end();
          await once(out, 'finish');
          process.stderr.write(`${done} users written to ${opts.out}\n`);
        }
      });
    });

  return users;
}
