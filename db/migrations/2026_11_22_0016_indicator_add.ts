import { sql, type Kysely } from 'kysely';
import { createIndicatorApply } from './2026_11_22_0007_indicators.js';

// One writer of the indicator rollups (issue 16). The five INSERT … ON CONFLICT
// DO UPDATE statements were written twice: in indicator_apply() (migration 0007)
// and in the batch writer's deltas (services/indicators/deltas.ts). Now
// indicator_add() is the only statement that writes the rollup tables: it takes
// deltas already grouped at two grains, and both paths hand it theirs.
//
//   a: (local hour, local day, direction, site, class, destination) → hours, days, destinations
//   b: (local day, direction, line, site, class)                    → lines, line months
//
// Each rollup's rows are grouped again by its own key (two deltas may differ as
// given yet be equal once stored: a lone surrogate stored as U+FFFD) and upserted
// in key order, so two concurrent transactions meet their common rows in the
// same order. NULL arrays add nothing.
//
// indicator_apply() keeps its signature and its results: it still says which
// stored CDRs and what of each one (its local hour and day, its line…), groups
// them at the two grains and calls indicator_add(). The zone both writers key
// in, and the lock that keeps it from changing meanwhile, is indicator_zone().

/** Each rollup: its key columns (after tenant_id) and how the grain it reads gives them. */
const ROLLUPS: { table: string; grain: 'a' | 'b'; key: Record<string, string>; where?: string }[] = [
  { table: 'indicator_hours', grain: 'a', key: { hour: 'hour', direction: 'direction', site: 'site', class: 'class' } },
  { table: 'indicator_days', grain: 'a', key: { day: 'day', direction: 'direction', site: 'site', class: 'class' } },
  { table: 'indicator_destinations', grain: 'a', key: { day: 'day', site: 'site', class: 'class', destination: 'destination' }, where: `direction = 'out'` },
  { table: 'indicator_lines', grain: 'b', key: { day: 'day', direction: 'direction', line: 'line', site: 'site', class: 'class' } },
  { table: 'indicator_line_months', grain: 'b', key: { month: `date_trunc('month', day)::date`, direction: 'direction', line: 'line', site: 'site' } },
];

/** One rollup's upsert: its deltas summed by its key, in key order, added to the rows already there. */
function upsert({ table, grain, key, where }: (typeof ROLLUPS)[number]): string {
  const columns = Object.keys(key).join(', ');
  const positions = Object.keys(key).map((_, i) => i + 2).join(', ');
  return `INSERT INTO ${table} AS r (tenant_id, ${columns}, calls, answered, talk_seconds, cost)
        SELECT p_tenant, ${Object.values(key).join(', ')}, sum(calls), sum(answered), sum(talk), sum(cost)
          FROM ${grain}${where ? ` WHERE ${where}` : ''} GROUP BY ${positions} ORDER BY ${positions}
        ON CONFLICT (tenant_id, ${columns}) DO UPDATE SET calls = r.calls + EXCLUDED.calls, answered = r.answered + EXCLUDED.answered,
           talk_seconds = r.talk_seconds + EXCLUDED.talk_seconds, cost = r.cost + EXCLUDED.cost`;
}

export async function up(db: Kysely<any>): Promise<void> {
  // the zone a writer of rollups keys in, read FOR KEY SHARE: a timezone change (updateTenant takes
  // FOR UPDATE) waits for the writer's transaction, and its rebuild then sees the writer's CDRs
  await sql`
    CREATE FUNCTION indicator_zone(p_tenant uuid) RETURNS text LANGUAGE sql AS $fn$
      SELECT timezone FROM tenants WHERE id = p_tenant FOR KEY SHARE
    $fn$`.execute(db);

  const last = ROLLUPS.length - 1;
  await sql`
    CREATE FUNCTION indicator_add(p_tenant uuid,
      a_hour timestamptz[], a_day date[], a_direction text[], a_site text[], a_class text[], a_destination text[],
      a_calls bigint[], a_answered bigint[], a_talk bigint[], a_cost numeric[],
      b_day date[], b_direction text[], b_line text[], b_site text[], b_class text[],
      b_calls bigint[], b_answered bigint[], b_talk bigint[], b_cost numeric[])
    RETURNS void LANGUAGE plpgsql AS $fn$
    BEGIN
      WITH a AS MATERIALIZED (
        SELECT * FROM unnest(a_hour, a_day, a_direction, a_site, a_class, a_destination, a_calls, a_answered, a_talk, a_cost)
                 AS v(hour, day, direction, site, class, destination, calls, answered, talk, cost)
      ),
      b AS MATERIALIZED (
        SELECT * FROM unnest(b_day, b_direction, b_line, b_site, b_class, b_calls, b_answered, b_talk, b_cost)
                 AS v(day, direction, line, site, class, calls, answered, talk, cost)
      ),
      ${sql.raw(ROLLUPS.slice(0, last).map((r, i) => `u${i} AS (\n        ${upsert(r)}\n      )`).join(',\n      '))}
      ${sql.raw(upsert(ROLLUPS[last]!))};
    END $fn$`.execute(db);

  // p_ids: those CDRs; NULL: every CDR of the tenant (optionally an id range, for bulk builds)
  await sql`
    CREATE OR REPLACE FUNCTION indicator_apply(p_tenant uuid, p_ids bigint[], p_sign integer DEFAULT 1,
                                               p_min_id bigint DEFAULT NULL, p_max_id bigint DEFAULT NULL)
    RETURNS bigint LANGUAGE plpgsql AS $fn$
    DECLARE
      zone text := indicator_zone(p_tenant);
      added bigint;
    BEGIN
      IF zone IS NULL THEN RETURN 0; END IF;
      EXECUTE format($q$
        WITH fact AS MATERIALIZED (
          SELECT c.started_at - ((c.started_at AT TIME ZONE $3) - date_trunc('hour', c.started_at AT TIME ZONE $3)) AS hour,
                 (c.started_at AT TIME ZONE $3)::date AS day, c.direction, c.site, c.class, c.destination,
                 COALESCE(c.line, c.caller) AS line, c.disposition = 'answered' AS ok, c.duration_seconds AS dur, c.cost
            FROM cdrs c WHERE %s
        ),
        a AS (
          SELECT array_agg(hour) AS hour, array_agg(day) AS day, array_agg(direction) AS direction, array_agg(site) AS site,
                 array_agg(class) AS class, array_agg(destination) AS destination, array_agg(calls) AS calls,
                 array_agg(answered) AS answered, array_agg(talk) AS talk, array_agg(cost) AS cost
            FROM (SELECT hour, day, direction, site, class, destination, $4 * count(*) AS calls, $4 * count(*) FILTER (WHERE ok) AS answered,
                         $4 * COALESCE(sum(dur) FILTER (WHERE ok), 0) AS talk, $4 * sum(cost) AS cost
                    FROM fact GROUP BY hour, day, direction, site, class, destination) g
        ),
        b AS (
          SELECT array_agg(day) AS day, array_agg(direction) AS direction, array_agg(line) AS line, array_agg(site) AS site,
                 array_agg(class) AS class, array_agg(calls) AS calls, array_agg(answered) AS answered, array_agg(talk) AS talk,
                 array_agg(cost) AS cost
            FROM (SELECT day, direction, line, site, class, $4 * count(*) AS calls, $4 * count(*) FILTER (WHERE ok) AS answered,
                         $4 * COALESCE(sum(dur) FILTER (WHERE ok), 0) AS talk, $4 * sum(cost) AS cost
                    FROM fact GROUP BY day, direction, line, site, class) g
        )
        SELECT (SELECT count(*) FROM fact)
          FROM a, b, indicator_add($1, a.hour, a.day, a.direction, a.site, a.class, a.destination, a.calls, a.answered, a.talk, a.cost,
                                   b.day, b.direction, b.line, b.site, b.class, b.calls, b.answered, b.talk, b.cost)$q$,
        concat_ws(' AND ', 'c.tenant_id = $1', CASE WHEN p_ids IS NOT NULL THEN 'c.id = ANY($2)' END,
                  CASE WHEN p_min_id IS NOT NULL THEN 'c.id >= $5' END, CASE WHEN p_max_id IS NOT NULL THEN 'c.id < $6' END))
      INTO added USING p_tenant, p_ids, zone, p_sign, p_min_id, p_max_id;
      RETURN added;
    END $fn$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP FUNCTION IF EXISTS indicator_apply(uuid, bigint[], integer, bigint, bigint)`.execute(db);
  await createIndicatorApply(db);
  await sql`DROP FUNCTION IF EXISTS indicator_add(uuid, timestamptz[], date[], text[], text[], text[], text[], bigint[], bigint[], bigint[], numeric[],
                                                 date[], text[], text[], text[], text[], bigint[], bigint[], bigint[], numeric[])`.execute(db);
  await sql`DROP FUNCTION IF EXISTS indicator_zone(uuid)`.execute(db);
}
