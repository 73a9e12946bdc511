/**
 * Maintenance of the indicator rollups (docs/indicators.md). What one CDR adds
 * to them is defined once, in SQL: indicator_apply() of migration 0007. These
 * are its callers, each inside the transaction that writes the CDRs:
 *
 * - the batch writer (services/cdrs/batch.ts) with the rows it inserted;
 * - rerating (services/cdrs/rerate.ts): the changed CDRs are taken out of the
 *   rollups before their UPDATE and put back after it, so a new cost, class or
 *   destination moves exactly what it should;
 * - the rebuild (a change of the tenant's timezone runs it by trigger).
 *
 * Each call is one statement: one INSERT … ON CONFLICT DO UPDATE of aggregated
 * deltas per rollup table, never one per CDR.
 */
import type postgres from 'postgres';

type Tx = postgres.TransactionSql | postgres.Sql;

function idArray(ids: readonly (string | number | bigint)[]): string {
  let out = '{';
  for (let i = 0; i < ids.length; i++) {
    const id = String(ids[i]);
    if (!/^\d{1,19}$/.test(id)) throw new RangeError(`not a CDR id: ${id}`);
    out += i === 0 ? id : ',' + id;
  }
  return out + '}';
}

/** Adds CDRs just inserted (by id) to the rollups. */
export async function addCdrsToRollups(tx: Tx, tenantId: string, rows: readonly { id: string | number | bigint }[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`SELECT indicator_apply(${tenantId}::uuid, ${idArray(rows.map((r) => r.id))}::bigint[], 1)`;
}

/** Takes CDRs out of the rollups (before they are changed), or puts them back (after). */
export async function moveCdrsInRollups(tx: Tx, tenantId: string, ids: readonly (string | number | bigint)[], sign: 1 | -1): Promise<void> {
  if (ids.length === 0) return;
  await tx`SELECT indicator_apply(${tenantId}::uuid, ${idArray(ids)}::bigint[], ${sign}::int)`;
}

/** The tenant's rollups recomputed from its CDRs; returns the number of CDRs. */
export async function rebuildRollups(tx: Tx, tenantId: string): Promise<number> {
  const [row] = await tx<{ n: string }[]>`SELECT indicator_rebuild(${tenantId}::uuid)::text AS n`;
  return Number(row?.n ?? 0);
}

/** Adds the CDRs with ids in [minId, maxId) to the rollups: bulk builds, one id range at a time. */
export async function addCdrRangeToRollups(tx: Tx, tenantId: string, minId: bigint, maxId: bigint): Promise<number> {
  const [row] = await tx<{ n: string }[]>`
    SELECT indicator_apply(${tenantId}::uuid, NULL, 1, ${minId.toString()}::bigint, ${maxId.toString()}::bigint)::text AS n`;
  return Number(row?.n ?? 0);
}
