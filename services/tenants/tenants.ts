import ct from 'countries-and-timezones';
import { isUniqueViolation } from '../../db/errors.js';
import { IANAZone } from 'luxon';
import { sql } from 'kysely';
import type { Db } from '../../db/connection.js';
import type { ProductType, Tenant } from '../../db/schema.js';
import { insertKey } from '../access/access.js';
import { ConflictError, NotFoundError, ValidationError } from '../shared/errors.js';
import { recordAudit, type Actor } from '../audit/audit.js';

export interface TenantInput {
  name: string;
  productType: string;
  tariffId?: string | null;
  reference?: string | null;
  country?: string;
  currency?: string;
  timezone?: string;
  locale?: 'fr' | 'en';
  numberDisplay?: 'international' | 'national';
  notes?: string | null;
  trialEndsAt?: string | null;
  internal?: boolean;
  status?: 'active' | 'suspended';
  vatRate?: string;
  defaultForfaitMinutes?: number;
  maxCallSeconds?: number;
  lowBalanceThreshold?: string;
  freeNumbers?: string[];
  /** Postal address of the invoices' bill-to box, one entry per line (issue 17). */
  billingAddress?: string[];
  /** Whole UTC months of CDRs kept before the current one; older ones are archived (issue 22). */
  cdrRetentionMonths?: number;
}

export interface TenantView {
  id: string;
  name: string;
  productType: string;
  tariffId: string | null;
  reference: string | null;
  country: string;
  currency: string;
  timezone: string;
  locale: 'fr' | 'en';
  numberDisplay: 'international' | 'national';
  notes: string | null;
  trialEndsAt: string | null;
  internal: boolean;
  status: 'active' | 'suspended';
  vatRate: string;
  defaultForfaitMinutes: number;
  maxCallSeconds: number;
  lowBalanceThreshold: string;
  freeNumbers: string[];
  billingAddress: string[];
  cdrRetentionMonths: number;
  createdAt: string;
  updatedAt: string;
}

// Emergency and social numbers that are always allowed and never charged.
const emergencyNumbers: Record<string, string[]> = {
  FR: ['112', '15', '17', '18', '114', '115', '119'],
  BE: ['112', '100', '101'],
  CH: ['112', '117', '118', '144'],
  LU: ['112', '113'],
  DE: ['112', '110'],
  ES: ['112', '091', '061'],
  IT: ['112', '113', '115', '118'],
  GB: ['112', '999'],
  US: ['911'],
  CA: ['911'],
};

export function defaultFreeNumbers(country: string): string[] {
  return emergencyNumbers[country] ?? ['112'];
}

/** The tenant's zone: given, or the only zone of its country. */
function resolveTimezone(country: string, timezone: string | undefined): string {
  if (timezone) {
    if (!IANAZone.isValidZone(timezone)) {
      throw new ValidationError('invalid timezone', [{ field: 'timezone', value: timezone, message: 'not an IANA time zone' }]);
    }
    return timezone;
  }
  const c = ct.getCountry(country);
  if (!c) throw new ValidationError('invalid country', [{ field: 'country', value: country, message: 'not an ISO 3166-1 alpha-2 code' }]);
  const zones = c.timezones;
  if (zones.length === 1 && zones[0]) return zones[0];
  throw new ValidationError('timezone required', [
    { field: 'timezone', message: `${country} has several time zones (${zones.slice(0, 4).join(', ')}…): give one` },
  ]);
}

export function tenantView(t: Tenant): TenantView {
  return {
    id: t.id,
    name: t.name,
    productType: t.productType,
    tariffId: t.tariffId,
    reference: t.reference,
    country: t.country,
    currency: t.currency,
    timezone: t.timezone,
    locale: t.locale,
    numberDisplay: t.numberDisplay,
    notes: t.notes,
    trialEndsAt: t.trialEndsAt ? t.trialEndsAt.toISOString() : null,
    internal: t.internal,
    status: t.status,
    vatRate: t.vatRate,
    defaultForfaitMinutes: t.defaultForfaitMinutes,
    maxCallSeconds: t.maxCallSeconds,
    lowBalanceThreshold: t.lowBalanceThreshold,
    freeNumbers: t.freeNumbers,
    billingAddress: t.billingAddress,
    cdrRetentionMonths: t.cdrRetentionMonths,
    createdAt: t.createdAt.toISOString(),
    updatedAt: t.updatedAt.toISOString(),
  };
}

async function checkTariff(db: Db, resellerId: string, tariffId: string | null | undefined): Promise<void> {
  if (!tariffId) return;
  const t = await db.selectFrom('tariffs').select('id').where('resellerId', '=', resellerId).where('id', '=', tariffId).executeTakeFirst();
  if (!t) throw new ValidationError('unknown tariff', [{ field: 'tariffId', value: tariffId, message: 'no such tariff' }]);
}

async function checkProductType(db: Db, code: string): Promise<void> {
  const p = await db.selectFrom('productTypes').select('code').where('code', '=', code).executeTakeFirst();
  if (!p) throw new ValidationError('unknown product type', [{ field: 'productType', value: code, message: 'no such product type' }]);
}


export async function createTenant(
  db: Db,
  resellerId: string,
  input: TenantInput,
  createdBy: string,
  actor?: Actor,
): Promise<{ tenant: TenantView; adminKey: string }> {
  const country = input.country ?? 'FR';
  const timezone = resolveTimezone(country, input.timezone);
  await checkProductType(db, input.productType);
  await checkTariff(db, resellerId, input.tariffId);
  try {
    return await db.transaction().execute(async (trx) => {
      const t = await trx
        .insertInto('tenants')
        .values({
          resellerId,
          name: input.name,
          productType: input.productType,
          tariffId: input.tariffId ?? null,
          reference: input.reference ?? null,
          country,
          currency: input.currency ?? 'EUR',
          timezone,
          locale: input.locale ?? (country === 'FR' || country === 'BE' || country === 'LU' || country === 'CH' ? 'fr' : 'en'),
          numberDisplay: input.numberDisplay ?? 'international',
          notes: input.notes ?? null,
          trialEndsAt: input.trialEndsAt ?? null,
          internal: input.internal ?? false,
          status: input.status ?? 'active',
          vatRate: input.vatRate ?? '0.20',
          defaultForfaitMinutes: input.defaultForfaitMinutes ?? 0,
          maxCallSeconds: input.maxCallSeconds ?? 14400,
          lowBalanceThreshold: input.lowBalanceThreshold ?? '1.00',
          freeNumbers: input.freeNumbers ?? defaultFreeNumbers(country),
          billingAddress: input.billingAddress ?? [],
          cdrRetentionMonths: input.cdrRetentionMonths ?? 12,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      const key = await insertKey(trx, {
        principal: 'user',
        name: 'administrateur (created with the tenant)',
        roles: ['administrateur'],
        tenantId: t.id,
        createdBy,
      });
      const tenant = tenantView(t);
      if (actor) await recordAudit(trx, actor, { tenantId: t.id, resellerId, action: 'tenant.create', targetType: 'tenant', targetId: t.id, after: tenant });
      return { tenant, adminKey: key.key };
    });
  } catch (err) {
    if (isUniqueViolation(err, 'tenants_name_key')) {
      throw new ConflictError('CONFLICT', `a tenant named ${input.name} already exists`, [
        { field: 'name', value: input.name, message: 'already taken' },
      ]);
    }
    throw err;
  }
}

export async function getTenant(db: Db, resellerId: string, id: string): Promise<Tenant> {
  const t = await db.selectFrom('tenants').selectAll().where('id', '=', id).where('resellerId', '=', resellerId).executeTakeFirst();
  if (!t) throw new NotFoundError('tenant');
  return t;
}

export async function listTenants(db: Db, resellerId: string, limit: number, cursor?: string) {
  let q = db.selectFrom('tenants').selectAll().where('resellerId', '=', resellerId).orderBy('id').limit(limit + 1);
  if (cursor) q = q.where('id', '>', cursor);
  const rows = await q.execute();
  const items = rows.slice(0, limit).map(tenantView);
  return { items, nextCursor: rows.length > limit ? items[items.length - 1]!.id : null };
}

export async function updateTenant(db: Db, resellerId: string, id: string, patch: Partial<TenantInput>, actor?: Actor): Promise<TenantView> {
  return db.transaction().execute(async (trx) => {
    const current = await trx
      .selectFrom('tenants')
      .selectAll()
      .where('id', '=', id)
      .where('resellerId', '=', resellerId)
      .forUpdate()
      .executeTakeFirst();
    if (!current) throw new NotFoundError('tenant');
    if (patch.productType !== undefined && patch.productType !== current.productType) {
      const type = await trx.selectFrom('productTypes').selectAll().where('code', '=', current.productType).executeTakeFirstOrThrow();
      if (type.locked) {
        throw new ConflictError('PRODUCT_TYPE_LOCKED', `product type ${current.productType} is locked: it cannot be changed`);
      }
      await checkProductType(db, patch.productType);
    }
    if (patch.tariffId !== undefined) await checkTariff(db, resellerId, patch.tariffId);
    const country = patch.country ?? current.country;
    const timezone = patch.timezone !== undefined || patch.country !== undefined ? resolveTimezone(country, patch.timezone ?? current.timezone) : undefined;
    const { trialEndsAt, ...rest } = patch;
    try {
      const t = await trx
        .updateTable('tenants')
        .set({
          ...rest,
          ...(trialEndsAt !== undefined ? { trialEndsAt } : {}),
          ...(timezone ? { timezone } : {}),
          updatedAt: sql`now()`,
        })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      const after = tenantView(t);
      if (actor) await recordAudit(trx, actor, { tenantId: id, resellerId, action: 'tenant.update', targetType: 'tenant', targetId: id, before: tenantView(current), after });
      return after;
    } catch (err) {
      if (isUniqueViolation(err, 'tenants_name_key')) throw new ConflictError('CONFLICT', `a tenant named ${patch.name} already exists`);
      throw err;
    }
  });
}

export async function listProductTypes(db: Db) {
  const rows = await db.selectFrom('productTypes').selectAll().orderBy('code').execute();
  return rows.map(productTypeView);
}

export function productTypeView(p: ProductType) {
  return { code: p.code, name: p.name, maxUsers: p.maxUsers, monthlyFeePerUser: p.monthlyFeePerUser, locked: p.locked };
}

export async function createProductType(
  db: Db,
  input: { code: string; name: string; maxUsers: number; monthlyFeePerUser: string; locked?: boolean },
  audit?: { actor: Actor; resellerId: string },
) {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('productTypes')
      .values({ ...input, locked: input.locked ?? false })
      .onConflict((oc) => oc.column('code').doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!row) throw new ConflictError('CONFLICT', `product type ${input.code} already exists`);
    const view = productTypeView(row);
    if (audit) {
      await recordAudit(trx, audit.actor, { tenantId: null, resellerId: audit.resellerId, action: 'productType.create', targetType: 'productType', targetId: view.code, after: view });
    }
    return view;
  });
}
