/**
 * Maintenance of the indicator rollups (docs/indicators.md). Two functions of
 * the database hold the rules: indicator_add() (migration 0016) is the one
 * writer of the rollup tables, from deltas grouped at two grains, and
 * indicator_apply() says what stored CDRs add (their local hour, day, line…),
 * groups them and calls indicator_add(). Their callers, each inside the
 * transaction that writes the CDRs:
 *
 * - the batch writer (services/cdrs/batch.ts) does not read its rows back: it
 *   groups the rated rows it holds (./deltas.ts, checked equal to
 *   indicator_rebuild() by test/indicators/deltas.test.ts), hands the groups to
 *   indicator_add(), and calls indicator_apply() only for CDRs of an hour in
 *   which the zone's offset changes;
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
