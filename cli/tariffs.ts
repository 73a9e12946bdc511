// `forfait tariffs simulate <file>`: the what-if simulation of POST /v1/tariffs/{id}/simulate (issue 25), as the operator.
import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { simulationCsv, simulationResult } from '../services/simulation/report.js';
import { runSimulation } from '../services/simulation/simulate.js';
import { periodRange } from '../services/cdrs/view.js';
import { readTariffFile, TariffIndexCache } from '../services/tariffs/tariffs.js';
import { fail, failOnInputError, withDatabase } from './context.js';

export function tariffsCommand(): Command {
  const tariffs = new Command('tariffs').description('tariffs');
  tariffs
    .command('simulate')
    .description('rate the CDRs of a past period again under a draft tariff CSV (never saved) and print what each tenant would have paid; nothing is written')
    .argument('<file>', 'the draft tariff CSV (SPEC §6)')
    .requiredOption('--from <date>', 'first day of the period (each tenant’s timezone)')
    .requiredOption('--to <date>', 'end of the period, excluded')
    .option('--tenant <id...>', 'these tenants')
    .option('--tariff <id>', 'the tenants rated with this tariff now (when no --tenant is given)')
    .addOption(new Option('--by <what>', 'one CSV line per tenant or per user').choices(['tenant', 'user']).default('tenant'))
    .option('--json', 'the whole result (top users, destinations) as JSON instead of CSV')
    .action(async (file: string, opts: { from: string; to: string; tenant?: string[]; tariff?: string; by: 'tenant' | 'user'; json?: boolean }) => {
      const bytes = await readFile(file).catch(() => fail(`cannot read ${file}`));
      if (opts.tenant === undefined && opts.tariff === undefined) fail('name the tenants: --tenant <id...> or --tariff <id>');
      const out = await withDatabase(async ({ db, sql }) => {
        try {
          periodRange(opts, 'UTC');
          const { rates } = await readTariffFile(new Uint8Array(bytes));
          const tenantIds =
            opts.tenant ??
            (await db.selectFrom('tenants').select('id').where('tariffId', '=', opts.tariff!).orderBy('name').orderBy('id').execute()).map((t) => t.id);
          const runs = await runSimulation({ db, sql, tariffs: new TariffIndexCache(db) }, { rates, from: opts.from, to: opts.to, tenantIds }, {
            onProgress: (p) => {
              if (process.stderr.isTTY) process.stderr.write(`\rtenants ${p.tenantsDone}/${p.tenants}, ${p.cdrs} CDRs rated`);
            },
          });
          if (process.stderr.isTTY) process.stderr.write('\n');
          if (opts.json) return `${JSON.stringify(simulationResult({ tariffId: opts.tariff ?? file, draft: true, from: opts.from, to: opts.to }, runs), null, 2)}\n`;
          return simulationCsv(runs, opts.by);
        } catch (err) {
          return failOnInputError(err);
        }
      });
      process.stdout.write(out);
    });
  return tariffs;
}
