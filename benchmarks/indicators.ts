/**
 * Indicators benchmark (issue 8): GET /v1/indicators for one month of a tenant
 * with 10,000,000 CDRs (October 2026 in Europe/Paris, across its DST change),
 * answered from the rollups, against the raw GROUP BY over the same CDRs
 * (the service's `source: 'raw'` path: the same three statements reading cdrs)
 * in the same run.
 *
 *   npm run bench -- indicators          (CDRS=1000000 for a shorter run)
 *
 * CDRs are generated with set-based SQL (generate_series), 10,000 lines on 20
 * sites, 40 destinations in 5 classes, both directions, every disposition; their
 * rollups are built by indicator_apply(), which writes through indicator_add()
 * as the batch writer does, one id range of 1,000,000 CDRs at a time. Before timing, the rollup
 * answers are checked equal to the raw GROUP BY (exit code 1 otherwise).
 *
 * Last line: BENCH indicators value=<1000 / p95 ms> unit=queries/s anchor=<1000 / raw median ms> ratio=<times faster>
 * (higher is better for value, anchor and ratio; the p95 in ms is printed above it).
 */
import { isDeepStrictEqual } from 'node:util';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import type postgres from 'postgres';
import { createApp } from '../api/app.js';
import { defaultConfig } from '../api/context.js';
import { insertKey } from '../services/access/access.js';
import { defaultReseller } from '../services/access/bootstrap.js';
import { createTenant } from '../services/tenants/tenants.js';
import { indicators, type IndicatorQuery } from '../services/indicators/query.js';
import { addCdrRangeToRollups } from '../services/indicators/rollups.js';
import { benchLine, freshDatabase } from './support.js';

const ROWS = Number(process.env.CDRS ?? 10_000_000);
const CHUNK = 1_000_000;
const RUNS = Number(process.env.RUNS ?? 100);
const ANCHOR_RUNS = Number(process.env.ANCHOR_RUNS ?? 5);

const MONTH: IndicatorQuery = { from: '2026-10-01', to: '2026-11-01', granularity: 'day' };
const CHECKS: IndicatorQuery[] = [
  MONTH,
  { from: '2026-10-01', to: '2026-11-01', granularity: 'hour' },
  { from: '2026-10-01', to: '2026-11-01', granularity: 'month', site: 'Site 07' },
  { from: '2026-10-01', to: '2026-11-01', granularity: 'day', class: 'mobile' },
  { from: '2026-10-03T10:30:00', to: '2026-10-26T17:45:00', granularity: 'hour', top: 25 },
];
const EXTRA: [string, IndicatorQuery][] = [
  ['month by hour', CHECKS[1]!],
  ['month, one site', CHECKS[2]!],
  ['month, one class', CHECKS[3]!],
  ['month, one line', { from: '2026-10-01', to: '2026-11-01', granularity: 'day', line: 'L00042' }],
  ['sub-day edges (10:30 → 17:45)', CHECKS[4]!],
];

const ms = (t0: number) => performance.now() - t0;
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const log = (s: string) => process.stdout.write(s + '\n');

/**
 * n CDRs of October 2026 (Paris), in time order as a PBX sends them (a little
 * jitter), inserted set-based by chunks of 1,000,000, each chunk's rollups
 * built by indicator_apply() over its id range. The foreign-key triggers are
 * off during the load (session_replication_role = replica): the rows are
 * generated for a tenant that exists.
 */
export async function generate(sql: postgres.Sql, tenantId: string, n: number): Promise<{ insertMs: number; rollupMs: number }> {
  let insertMs = 0;
  let rollupMs = 0;
  // the monthly partitions these rows go to (migration 0050), as the batch writer would make them
  await sql`SELECT cdrs_ensure_month(m) FROM generate_series(timestamptz '2026-09-15Z', timestamptz '2027-12-15Z', interval '1 month') m`;
  for (let lo = 0; lo < n; lo += CHUNK) {
    const hi = Math.min(n, lo + CHUNK);
    let t1 = performance.now();
    const [range] = await sql.begin(async (tx) => {
      await tx`SET LOCAL session_replication_role = replica`;
      return tx<{ min: string; max: string }[]>`
        WITH ins AS (
        INSERT INTO cdrs (tenant_id, call_id, identifiant, caller, callee, direction, started_at, answered_at, duration_seconds,
                          disposition, site, line, destination, class, billable_seconds, charged_seconds, cost)
        SELECT ${tenantId}, 'b' || g, CASE WHEN dr < 7 THEN (2000000 + ln)::text END,
               '+3314' || lpad(((g * 31) % 500)::text, 7, '0'),
               CASE WHEN dr < 7 THEN '+33' || (600000000 + dn * 1000 + g % 1000)::text ELSE '+33140000000' END,
               CASE WHEN dr < 7 THEN 'out' ELSE 'in' END,
               timestamptz '2026-09-30T22:00:00Z' + sec * interval '1 second',
               CASE WHEN ans < 70 THEN timestamptz '2026-09-30T22:00:05Z' + sec * interval '1 second' END,
               CASE WHEN ans < 70 THEN dur ELSE 0 END,
               CASE WHEN ans < 70 THEN 'answered' WHEN ans < 85 THEN 'no_answer' WHEN ans < 95 THEN 'busy' ELSE 'failed' END,
               'Site ' || lpad((ln % 20)::text, 2, '0'),
               CASE WHEN ln % 20 = 0 THEN NULL ELSE 'L' || lpad(ln::text, 5, '0') END,
               CASE WHEN dr < 7 THEN 'Destination ' || lpad(dn::text, 2, '0') END,
               CASE WHEN dr < 7 THEN (ARRAY['fixed','mobile','international','special','free'])[dn % 5 + 1] END,
               CASE WHEN dr < 7 AND ans < 70 THEN dur ELSE 0 END,
               CASE WHEN dr < 7 AND ans < 70 THEN dur ELSE 0 END,
               CASE WHEN dr < 7 AND ans < 70 THEN round(dur * (dn + 1) * 0.00037, 4) ELSE 0 END
          FROM (SELECT g, ((g / 10) * 7919) % 10000 AS ln, ((g * 2682000) / ${n}::bigint + (g * 7919) % 900) % 2682000 AS sec,
                       ((g / 7) * 13) % 40 AS dn, g % 10 AS dr, ((g / 10) * 37) % 100 AS ans, (g * 131) % 901 AS dur
                  FROM generate_series(${lo}::bigint, ${hi - 1}::bigint) g) s
        RETURNING id)
        SELECT min(id)::text AS min, max(id)::text AS max FROM ins`;
    });
    insertMs += performance.now() - t1;
    t1 = performance.now();
    await sql.begin(async (tx) => {
      await tx`SET LOCAL work_mem = '256MB'`;
      await addCdrRangeToRollups(tx, tenantId, BigInt(range!.min), BigInt(range!.max) + 1n);
    });
    rollupMs += performance.now() - t1;
    log(`  ${hi.toLocaleString('en')} CDRs (insert ${(insertMs / 1000).toFixed(0)} s, rollups ${(rollupMs / 1000).toFixed(0)} s)`);
  }
  return { insertMs, rollupMs };
}

export async function main(): Promise<void> {
  const db = await freshDatabase();
  const app = createApp({ db: db.db, sql: db.sql, logger: pino({ level: 'silent' }), config: defaultConfig });
  try {
    const resellerId = await defaultReseller(db.db);
    const { tenant } = await createTenant(db.db, resellerId, { name: 'Bench SA', productType: 'entreprise', country: 'FR', timezone: 'Europe/Paris' }, 'bench');
    const { key } = await insertKey(db.db, { principal: 'user', name: 'manager', tenantId: tenant.id, roles: ['comptable'] });
    const t = { id: tenant.id, timezone: 'Europe/Paris', currency: 'EUR', locale: 'fr' };

    // ---- 10,000,000 CDRs, set-based; their rollups by id range through indicator_apply ----
    let t0 = performance.now();
    const { insertMs, rollupMs } = await generate(db.sql, t.id, ROWS);
    await db.sql`VACUUM ANALYZE`;
    const sizes = await db.sql<{ t: string; n: string }[]>`
      SELECT 'indicator_hours' AS t, count(*)::text AS n FROM indicator_hours UNION ALL SELECT 'indicator_days', count(*)::text FROM indicator_days
      UNION ALL SELECT 'indicator_lines', count(*)::text FROM indicator_lines UNION ALL SELECT 'indicator_line_months', count(*)::text FROM indicator_line_months
      UNION ALL SELECT 'indicator_destinations', count(*)::text FROM indicator_destinations`;
    log(`data: ${ROWS.toLocaleString('en')} CDRs in ${(ms(t0) / 1000).toFixed(0)} s (insert ${(insertMs / 1000).toFixed(0)} s, rollups ${(rollupMs / 1000).toFixed(0)} s)`);
    log(`rollup rows: ${sizes.map((s) => `${s.t} ${Number(s.n).toLocaleString('en')}`).join(', ')}`);

    // ---- equal to the raw GROUP BY ----
    const rawTimes: number[] = [];
    for (const q of CHECKS) {
      const fast = await indicators(db.sql, t, q);
      t0 = performance.now();
      const raw = await indicators(db.sql, t, q, { source: 'raw' });
      if (q === MONTH) rawTimes.push(ms(t0));
      if (!isDeepStrictEqual(fast, raw)) {
        log(`MISMATCH for ${JSON.stringify(q)}`);
        process.exitCode = 1;
        return;
      }
    }
    const month = await indicators(db.sql, t, MONTH);
    log(`equal to the raw GROUP BY: ${CHECKS.length} queries (month: ${month.outgoing.calls + month.incoming.calls} calls, cost ${month.outgoing.cost} EUR, ${month.series.length} days, ${month.outgoing.byDestination.length} destinations)`);

    // ---- the month query over HTTP (in-process: auth, validation, JSON) ----
    const path = `/v1/indicators?from=${MONTH.from}&to=${MONTH.to}&granularity=${MONTH.granularity}`;
    const get = async (p: string) => {
      const res = await app.app.request(p, { headers: { authorization: `Bearer ${key}` } });
      if (res.status !== 200) throw new Error(`${p}: ${res.status} ${await res.text()}`);
      return res.json();
    };
    for (let i = 0; i < 5; i++) await get(path);
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      t0 = performance.now();
      await get(path);
      times.push(ms(t0));
    }
    const p50 = pct(times, 50);
    const p95 = pct(times, 95);
    log(`month query (rollups, HTTP): p50 ${p50.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms over ${RUNS} runs`);

    // ---- anchor: the raw GROUP BY of the same month ----
    for (let i = rawTimes.length; i < ANCHOR_RUNS; i++) {
      t0 = performance.now();
      await indicators(db.sql, t, MONTH, { source: 'raw' });
      rawTimes.push(ms(t0));
    }
    const anchorMs = pct(rawTimes, 50);
    log(`month query (raw GROUP BY over the CDRs): median ${anchorMs.toFixed(0)} ms over ${rawTimes.length} runs (${rawTimes.map((x) => x.toFixed(0)).join(', ')})`);

    // ---- other shapes, for the record ----
    for (const [name, q] of EXTRA) {
      const p = new URLSearchParams(Object.entries(q).map(([k, v]): [string, string] => [k, String(v)])).toString();
      const xs: number[] = [];
      for (let i = 0; i < 3; i++) await get(`/v1/indicators?${p}`);
      for (let i = 0; i < 20; i++) {
        t0 = performance.now();
        await get(`/v1/indicators?${p}`);
        xs.push(ms(t0));
      }
      log(`  ${name}: p50 ${pct(xs, 50).toFixed(1)} ms, p95 ${pct(xs, 95).toFixed(1)} ms`);
    }

    log(`p95 ${p95.toFixed(1)} ms vs raw GROUP BY ${anchorMs.toFixed(0)} ms: ${(anchorMs / p95).toFixed(0)}× faster (higher is better below)`);
    log(benchLine('indicators', 1000 / p95, 'queries/s', 1000 / anchorMs));
  } finally {
    await app.close();
    await db.close();
  }
}
