import { Migrator, type Kysely, type Migration, type MigrationResultSet } from 'kysely';
import * as initial from './migrations/2026_11_21_0001_initial.js';
import * as directory from './migrations/2026_11_22_0002_directory.js';
import * as accounts from './migrations/2026_11_22_0003_accounts.js';
import * as cdrs from './migrations/2026_11_22_0004_cdrs.js';
import * as invoices from './migrations/2026_11_22_0005_invoices.js';
import * as ingestSpeed from './migrations/2026_11_22_0006_ingest_speed.js';
import * as indicators from './migrations/2026_11_22_0007_indicators.js';
import * as usersImport from './migrations/2026_11_22_0008_users_import.js';
import * as reservations from './migrations/2026_11_22_0009_reservations.js';
import * as noUserRev from './migrations/2026_11_22_0010_no_user_rev.js';
import * as importSnapshotBatches from './migrations/2026_11_22_0011_import_snapshot_batches.js';
import * as usersFillfactor from './migrations/2026_11_22_0012_users_fillfactor.js';
import * as reservationsHot from './migrations/2026_11_22_0013_reservations_hot.js';
import * as reservationsOpenById from './migrations/2026_11_22_0014_reservations_open_by_id.js';
import * as reservationAnswerText from './migrations/2026_11_22_0015_reservation_answer_text.js';
import * as indicatorAdd from './migrations/2026_11_22_0016_indicator_add.js';
import * as numberCheckAndRelease from './migrations/2026_12_02_0030_number_check_and_release.js';
import * as billingPeriods from './migrations/2026_12_02_0020_billing_periods.js';
import * as cdrsPartitioned from './migrations/2026_12_02_0050_cdrs_partitioned.js';
import * as cdrArchives from './migrations/2026_12_02_0051_cdr_archives.js';
import * as cdrBoundaryKeys from './migrations/2026_12_02_0052_cdr_boundary_keys.js';
import * as devices from './migrations/2026_12_02_0040_devices.js';
import * as cluster from './migrations/2026_12_02_0080_cluster.js';
import * as invoiceItemDetails from './migrations/2026_12_03_0150_invoice_item_details.js';
import * as people from './migrations/2026_12_02_0060_people.js';
import * as audit from './migrations/2026_12_02_0061_audit.js';
import * as sessionIdle from './migrations/2026_12_03_0110_session_idle.js';

// Listed statically (not read from a folder) so migrations work the same from
// tsx, a bundle or the test runner. Names sort by date.
const migrations: Record<string, Migration> = {
  '2026_11_21_0001_initial': initial,
  '2026_11_22_0002_directory': directory,
  '2026_11_22_0003_accounts': accounts,
  '2026_11_22_0004_cdrs': cdrs,
  '2026_11_22_0005_invoices': invoices,
  '2026_11_22_0006_ingest_speed': ingestSpeed,
  '2026_11_22_0007_indicators': indicators,
  '2026_11_22_0008_users_import': usersImport,
  '2026_11_22_0009_reservations': reservations,
  '2026_11_22_0010_no_user_rev': noUserRev,
  '2026_11_22_0011_import_snapshot_batches': importSnapshotBatches,
  '2026_11_22_0012_users_fillfactor': usersFillfactor,
  '2026_11_22_0013_reservations_hot': reservationsHot,
  '2026_11_22_0014_reservations_open_by_id': reservationsOpenById,
  '2026_11_22_0015_reservation_answer_text': reservationAnswerText,
  '2026_11_22_0016_indicator_add': indicatorAdd,
  '2026_12_02_0020_billing_periods': billingPeriods,
  '2026_12_02_0030_number_check_and_release': numberCheckAndRelease,
  '2026_12_02_0040_devices': devices,
  '2026_12_02_0050_cdrs_partitioned': cdrsPartitioned,
  '2026_12_02_0051_cdr_archives': cdrArchives,
  '2026_12_02_0052_cdr_boundary_keys': cdrBoundaryKeys,
  '2026_12_02_0080_cluster': cluster,
  '2026_12_02_0060_people': people,
  '2026_12_02_0061_audit': audit,
  '2026_12_03_0150_invoice_item_details': invoiceItemDetails,
  '2026_12_03_0110_session_idle': sessionIdle,
};

export async function migrateToLatest(db: Kysely<any>): Promise<MigrationResultSet> {
  // Migrations are numbered in blocks per piece of work (docs/schema.md): a database that ran a later
  // block before an earlier one landed (a branch's, a benchmark data set's) still takes the earlier one.
  // Each migration stands alone, so the order of two blocks never matters.
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations }, allowUnorderedMigrations: true });
  const result = await migrator.migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error');
    const cause = result.error instanceof Error ? result.error.message : String(result.error);
    throw new Error(`migration ${failed?.migrationName ?? '?'} failed: ${cause}`, { cause: result.error });
  }
  return result;
}

/** Brings the schema up to (and including) migration `name`: a test starts from the schema as it was. */
export async function migrateTo(db: Kysely<any>, name: string): Promise<MigrationResultSet> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const result = await migrator.migrateTo(name);
  if (result.error) throw result.error;
  return result;
}
