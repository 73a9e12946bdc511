import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import { periodOf } from '../engine/periods.js';

/**
 * SPEC §10: at each tenant's month start, usedSeconds goes back to 0, once per
 * period. Each user remembers the period its counter belongs to, so the job is
 * idempotent and can run as often as we like (and catches up after downtime).
 */
export async function renewForfaits(db: Db, now: Date = new Date()): Promise<{ tenants: number; users: number }> {
  const tenants = await db.selectFrom('tenants').select(['id', 'timezone']).execute();
  let users = 0;
  for (const t of tenants) {
    const period = periodOf(now, t.timezone);
    const r = await db
      .updateTable('users')
      .set({ usedSeconds: 0, forfaitPeriod: period, updatedAt: sql`now()` })
      .where('tenantId', '=', t.id)
      .where((eb) => eb.or([eb('forfaitPeriod', 'is', null), eb('forfaitPeriod', '<', period)]))
      .executeTakeFirst();
    users += Number(r.numUpdatedRows);
  }
  return { tenants: tenants.length, users };
}
