import { sql } from 'kysely';
import type { Db } from '../../db/connection.js';
import type { Principal } from '../access/access.js';

export interface LicenceUse {
  tenantId: string;
  tenantName: string;
  productType: string;
  /** Users in the directory: each takes one licence. */
  used: number;
  /** The product type's maxUsers. */
  max: number;
}

/**
 * Licence use (seed 004's "Toutes les licences sont utilisées — 25/25"): a
 * tenant principal's own tenant, a reseller's every tenant. The limit itself is
 * enforced where users are added (services/users/directory.ts, importPlan.ts).
 */
export async function licenceUse(db: Db, principal: Principal): Promise<LicenceUse[]> {
  let q = db
    .selectFrom('tenants as t')
    .innerJoin('productTypes as p', 'p.code', 't.productType')
    .select(['t.id as tenantId', 't.name as tenantName', 't.productType', 'p.maxUsers as max'])
    .select((eb) => eb.selectFrom('users as u').select(sql<string>`count(*)`.as('n')).whereRef('u.tenantId', '=', 't.id').as('used'))
    .orderBy('t.name');
  q = principal.kind === 'tenant' ? q.where('t.id', '=', principal.tenantId) : q.where('t.resellerId', '=', principal.resellerId);
  const rows = await q.execute();
  return rows.map((r) => ({ tenantId: r.tenantId, tenantName: r.tenantName, productType: r.productType, used: Number(r.used ?? 0), max: r.max }));
}
