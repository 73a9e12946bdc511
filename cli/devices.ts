// `forfait devices import|export`: the devices CSV (issue 21) for scripts,
// through the same verbs as the HTTP API.
import { readFile, writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { DEVICE_STATUSES, type DeviceStatus } from '../engine/deviceStatus.js';
import { exportDevicesCsv, importDevicesCsv } from '../services/devices/csv.js';
import { systemActor } from '../services/audit/audit.js';
import { lineStatesCsv } from '../services/devices/lineStates.js';
import { fail, failOnInputError, withDatabase } from './context.js';
import { tenantExists } from './users.js';

export function devicesCommand(): Command {
  const devices = new Command('devices').description('the phones of a tenant: devices CSV import and export, line-state report (docs/devices.md)');

  devices
    .command('import <file>')
    .description('import a devices CSV (mac, device_type, site, lines, dect_station_id, notes); every line is checked first, any error → nothing written')
    .requiredOption('--tenant <id>', 'tenant id')
    .option('--dry-run', 'print what would be created, updated, unchanged without writing')
    .action(async (file: string, opts: { tenant: string; dryRun?: boolean }) => {
      const csv = await readFile(file, 'utf8').catch((err: unknown) => fail(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`));
      await withDatabase(async ({ db }) => {
        if (!(await tenantExists(db, opts.tenant))) fail(`no tenant ${opts.tenant}`);
        try {
          const result = await importDevicesCsv(db, opts.tenant, csv, { dryRun: opts.dryRun ?? false, now: new Date(), actor: systemActor('cli:devices import') });
          process.stdout.write(JSON.stringify(result) + '\n');
        } catch (err) {
          failOnInputError(err);
        }
      });
    });

  devices
    .command('export')
    .description('write the live devices as a devices CSV (importing it changes nothing), or with --line-states the line-state report')
    .requiredOption('--tenant <id>', 'tenant id')
    .option('--site <name>', 'one site only (default: all sites)')
    .option('--line-states', 'the line-state report: one row per device port, with its line’s status and last registration')
    .addOption(new Option('--status <status>', 'line-state report: only devices with this status').choices(DEVICE_STATUSES))
    .option('--out <file>', 'file to write (default: standard output)')
    .action(async (opts: { tenant: string; site?: string; lineStates?: boolean; status?: DeviceStatus; out?: string }) => {
      if (opts.status !== undefined && !opts.lineStates) fail('--status filters the line-state report: add --line-states');
      await withDatabase(async ({ db }) => {
        if (!(await tenantExists(db, opts.tenant))) fail(`no tenant ${opts.tenant}`);
        const filters = { ...(opts.site !== undefined ? { site: opts.site } : {}), ...(opts.status !== undefined ? { status: opts.status } : {}) };
        const csv = opts.lineStates ? await lineStatesCsv(db, opts.tenant, filters, new Date()) : await exportDevicesCsv(db, opts.tenant, opts.site);
        if (opts.out) {
          await writeFile(opts.out, csv);
          process.stderr.write(`${csv.split('\r\n').length - 2} rows written to ${opts.out}\n`);
        } else process.stdout.write(csv);
      });
    });

  return devices;
}
