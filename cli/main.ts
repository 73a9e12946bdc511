#!/usr/bin/env node
import { systemActor } from '../services/audit/audit.js';
import { Command, Option } from 'commander';
import { migrateToLatest } from '../db/migrate.js';
import { connect } from '../db/connection.js';
import { startEmbedded } from '../db/embedded.js';
import { insertKey, unknownRoles } from '../services/access/access.js';
import { defaultReseller } from '../services/access/bootstrap.js';
import { createTenant, listTenants } from '../services/tenants/tenants.js';
import { settings } from './config.js';
import { serveUntilSignal } from './serve.js';
import { fail, withDatabase } from './context.js';
import { usersCommand } from './users.js';
import { cdrsCommand } from './cdrs.js';
import { archivesCommand } from './archives.js';
import { invoicesCommand } from './invoices.js';
import { devicesCommand } from './devices.js';
import { tariffsCommand } from './tariffs.js';

const program = new Command()
  .name('forfait')
  .description('Forfait: prepaid call rating and billing. Uses DATABASE_URL, or the embedded PostgreSQL under FORFAIT_DATA_DIR (default ./var).')
  .showHelpAfterError();

program
  .command('serve')
  .description('start the HTTP API and the jobs (what `npm start` runs)')
  .addOption(new Option('-p, --port <port>', 'port to listen on (env: PORT, default: 8080)'))
  .addOption(new Option('--host <host>', 'address to listen on (env: HOST, default: 0.0.0.0)'))
  .option('--no-jobs', 'do not run the scheduled jobs')
  .action(async (opts: { port?: string; host?: string; jobs: boolean }) => {
    await serveUntilSignal({ settings: settings({ PORT: opts.port, HOST: opts.host }), jobs: opts.jobs });
  });

program
  .command('migrate')
  .description('bring the database schema to the latest version and exit')
  .action(async () => {
    const { databaseUrl, dataDir } = settings();
    let url = databaseUrl;
    const embedded = url ? undefined : await startEmbedded({ dataDir });
    url ??= embedded!.url;
    const handle = connect(url, { max: 1 });
    try {
      const result = await migrateToLatest(handle.db);
      const applied = (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
      process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'schema already up to date\n');
    } catch (err) {
      process.stderr.write(`forfait migrate: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    } finally {
      await handle.close();
      await embedded?.stop();
    }
  });

const keys = program.command('keys').description('API keys');
keys
  .command('create')
  .description('create an API key and print it (shown once)')
  .option('--reseller', 'a reseller key (manages tenants, product types, tariffs)')
  .option('--tenant <id>', 'a key of this tenant')
  .option('--roles <roles>', 'comma-separated roles for a tenant key', 'administrateur')
  .option('--pbx', 'a pbx key of the tenant (pbx:authorize and cdrs:write only)')
  .option('--name <name>', 'a label for the key', 'cli')
  .action(async (opts: { reseller?: boolean; tenant?: string; roles: string; pbx?: boolean; name: string }) => {
    if (!opts.reseller === !opts.tenant) fail('give either --reseller or --tenant <id>');
    const key = await withDatabase(async ({ db }) => {
      if (opts.reseller) {
        return insertKey(db, { principal: 'reseller', name: opts.name, resellerId: await defaultReseller(db), createdBy: 'cli' });
      }
      const tenant = await db.selectFrom('tenants').select('id').where('id', '=', opts.tenant!).executeTakeFirst().catch(() => undefined);
      if (!tenant) fail(`no tenant ${opts.tenant}`);
      if (opts.pbx) return insertKey(db, { principal: 'pbx', name: opts.name, tenantId: tenant.id, createdBy: 'cli' });
      const roles = opts.roles.split(',').map((r) => r.trim()).filter(Boolean);
      const unknown = await unknownRoles(db, tenant.id, roles);
      if (unknown.length) fail(`unknown role(s): ${unknown.join(', ')}`);
      return insertKey(db, { principal: 'user', name: opts.name, roles, tenantId: tenant.id, createdBy: 'cli' });
    });
    process.stdout.write(`${key.key}\n`);
  });

const tenants = program.command('tenants').description('tenants (client companies)');
tenants
  .command('list')
  .description('list tenants as JSON lines')
  .action(async () => {
    await withDatabase(async ({ db }) => {
      const resellerId = await defaultReseller(db);
      let cursor: string | undefined;
      do {
        const page = await listTenants(db, resellerId, 500, cursor);
        for (const t of page.items) process.stdout.write(JSON.stringify(t) + '\n');
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
    });
  });
tenants
  .command('create')
  .description('provision a tenant and print its first administrateur key')
  .requiredOption('--name <name>', 'company name (unique)')
  .option('--product-type <code>', 'essentiel | pro | entreprise | …', 'essentiel')
  .option('--country <cc>', 'ISO 3166-1 alpha-2', 'FR')
  .option('--reference <ref>', 'reference printed on invoices')
  .option('--tariff <id>', 'tariff id')
  .option('--timezone <zone>', 'IANA zone (default: the country’s)')
  .action(async (opts: { name: string; productType: string; country: string; reference?: string; tariff?: string; timezone?: string }) => {
    await withDatabase(async ({ db }) => {
      const resellerId = await defaultReseller(db);
      const result = await createTenant(
        db,
        resellerId,
        { name: opts.name, productType: opts.productType, country: opts.country, reference: opts.reference ?? null, tariffId: opts.tariff ?? null, timezone: opts.timezone },
        'cli',
        systemActor('cli:tenants create'),
      ).catch((err: unknown) => fail(err instanceof Error ? `${err.message}${'details' in err ? ' ' + JSON.stringify((err as { details: unknown }).details) : ''}` : String(err)));
      process.stdout.write(JSON.stringify(result.tenant) + '\n');
      process.stdout.write(`administrateur key (shown once): ${result.adminKey}\n`);
    });
  });

program.addCommand(usersCommand());
program.addCommand(cdrsCommand());
program.addCommand(archivesCommand());
program.addCommand(invoicesCommand());
program.addCommand(devicesCommand());
program.addCommand(tariffsCommand());

await program.parseAsync(process.argv);
