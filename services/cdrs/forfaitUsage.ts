/**
 * Forfait per period (issue 17): the forfait seconds a user used in each
 * tenant-local month are kept in `forfait_usage`. A CDR spends the forfait of
 * the month its call started in; `users.used_seconds` stays the figure of the
 * user's current period (`users.forfait_period`), the one authorization reads.
 *
 * This module is the one place that says which counter a call's period reads
 * and writes, and the one writer of `forfait_usage` outside the renewal job.
 * Callers hold the users' row locks, so the rows read here cannot move under
 * them.
 */
import { sql } from 'kysely';
import { intArray, textArray } from '../../db/arrays.js';
import type { Trx } from '../../db/connection.js';

/** (user, period) → seconds used, for the periods other than each user's current one. */
export type PeriodUsage = Map<string, number>;

const usageKey = (userId: string, period: string) => `${userId}|${period}`;

/**
 * Seconds of forfait used in `period` by a user whose current period and
 * counter are `current` / `usedSeconds`. The current period reads the users
 * row (authoritative: an import may set it); any other reads forfait_usage.
 */
export function usedInPeriod(usage: PeriodUsage, user: { id: string; forfaitPeriod: string | null; usedSeconds: number }, period: string): number {
  if (period === user.forfaitPeriod) return user.usedSeconds;
  return usage.get(usageKey(user.id, period)) ?? 0;
}

/** The stored usage of these (user, period) pairs, locked rows of the caller's users. */
export async function readPeriodUsage(trx: Trx, tenantId: string, pairs: readonly { userId: string; period: string }[]): Promise<PeriodUsage> {
  const usage: PeriodUsage = new Map();
  if (pairs.length === 0) return usage;
  const r = await sql<{ userId: string; period: string; usedSeconds: number }>`
    SELECT f.user_id, f.period, f.used_seconds
      FROM forfait_usage f
      JOIN unnest(${textArray(pairs.map((p) => p.userId))}::uuid[], ${textArray(pairs.map((p) => p.period))}::text[]) AS v(user_id, period)
        ON f.user_id = v.user_id AND f.period = v.period
     WHERE f.tenant_id = ${tenantId}`.execute(trx);
  for (const row of r.rows) usage.set(usageKey(row.userId, row.period), row.usedSeconds);
  return usage;
}

/** One user's forfait seconds moved in one period (positive: used, negative: given back). */
export interface UsageDelta {
  userId: string;
  period: string;
  seconds: number;
}

/** Adds the deltas to forfait_usage (never below 0), in key order so concurrent writers do not deadlock. */
export async function addPeriodUsage(trx: Trx, tenantId: string, deltas: readonly UsageDelta[]): Promise<void> {
  const moved = deltas.filter((d) => d.seconds !== 0).sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : a.period < b.period ? -1 : a.period > b.period ? 1 : 0));
  if (moved.length === 0) return;
  // the users are locked by the caller: no other transaction adds the same rows meanwhile
  await sql`
    WITH v AS (
      SELECT * FROM unnest(${textArray(moved.map((d) => d.userId))}::uuid[], ${textArray(moved.map((d) => d.period))}::text[],
                           ${intArray(moved.map((d) => d.seconds))}::int[]) AS v(user_id, period, seconds)
    ), updated AS (
      UPDATE forfait_usage f SET used_seconds = GREATEST(0, f.used_seconds + v.seconds)
        FROM v WHERE f.tenant_id = ${tenantId} AND f.user_id = v.user_id AND f.period = v.period
      RETURNING f.user_id, f.period
    )
    INSERT INTO forfait_usage (tenant_id, user_id, period, used_seconds)
    SELECT ${tenantId}::uuid, v.user_id, v.period, GREATEST(0, v.seconds) FROM v
     WHERE NOT EXISTS (SELECT 1 FROM updated x WHERE x.user_id = v.user_id AND x.period = v.period)`.execute(trx);
}

/**
 * Users whose counter had no period yet (created by a path that did not set
 * one, never renewed): their counter is taken to be the period given — the
 * latest month of their calls being rated — and recorded, so the next batch
 * reads the same.
 */
export async function adoptForfaitPeriods(trx: Trx, tenantId: string, adopted: ReadonlyMap<string, string>): Promise<void> {
  if (adopted.size === 0) return;
  const ids = [...adopted.keys()].sort();
  await sql`
    UPDATE users u SET forfait_period = v.period
      FROM unnest(${textArray(ids)}::uuid[], ${textArray(ids.map((id) => adopted.get(id)!))}::text[]) AS v(id, period)
     WHERE u.tenant_id = ${tenantId} AND u.id = v.id AND u.forfait_period IS NULL`.execute(trx);
}
