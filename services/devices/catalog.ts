// The device catalog (issue 21): a reseller's device types (model, vendor,
// line ports, DECT) and a tenant's sites with the types each approves. A
// device may only be of a type its site approves (seed 003).
import { sql } from 'kysely';
import { validate as isUuid } from 'uuid';
import { isUniqueViolation } from '../../db/errors.js';
import { withTransaction, type Db, type Trx } from '../../db/connection.js';
import { recordAudit, type Actor } from '../audit/audit.js';
import { ConflictError, NotFoundError, ValidationError } from '../shared/errors.js';

export interface DeviceTypeView {
  id: string;
  code: string;
  vendor: string;
  model: string;
  ports: number;
  dect: boolean;
}

export interface SiteView {
  id: string;
  name: string;
  /** the codes of the device types the site approves, in code order */
  deviceTypes: string[];
  createdAt: string;
  updatedAt: string;
}

export interface DeviceTypeInput {
  code: string;
  vendor: string;
  model: string;
  ports: number;
  dect?: boolean;
}

const typeColumns = ['deviceTypes.id', 'deviceTypes.code', 'deviceTypes.vendor', 'deviceTypes.model', 'deviceTypes.ports', 'deviceTypes.dect'] as const;

export async function resellerOfTenant(db: Db | Trx, tenantId: string): Promise<string> {
  const row = await db.selectFrom('tenants').select('resellerId').where('id', '=', tenantId).executeTakeFirst();
  if (!row) throw new NotFoundError('tenant');
  return row.resellerId;
}

export async function listDeviceTypes(db: Db | Trx, resellerId: string): Promise<DeviceTypeView[]> {
  return db.selectFrom('deviceTypes').select(typeColumns).where('resellerId', '=', resellerId).orderBy('code').execute();
}

export async function createDeviceType(db: Db, resellerId: string, input: DeviceTypeInput, actor?: Actor): Promise<DeviceTypeView> {
  try {
    return await withTransaction(db, async (trx) => {
      const view = await trx
        .insertInto('deviceTypes')
        .values({ resellerId, code: input.code, vendor: input.vendor, model: input.model, ports: input.ports, dect: input.dect ?? false })
        .returning(['id', 'code', 'vendor', 'model', 'ports', 'dect'])
        .executeTakeFirstOrThrow();
      if (actor) await recordAudit(trx, actor, { tenantId: null, resellerId, action: 'deviceType.create', targetType: 'deviceType', targetId: view.id, after: view });
      return view;
    });
  } catch (err) {
    if (isUniqueViolation(err, 'device_types_code_uq')) throw new ConflictError('CONFLICT', `device type ${input.code} exists`, [{ field: 'code', value: input.code, message: 'taken' }]);
    throw err;
  }
}

/** The types of the reseller named by `codes`, or a ValidationError naming each unknown code. */
async function typeIds(db: Db | Trx, resellerId: string, codes: readonly string[]): Promise<string[]> {
  const unique = [...new Set(codes)];
  if (unique.length === 0) return [];
  const rows = await db.selectFrom('deviceTypes').select(['id', 'code']).where('resellerId', '=', resellerId).where('code', 'in', unique).execute();
  const unknown = unique.filter((c) => !rows.some((r) => r.code === c));
  if (unknown.length) {
    throw new ValidationError('unknown device type', unknown.map((c) => ({ field: 'deviceTypes', value: c, message: 'no such device type in the catalog' })));
  }
  return rows.map((r) => r.id);
}

async function siteView(db: Db | Trx, tenantId: string, siteId: string): Promise<SiteView> {
  const [view] = await sitesQuery(db, tenantId).where('sites.id', '=', siteId).execute();
  if (!view) throw new NotFoundError('site');
  return toSiteView(view);
}

function sitesQuery(db: Db | Trx, tenantId: string) {
  return db
    .selectFrom('sites')
    .select(['sites.id', 'sites.name', 'sites.createdAt', 'sites.updatedAt'])
    .select(
      sql<string[]>`coalesce((SELECT array_agg(t.code ORDER BY t.code) FROM site_device_types a JOIN device_types t ON t.id = a.device_type_id
                      WHERE a.tenant_id = sites.tenant_id AND a.site_id = sites.id), '{}')`.as('deviceTypes'),
    )
    .where('sites.tenantId', '=', tenantId);
}

function toSiteView(r: { id: string; name: string; createdAt: Date; updatedAt: Date; deviceTypes: string[] }): SiteView {
  return { id: r.id, name: r.name, deviceTypes: r.deviceTypes, createdAt: r.createdAt.toISOString(), updatedAt: r.updatedAt.toISOString() };
}

export async function listSites(db: Db | Trx, tenantId: string): Promise<SiteView[]> {
  return (await sitesQuery(db, tenantId).orderBy('sites.name').execute()).map(toSiteView);
}

export async function createSite(db: Db, tenantId: string, input: { name: string; deviceTypes?: string[] }, actor?: Actor): Promise<SiteView> {
  return withTransaction(db, async (trx) => {
    const ids = await typeIds(trx, await resellerOfTenant(trx, tenantId), input.deviceTypes ?? []);
    let siteId: string;
    try {
      siteId = (await trx.insertInto('sites').values({ tenantId, name: input.name }).returning('id').executeTakeFirstOrThrow()).id;
    } catch (err) {
      if (isUniqueViolation(err, 'sites_name_uq')) throw new ConflictError('CONFLICT', `site ${input.name} exists`, [{ field: 'name', value: input.name, message: 'taken' }]);
      throw err;
    }
    if (ids.length) await trx.insertInto('siteDeviceTypes').values(ids.map((deviceTypeId) => ({ tenantId, siteId, deviceTypeId }))).execute();
    const view = await siteView(trx, tenantId, siteId);
    if (actor) await recordAudit(trx, actor, { tenantId, action: 'site.create', targetType: 'site', targetId: siteId, after: view });
    return view;
  });
}

/**
 * Renames a site or replaces its approved types. A type still carried by a
 * live device of the site cannot be withdrawn (409 naming it): retire or
 * change those devices first.
 */
export async function updateSite(
  db: Db,
  tenantId: string,
  siteId: string,
  input: { name?: string; deviceTypes?: string[] },
  actor?: Actor,
): Promise<SiteView> {
  if (!isUuid(siteId)) throw new NotFoundError('site');
  return withTransaction(db, async (trx) => {
    const site = await trx.selectFrom('sites').select('id').where('tenantId', '=', tenantId).where('id', '=', siteId).forUpdate().executeTakeFirst();
    if (!site) throw new NotFoundError('site');
    const before = await siteView(trx, tenantId, siteId);
    if (input.name !== undefined) {
      try {
        await trx.updateTable('sites').set({ name: input.name, updatedAt: sql`now()` }).where('tenantId', '=', tenantId).where('id', '=', siteId).execute();
      } catch (err) {
        if (isUniqueViolation(err, 'sites_name_uq')) throw new ConflictError('CONFLICT', `site ${input.name} exists`, [{ field: 'name', value: input.name, message: 'taken' }]);
        throw err;
      }
    }
    if (input.deviceTypes !== undefined) {
      const ids = await typeIds(trx, await resellerOfTenant(trx, tenantId), input.deviceTypes);
      const inUse = await trx
        .selectFrom('devices')
        .innerJoin('deviceTypes', 'deviceTypes.id', 'devices.deviceTypeId')
        .select('deviceTypes.code')
        .distinct()
        .where('devices.tenantId', '=', tenantId)
        .where('devices.siteId', '=', siteId)
        .where('devices.retiredAt', 'is', null)
        .$if(ids.length > 0, (q) => q.where('devices.deviceTypeId', 'not in', ids))
        .execute();
      if (inUse.length) {
        throw new ConflictError(
          'CONFLICT',
          'a device type withdrawn from the site is still in use there',
          inUse.map((r) => ({ field: 'deviceTypes', value: r.code, message: 'live devices of the site are of this type' })),
        );
      }
      await trx.deleteFrom('siteDeviceTypes').where('tenantId', '=', tenantId).where('siteId', '=', siteId).execute();
      if (ids.length) await trx.insertInto('siteDeviceTypes').values(ids.map((deviceTypeId) => ({ tenantId, siteId, deviceTypeId }))).execute();
      await trx.updateTable('sites').set({ updatedAt: sql`now()` }).where('tenantId', '=', tenantId).where('id', '=', siteId).execute();
    }
    const after = await siteView(trx, tenantId, siteId);
    if (actor) await recordAudit(trx, actor, { tenantId, action: 'site.update', targetType: 'site', targetId: siteId, before, after });
    return after;
  });
}

/** What checking a device needs to know of its tenant: its sites with their approved types, by name. */
export interface Catalog {
  resellerId: string;
  sites: Map<string, { id: string; name: string; types: Map<string, DeviceTypeView> }>;
  /** every type of the reseller's catalog, by code (to tell "unknown" from "not approved") */
  types: Map<string, DeviceTypeView>;
}

export async function loadCatalog(db: Db | Trx, tenantId: string): Promise<Catalog> {
  const resellerId = await resellerOfTenant(db, tenantId);
  const types = new Map((await listDeviceTypes(db, resellerId)).map((t) => [t.code, t]));
  const sites: Catalog['sites'] = new Map();
  for (const s of await listSites(db, tenantId)) {
    sites.set(s.name, { id: s.id, name: s.name, types: new Map(s.deviceTypes.map((c) => [c, types.get(c)!])) });
  }
  return { resellerId, sites, types };
}
