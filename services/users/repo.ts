// The directory's data layer: the tenant settings every directory verb reads
// (and locks), and the queries more than one verb shares. Kysely, typed from
// db/schema.ts.
import { sql } from 'kysely';
import type { Db, Trx } from '../../db/connection.js';
import type { ProductType, Tenant } from '../../db/schema.js';
import { tenantCountry, type CountryCode } from '../../engine/numbers.js';
import { NotFoundError } from '../shared/errors.js';

/** The tenant settings the directory needs. */
export type DirectoryTenant = Pick<Tenant, 'id' | 'name' | 'numberDisplay' | 'timezone' | 'locale' | 'currency' | 'defaultForfaitMinutes' | 'productType'> &
  Pick<ProductType, 'maxUsers'> & {
    /** tenants.country, or FR for the rare code libphonenumber has no metadata for (tenantCountry) */
    country: CountryCode;
  };

function settings(db: Db | Trx, tenantId: string) {
  return db
    .selectFrom('tenants')
    .innerJoin('productTypes', 'productTypes.code', 'tenants.productType')
    .select([
      'tenants.id',
      'tenants.name',
      'tenants.country',
      'tenants.numberDisplay',
      'tenants.timezone',
      'tenants.locale',
      'tenants.currency',
      'tenants.defaultForfaitMinutes',
      'tenants.productType',
      'productTypes.maxUsers',
    ])
    .where('tenants.id', '=', tenantId);
}

function toDirectoryTenant(row: Omit<DirectoryTenant, 'country'> & { country: string } | undefined): DirectoryTenant {
  if (!row) throw new NotFoundError('tenant');
  return { ...row, country: tenantCountry(row.country) };
}

/** The tenant's directory settings, read without a lock (reads and dry runs). */
export async function directoryTenant(db: Db | Trx, tenantId: string): Promise<DirectoryTenant> {
  return toDirectoryTenant(await settings(db, tenantId).executeTakeFirst());
}

/**
 * Serialises changes to a tenant's directory (licence count, uniqueness checks
 * made before writing): every write of the directory (create, change, delete,
 * import, restore) takes it first. FOR NO KEY UPDATE, not FOR UPDATE: rows
 * referencing the tenant (CDRs, ledger entries, reservations) take KEY SHARE on
 * it, and call rating must not wait behind a directory import.
 */
export async function lockDirectory(trx: Trx, tenantId: string): Promise<DirectoryTenant> {
  return toDirectoryTenant(await settings(trx, tenantId).forNoKeyUpdate('tenants').executeTakeFirst());
}

export async function countUsers(db: Db | Trx, tenantId: string): Promise<number> {
  const r = await db.selectFrom('users').select(sql<string>`count(*)`.as('n')).where('tenantId', '=', tenantId).executeTakeFirstOrThrow();
  return Number(r.n);
}

/**
 * Matricule and identifiant are unique per tenant, DEFERRABLE: import and
 * restore, which may swap them between users, check them at commit.
 */
export async function deferDirectoryUniqueness(trx: Trx): Promise<void> {
  await sql`SET CONSTRAINTS users_matricule_uq, users_identifiant_uq DEFERRED`.execute(trx);
}

