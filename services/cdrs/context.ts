/** What rating a tenant's CDRs needs to know of the tenant, loaded once per ingestion. */
import type postgres from 'postgres';
import type { Db } from '../../db/connection.js';
import type { TariffIndex } from '../../engine/index.js';
import { NotFoundError } from '../shared/errors.js';
import type { TariffIndexCache } from '../tariffs/tariffs.js';
import { freeNumberSet, tenantCountry } from '../../engine/index.js';
import { NumberCache, type CdrReaders, type TenantNumbers } from './normalize.js';
import { InstantReader } from './time.js';

export interface CdrDeps {
  db: Db;
  /**
   * The postgres.js pool under `db`. Nothing in services/cdrs reads through it
   * (COPY runs on rawSql(trx)); services/authorization/endCall.ts still does.
   */
  sql: postgres.Sql;
  tariffs: TariffIndexCache;
}

export interface TenantContext extends TenantNumbers, CdrReaders {
  id: string;
  tariffId: string | null;
  numberDisplay: 'international' | 'national';
  /** The tenant's free numbers, normalized like callees (E.164 or short digits). */
  freeNumbers: ReadonlySet<string>;
  /** undefined when the tenant has no tariff: every paid outgoing call is NO_RATE. */
  tariff: TariffIndex | undefined;
}

/**
 * Loads the tenant (404 when absent). `freshTariff` drops the cached tariff
 * index first: rerating and reprocessing must use the rates valid now even if
 * another server process uploaded them.
 */
export async function loadTenantContext(deps: CdrDeps, tenantId: string, options: { freshTariff?: boolean } = {}): Promise<TenantContext> {
  const t = await deps.db
    .selectFrom('tenants')
    .select(['id', 'country', 'timezone', 'tariffId', 'numberDisplay', 'freeNumbers'])
    .where('id', '=', tenantId)
    .executeTakeFirst();
  if (!t) throw new NotFoundError('tenant');
  const country = tenantCountry(t.country);
  const numbers = new NumberCache(country);
  const freeNumbers = freeNumberSet(t.freeNumbers, (n) => numbers.parse(n));
  if (t.tariffId && options.freshTariff) deps.tariffs.invalidate(t.tariffId);
  const tariff = t.tariffId ? await deps.tariffs.get(t.tariffId) : undefined;
  const instants = new InstantReader(t.timezone);
  return { id: t.id, country, timezone: t.timezone, tariffId: t.tariffId, numberDisplay: t.numberDisplay, freeNumbers, tariff, numbers, instants };
}
