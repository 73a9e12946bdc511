// The directory's tenant settings read with the raw postgres.js client, for the
// import and restore transactions (they need COPY, which Kysely does not do).
import type postgres from 'postgres';
import { tenantCountry, type NumberDisplay } from '../../engine/numbers.js';
import { NotFoundError } from '../shared/errors.js';
import type { DirectoryTenant } from './repo.js';

interface TenantRow {
  id: string;
  name: string;
  country: string;
  number_display: NumberDisplay;
  timezone: string;
  locale: 'fr' | 'en';
  currency: string;
  default_forfait_minutes: number;
  max_users: number;
  product_type: string;
}

function toTenant(rows: TenantRow[]): DirectoryTenant {
  const t = rows[0];
  if (!t) throw new NotFoundError('tenant');
  return {
    id: t.id,
    name: t.name,
    country: tenantCountry(t.country),
    numberDisplay: t.number_display,
    timezone: t.timezone,
    locale: t.locale,
    currency: t.currency,
    defaultForfaitMinutes: t.default_forfait_minutes,
    maxUsers: t.max_users,
    productType: t.product_type,
  };
}

/** Same lock as lockDirectory (userFields.ts): FOR NO KEY UPDATE of the tenant row. */
export async function lockDirectoryRaw(tx: postgres.TransactionSql, tenantId: string): Promise<DirectoryTenant> {
  return toTenant(await tx<TenantRow[]>`
    SELECT t.id, t.name, t.country, t.number_display, t.timezone, t.locale, t.currency, t.default_forfait_minutes,
           p.max_users, t.product_type
    FROM tenants t JOIN product_types p ON p.code = t.product_type
    WHERE t.id = ${tenantId} FOR NO KEY UPDATE OF t`);
}

export async function readDirectoryTenantRaw(tx: postgres.TransactionSql, tenantId: string): Promise<DirectoryTenant> {
  return toTenant(await tx<TenantRow[]>`
    SELECT t.id, t.name, t.country, t.number_display, t.timezone, t.locale, t.currency, t.default_forfait_minutes,
           p.max_users, t.product_type
    FROM tenants t JOIN product_types p ON p.code = t.product_type
    WHERE t.id = ${tenantId}`);
}
