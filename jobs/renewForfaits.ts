import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import { periodOf } from '../engine/periods.js';

/**
 * SPEC §10: at each tenant's month start, usedSeconds goes back to 0, once per
 * period. Each user remembers the period its counter belongs to, so the job is
 * idempotent and can run as often as we like (and catches up after downtime).
 * The month that closes keeps its figure in forfait_usage (issue 17).
 */
export async function renewForfaits(db: Db, now: Date = new Date()): Promise<{ tenants: number; users: number }> {
  const tenants = await db.selectFrom('tenants').select(['id', 'timezone']).execute();
  let users = 0;
  for (const t of tenants) {
    const period = periodOf(now, t.timezone);
    // the closing month's counter is kept in forfait_usage (late CDRs of that month spend what it left,
    // issue 17); the new month starts from what its early CDRs, rated before this run, used already
    const r = await sql`
      WITH closing AS (
        INSERT INTO forfait_usage AS f (tenant_id, user_id, period, used_seconds)
        SELECT tenant_id, id, forfait_period, used_seconds FROM users
         WHERE tenant_id = ${t.id} AND forfait_period IS NOT NULL AND forfait_period < ${period}
        ON CONFLICT (tenant_id, user_id, period) DO UPDATE SET used_seconds = EXCLUDED.used_seconds
      )
      UPDATE users u
         SET used_seconds = COALESCE((SELECT f.used_seconds FROM forfait_usage f WHERE f.tenant_id = u.tenant_id AND f.user_id = u.id AND f.period = ${period}), 0),
             forfait_period = ${period}, updated_at = now()
       WHERE u.tenant_id = ${t.id} AND (u.forfait_period IS NULL OR u.forfait_period < ${period})`.execute(db);
    users += Number(r.numAffectedRows ?? 0n);
  }
  return { tenants: tenants.length, users };
}
