/**
 * Migration 0016 moved the writing of the rollups into indicator_add(), and
 * indicator_apply() now groups its CDRs and calls it. The same calls — a
 * rebuild, CDRs taken out by id, an id range put back — must leave the rollups
 * exactly as migration 0007's indicator_apply() left them. Each version runs
 * in a transaction that is rolled back; the old one is put in place by 0016's
 * own down(), so the rollback also checks that down() runs.
 */
import { sql, type Transaction } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Database } from '../../db/schema.js';
import { down } from '../../db/migrations/2026_11_22_0016_indicator_add.js';
import { testApp, testDb } from '../support/app.js';
import { cdrTenant, cdrUser } from '../cdrs/helpers.js';
import { postCdrs, prng, randomCdrs } from './data.js';

const app = testApp();

const TABLES = ['indicator_hours', 'indicator_days', 'indicator_lines', 'indicator_line_months', 'indicator_destinations'] as const;

class RolledBack extends Error {}

/** The rollups after the same three calls, in a transaction rolled back; with 0007's indicator_apply when `old`. */
async function rollupsAfterCalls(tenantId: string, old: boolean): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  await testDb()
    .db.transaction()
    .execute(async (trx: Transaction<Database>) => {
      if (old) await down(trx);
      const ids = await sql<{ id: string }>`SELECT id::text FROM cdrs WHERE tenant_id = ${tenantId} ORDER BY id`.execute(trx);
      const all = ids.rows.map((r) => r.id);
      const some = all.filter((_, i) => i % 3 === 0);
      await sql`SELECT indicator_rebuild(${tenantId}::uuid)`.execute(trx);
      await sql`SELECT indicator_apply(${tenantId}::uuid, ${'{' + some.join(',') + '}'}::bigint[], -1)`.execute(trx);
      await sql`SELECT indicator_apply(${tenantId}::uuid, NULL, 1, ${all[10]}::bigint, ${all[200]}::bigint)`.execute(trx);
      for (const t of TABLES) {
        const rows = await sql<{ r: string }>`
          SELECT (to_jsonb(x) - 'tenant_id')::text AS r FROM ${sql.table(t)} x WHERE tenant_id = ${tenantId} ORDER BY 1`.execute(trx);
        out[t] = rows.rows.map((x) => x.r);
      }
      throw new RolledBack();
    })
    .catch((err: unknown) => {
      if (!(err instanceof RolledBack)) throw err;
    });
  return out;
}

describe('indicator_apply() over indicator_add() (migration 0016)', () => {
  it('leaves the rollups as migration 0007’s indicator_apply() did, across a DST change', async () => {
    const t = await cdrTenant(app, { timezone: 'America/St_Johns' });
    const users = await Promise.all([0, 1].map(() => cdrUser(t.id, { balance: '100000', forfaitMinutes: 20 })));
    const cdrs = randomCdrs(prng(16), 600, users.map((u) => u.identifiant), { start: '2026-10-31T12:00:00', days: 2, zone: 'America/St_Johns' }, 'm');
    expect(await postCdrs(app, t.adminKey, cdrs, 300)).toBe(cdrs.length);

    const now = await rollupsAfterCalls(t.id, false);
    const before = await rollupsAfterCalls(t.id, true);
    expect(now.indicator_hours!.length).toBeGreaterThan(20);
    expect(now).toEqual(before);
    // and the rollback put 0016's functions back
    const { sql: pg } = testDb();
    const [fn] = await pg<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'indicator_add'`;
    expect(fn!.n).toBe(1);
  });
});
