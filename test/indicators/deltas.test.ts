/**
 * The batch writer groups the rollups' deltas from the rated rows it holds
 * (services/indicators/deltas.ts); indicator_apply() stays the definition of
 * what a stored CDR adds, and both write through indicator_add(). Here every rollup table written by ingestion is compared, row by
 * row, with the same table rebuilt by indicator_rebuild() from the stored CDRs —
 * in zones whose offset changes on a UTC hour (Paris), in the middle of a UTC
 * hour (St John's, Lord Howe's half-hour DST: those hours go through
 * indicator_apply()), and in half- and quarter-hour zones without DST.
 */
import { describe, expect, it } from 'vitest';
import { call, testApp, testDb } from '../support/app.js';
import { cdrTenant, cdrUser } from '../cdrs/helpers.js';
import { postCdrs, prng, randomCdrs } from './data.js';

const app = testApp();

const TABLES = ['indicator_hours', 'indicator_days', 'indicator_lines', 'indicator_line_months', 'indicator_destinations'] as const;

/** Every rollup row of the tenant with calls, as sorted text. */
async function rollups(tenantId: string): Promise<Record<string, string[]>> {
  const { sql } = testDb();
  const out: Record<string, string[]> = {};
  for (const t of TABLES) {
    const rows = await sql<{ r: string }[]>`
      SELECT (to_jsonb(x) - 'tenant_id')::text AS r FROM ${sql(t)} x WHERE tenant_id = ${tenantId} AND calls <> 0 ORDER BY 1`;
    out[t] = rows.map((x) => x.r);
  }
  return out;
}

describe('rollups from the batch writer', () => {
  const cases = [
    // zone, window start (local), days: each window holds a change of offset (or none)
    { zone: 'Europe/Paris', start: '2026-10-24T00:00:00', days: 3 },
    { zone: 'America/St_Johns', start: '2026-10-31T12:00:00', days: 2 }, // falls back 02:00 NDT = 04:30 UTC
    { zone: 'Australia/Lord_Howe', start: '2026-10-03T12:00:00', days: 2 }, // +10:30 → +11 at 02:00 = 15:30 UTC
    { zone: 'Asia/Kathmandu', start: '2026-10-30T00:00:00', days: 3 },
    { zone: 'Asia/Kolkata', start: '2026-10-30T00:00:00', days: 3 },
  ];
  for (const c of cases) {
    it(`equal indicator_rebuild() of the stored CDRs in ${c.zone}`, async () => {
      const t = await cdrTenant(app, { timezone: c.zone });
      const users = await Promise.all([0, 1, 2].map(() => cdrUser(t.id, { balance: '100000', forfaitMinutes: 20 })));
      const cdrs = randomCdrs(prng(c.zone.length), 900, users.map((u) => u.identifiant), { start: c.start, days: c.days, zone: c.zone }, 'd');
      // a few around the change with milliseconds, and a site with characters COPY and arrays escape
      for (let i = 0; i < 60; i++) {
        const at = new Date(Date.parse(cdrs[i]!.startedAt as string) + 137).toISOString();
        cdrs.push({ ...cdrs[i]!, callId: `ms-${i}`, startedAt: at, site: i % 3 === 0 ? 'Saint-"Denis"\\\t{x}' : cdrs[i]!.site });
      }
      expect(await postCdrs(app, t.adminKey, cdrs, 250)).toBe(cdrs.length);
      const written = await rollups(t.id);
      expect(written.indicator_hours!.length).toBeGreaterThan(30);
      const { sql } = testDb();
      await sql`SELECT indicator_rebuild(${t.id}::uuid)`;
      expect(written).toEqual(await rollups(t.id));
      // and the API answers (rollups) still equal its raw path
      const res = await call(app, 'GET', `/v1/indicators?from=${c.start.slice(0, 10)}&to=2026-11-05&granularity=hour`, { key: t.adminKey });
      expect(res.status, res.text).toBe(200);
    });
  }
});
