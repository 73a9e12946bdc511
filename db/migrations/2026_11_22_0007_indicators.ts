import { sql, type Kysely } from 'kysely';

// Activity indicators (issue 8, SPEC §8): rollups of the rated CDRs, kept exact
// and in the same transaction as the CDRs (docs/indicators.md).
//
// Every rollup is keyed in the tenant's own timezone: hour = the instant its
// local hour starts (two distinct hours on a fall-back night), day = local date,
// month = the local date of the 1st. A change of the tenant's timezone rebuilds
// its rollups in the same transaction (trigger below), so they never mix zones.
//
// indicator_apply() is the ONE definition of what a CDR adds to the rollups:
// the batch writer calls it with the ids it inserted (+1), rerating calls it
// around its UPDATE (-1 before, +1 after), the rebuild with every CDR of the
// tenant. Set-based: one statement, one INSERT … ON CONFLICT DO UPDATE of
// aggregated deltas per rollup table.
//
// Migration 0016 moved the writing of the rollups into indicator_add(), which
// indicator_apply() and the batch writer both call.

const MEASURES = sql.raw(`calls bigint NOT NULL, answered bigint NOT NULL, talk_seconds bigint NOT NULL, cost numeric NOT NULL`);

export async function up(db: Kysely<any>): Promise<void> {
  const ref = sql.raw(`uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE`);
  // series by local hour; filters site, class
  await sql`CREATE TABLE indicator_hours (tenant_id ${ref}, hour timestamptz NOT NULL, direction text NOT NULL,
            site text, class text, ${MEASURES})`.execute(db);
  await sql`CREATE UNIQUE INDEX indicator_hours_key ON indicator_hours (tenant_id, hour, direction, site, class) NULLS NOT DISTINCT`.execute(db);
  // series by local day or month, totals; filters site, class
  await sql`CREATE TABLE indicator_days (tenant_id ${ref}, day date NOT NULL, direction text NOT NULL,
            site text, class text, ${MEASURES})`.execute(db);
  await sql`CREATE UNIQUE INDEX indicator_days_key ON indicator_days (tenant_id, day, direction, site, class) NULLS NOT DISTINCT`.execute(db);
  // most active lines, and anything filtered by line (line = COALESCE(line, caller))
  await sql`CREATE TABLE indicator_lines (tenant_id ${ref}, day date NOT NULL, direction text NOT NULL, line text,
            site text, class text, ${MEASURES})`.execute(db);
  await sql`CREATE UNIQUE INDEX indicator_lines_key ON indicator_lines (tenant_id, day, direction, line, site, class) NULLS NOT DISTINCT`.execute(db);
  // by local month, without class: a month's top lines read ~31 × 5 fewer rows (a line is on one site,
  // so site costs nearly nothing); top lines filtered by class read indicator_lines
  await sql`CREATE TABLE indicator_line_months (tenant_id ${ref}, month date NOT NULL, direction text NOT NULL, line text,
            site text, ${MEASURES})`.execute(db);
  await sql`CREATE UNIQUE INDEX indicator_line_months_key ON indicator_line_months (tenant_id, month, direction, line, site) NULLS NOT DISTINCT`.execute(db);
  // outgoing minutes and cost by destination
  await sql`CREATE TABLE indicator_destinations (tenant_id ${ref}, day date NOT NULL, site text, class text, destination text,
            ${MEASURES})`.execute(db);
  await sql`CREATE UNIQUE INDEX indicator_destinations_key ON indicator_destinations (tenant_id, day, site, class, destination) NULLS NOT DISTINCT`.execute(db);

  await createIndicatorApply(db);
  await createRebuild(db);
}

/** indicator_apply() as this migration created it: migration 0016 replaced its body, and restores this one on the way down. */
export async function createIndicatorApply(db: Kysely<any>): Promise<void> {
  // p_ids: those CDRs; NULL: every CDR of the tenant (optionally an id range, for bulk builds).
  // The tenant row is read FOR KEY SHARE: a timezone change (updateTenant takes FOR UPDATE)
  // waits for us, and we for it, so no delta is ever keyed in a zone being replaced.
  await sql`
    CREATE FUNCTION indicator_apply(p_tenant uuid, p_ids bigint[], p_sign integer DEFAULT 1,
                                    p_min_id bigint DEFAULT NULL, p_max_id bigint DEFAULT NULL)
    RETURNS bigint LANGUAGE plpgsql AS $fn$
    DECLARE
      z text;
      n bigint;
      cond text := 'true';
    BEGIN
      SELECT timezone INTO z FROM tenants WHERE id = p_tenant FOR KEY SHARE;
      IF z IS NULL THEN RETURN 0; END IF;
      IF p_ids IS NOT NULL THEN cond := cond || ' AND c.id = ANY($2)'; END IF;
      IF p_min_id IS NOT NULL THEN cond := cond || ' AND c.id >= $5'; END IF;
      IF p_max_id IS NOT NULL THEN cond := cond || ' AND c.id < $6'; END IF;
      EXECUTE format($q$
        WITH src AS MATERIALIZED (
          SELECT c.direction, c.site, COALESCE(c.line, c.caller) AS line, c.class, c.destination,
                 c.disposition = 'answered' AS ok, c.duration_seconds AS dur, c.cost,
                 c.started_at - ((c.started_at AT TIME ZONE $3) - date_trunc('hour', c.started_at AT TIME ZONE $3)) AS hour,
                 (c.started_at AT TIME ZONE $3)::date AS day
            FROM cdrs c WHERE c.tenant_id = $1 AND %s
        ),
        h AS (
          INSERT INTO indicator_hours AS r (tenant_id, hour, direction, site, class, calls, answered, talk_seconds, cost)
          SELECT $1, hour, direction, site, class, $4 * count(*), $4 * count(*) FILTER (WHERE ok),
                 $4 * COALESCE(sum(dur) FILTER (WHERE ok), 0), $4 * sum(cost)
            FROM src GROUP BY hour, direction, site, class ORDER BY hour, direction, site, class
          ON CONFLICT (tenant_id, hour, direction, site, class) DO UPDATE SET calls = r.calls + EXCLUDED.calls,
             answered = r.answered + EXCLUDED.answered, talk_seconds = r.talk_seconds + EXCLUDED.talk_seconds, cost = r.cost + EXCLUDED.cost
        ),
        d AS (
          INSERT INTO indicator_days AS r (tenant_id, day, direction, site, class, calls, answered, talk_seconds, cost)
          SELECT $1, day, direction, site, class, $4 * count(*), $4 * count(*) FILTER (WHERE ok),
                 $4 * COALESCE(sum(dur) FILTER (WHERE ok), 0), $4 * sum(cost)
            FROM src GROUP BY day, direction, site, class ORDER BY day, direction, site, class
          ON CONFLICT (tenant_id, day, direction, site, class) DO UPDATE SET calls = r.calls + EXCLUDED.calls,
             answered = r.answered + EXCLUDED.answered, talk_seconds = r.talk_seconds + EXCLUDED.talk_seconds, cost = r.cost + EXCLUDED.cost
        ),
        l AS (
          INSERT INTO indicator_lines AS r (tenant_id, day, direction, line, site, class, calls, answered, talk_seconds, cost)
          SELECT $1, day, direction, line, site, class, $4 * count(*), $4 * count(*) FILTER (WHERE ok),
                 $4 * COALESCE(sum(dur) FILTER (WHERE ok), 0), $4 * sum(cost)
            FROM src GROUP BY day, direction, line, site, class ORDER BY day, direction, line, site, class
          ON CONFLICT (tenant_id, day, direction, line, site, class) DO UPDATE SET calls = r.calls + EXCLUDED.calls,
             answered = r.answered + EXCLUDED.answered, talk_seconds = r.talk_seconds + EXCLUDED.talk_seconds, cost = r.cost + EXCLUDED.cost
        ),
        m AS (
          INSERT INTO indicator_line_months AS r (tenant_id, month, direction, line, site, calls, answered, talk_seconds, cost)
          SELECT $1, date_trunc('month', day)::date, direction, line, site, $4 * count(*), $4 * count(*) FILTER (WHERE ok),
                 $4 * COALESCE(sum(dur) FILTER (WHERE ok), 0), $4 * sum(cost)
            FROM src GROUP BY 2, direction, line, site ORDER BY 2, direction, line, site
          ON CONFLICT (tenant_id, month, direction, line, site) DO UPDATE SET calls = r.calls + EXCLUDED.calls,
             answered = r.answered + EXCLUDED.answered, talk_seconds = r.talk_seconds + EXCLUDED.talk_seconds, cost = r.cost + EXCLUDED.cost
        ),
        o AS (
          INSERT INTO indicator_destinations AS r (tenant_id, day, site, class, destination, calls, answered, talk_seconds, cost)
          SELECT $1, day, site, class, destination, $4 * count(*), $4 * count(*) FILTER (WHERE ok),
                 $4 * COALESCE(sum(dur) FILTER (WHERE ok), 0), $4 * sum(cost)
            FROM src WHERE direction = 'out' GROUP BY day, site, class, destination ORDER BY day, site, class, destination
          ON CONFLICT (tenant_id, day, site, class, destination) DO UPDATE SET calls = r.calls + EXCLUDED.calls,
             answered = r.answered + EXCLUDED.answered, talk_seconds = r.talk_seconds + EXCLUDED.talk_seconds, cost = r.cost + EXCLUDED.cost
        )
        SELECT count(*) FROM src$q$, cond)
      INTO n USING p_tenant, p_ids, z, p_sign, p_min_id, p_max_id;
      RETURN n;
    END $fn$`.execute(db);
}

async function createRebuild(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE FUNCTION indicator_rebuild(p_tenant uuid) RETURNS bigint LANGUAGE plpgsql AS $fn$
    BEGIN
      DELETE FROM indicator_hours WHERE tenant_id = p_tenant;
      DELETE FROM indicator_days WHERE tenant_id = p_tenant;
      DELETE FROM indicator_lines WHERE tenant_id = p_tenant;
      DELETE FROM indicator_line_months WHERE tenant_id = p_tenant;
      DELETE FROM indicator_destinations WHERE tenant_id = p_tenant;
      RETURN indicator_apply(p_tenant, NULL, 1);
    END $fn$`.execute(db);

  await sql`
    CREATE FUNCTION indicator_zone_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      PERFORM indicator_rebuild(NEW.id);
      RETURN NULL;
    END $fn$`.execute(db);
  await sql`CREATE TRIGGER tenants_indicator_zone AFTER UPDATE OF timezone ON tenants FOR EACH ROW
            WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone) EXECUTE FUNCTION indicator_zone_changed()`.execute(db);

  // CDRs rated before this migration
  await sql`SELECT indicator_rebuild(t.id) FROM tenants t WHERE EXISTS (SELECT 1 FROM cdrs c WHERE c.tenant_id = t.id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TRIGGER IF EXISTS tenants_indicator_zone ON tenants`.execute(db);
  await sql`DROP FUNCTION IF EXISTS indicator_zone_changed()`.execute(db);
  await sql`DROP FUNCTION IF EXISTS indicator_rebuild(uuid)`.execute(db);
  await sql`DROP FUNCTION IF EXISTS indicator_apply(uuid, bigint[], integer, bigint, bigint)`.execute(db);
  for (const t of ['indicator_destinations', 'indicator_line_months', 'indicator_lines', 'indicator_days', 'indicator_hours']) {
    await sql`DROP TABLE IF EXISTS ${sql.raw(t)}`.execute(db);
  }
}
