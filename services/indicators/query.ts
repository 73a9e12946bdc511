/**
 * SPEC §8 activity indicators, read from the rollups (docs/indicators.md).
 *
 * The period [from, to) is cut in the tenant's timezone into
 *  - an interior of whole local days (and, inside it, whole local months),
 *    answered from the rollups, and
 *  - at most two edges shorter than a day (when from/to are not midnights),
 *    answered from the CDRs themselves (an index range on started_at).
 * Each indicator is ONE SQL statement: a UNION ALL of those parts, aggregated
 * together, so the figures are exactly those of a GROUP BY over the CDRs. With
 * `source: 'raw'` the whole period is one "edge": that is the raw GROUP BY the
 * tests and the benchmark compare with.
 */
import { DateTime, Info } from 'luxon';
import type postgres from 'postgres';
import { ValidationError } from '../shared/errors.js';
import { fromUnits4, toUnits4 } from '../cdrs/pgArrays.js';
import { checkRange, periodBound } from '../cdrs/view.js';

export const GRANULARITIES = ['hour', 'day', 'month'] as const;
export type Granularity = (typeof GRANULARITIES)[number];

export interface IndicatorQuery {
  from?: string;
  to?: string;
  granularity?: Granularity;
  site?: string;
  line?: string;
  class?: string;
  /** How many lines in each topLines list (default 10). */
  top?: number;
}

export interface IndicatorTenant {
  id: string;
  timezone: string;
  currency: string;
  locale: string;
}

export interface LineFigure {
  line: string | null;
  calls: number;
  seconds: number;
}

export interface DestinationFigure {
  destination: string | null;
  class: string | null;
  calls: number;
  seconds: number;
  cost: string;
}

export interface SeriesPoint {
  start: string;
  outgoingCalls: number;
  outgoingAnswered: number;
  incomingCalls: number;
  incomingMissed: number;
  talkSeconds: number;
  cost: string;
}

export interface Indicators {
  period: { from: string; to: string; timezone: string; granularity: Granularity };
  currency: string;
  locale: string;
  outgoing: { calls: number; answered: number; talkSeconds: number; cost: string; byDestination: DestinationFigure[]; topLines: LineFigure[] };
  incoming: { calls: number; missed: number; talkSeconds: number; topLines: LineFigure[] };
  series: SeriesPoint[];
}

export const MAX_SERIES_POINTS = 10_000;

/** The period cut into rollup-served whole days/months and raw-served edges. */
export interface Plan {
  from: Date;
  to: Date;
  /** Whole local days [d0, d1) as dates, and their instants. */
  days: { d0: string; d1: string; start: Date; end: Date } | null;
  /** Whole local months [m0, m1) inside the days (first-of-month dates). */
  months: { m0: string; m1: string } | null;
  /** Ranges read from the CDRs. */
  raw: [Date, Date][];
}

export function planPeriod(from: Date, to: Date, zone: string, source: 'rollups' | 'raw' = 'rollups'): Plan {
  if (source === 'raw') return { from, to, days: null, months: null, raw: [[from, to]] };
  const f = DateTime.fromJSDate(from, { zone });
  const t = DateTime.fromJSDate(to, { zone });
  const fDay = f.startOf('day');
  const first = fDay.toMillis() === f.toMillis() ? fDay : fDay.plus({ days: 1 }).startOf('day');
  const last = t.startOf('day');
  if (!(first < last)) return { from, to, days: null, months: null, raw: [[from, to]] };
  const start = first.toJSDate();
  const end = last.toJSDate();
  const raw: [Date, Date][] = [];
  if (from < start) raw.push([from, start]);
  if (end < to) raw.push([end, to]);
  const d0 = first.toISODate()!;
  const d1 = last.toISODate()!;
  const d0u = DateTime.fromISO(d0, { zone: 'utc' });
  const m0 = (d0u.day === 1 ? d0u : d0u.startOf('month').plus({ months: 1 })).toISODate()!;
  const m1 = DateTime.fromISO(d1, { zone: 'utc' }).startOf('month').toISODate()!;
  return { from, to, days: { d0, d1, start, end }, months: m0 < m1 ? { m0, m1 } : null, raw };
}

const HOUR_MS = 3_600_000;

/** The local calendar date of an instant, as days since 1970-01-01 (no DST in it: plain day arithmetic). */
function localDay(at: Date, zone: string): { days: number; year: number; month: number } {
  const d = DateTime.fromJSDate(at, { zone });
  return { days: Date.UTC(d.year, d.month - 1, d.day) / 86_400_000, year: d.year, month: d.month };
}

/**
 * How many series points [from, to) has, by arithmetic: a couple of zone
 * conversions whatever the length of the period, so an oversized request is
 * refused before anything is built (issue #24). Days and months: the local
 * dates (months) of `from` and of the last millisecond before `to`, inclusive —
 * exact. Hours: elapsed hours from the start of `from`'s local hour — exact in
 * every zone whose offset changes by whole hours (all of them today but Lord
 * Howe, whose half-hour change moves the count by one).
 */
export function bucketCount(from: Date, to: Date, zone: string, granularity: Granularity): number {
  if (!(from < to)) return 0;
  if (granularity === 'hour') {
    const f = DateTime.fromJSDate(from, { zone });
    const start = from.getTime() - (f.minute * 60_000 + f.second * 1000 + f.millisecond);
    return Math.ceil((to.getTime() - start) / HOUR_MS);
  }
  const first = localDay(from, zone);
  const last = localDay(new Date(to.getTime() - 1), zone);
  if (granularity === 'day') return last.days - first.days + 1;
  return (last.year - first.year) * 12 + (last.month - first.month) + 1;
}

/** 400 naming `granularity` when the period has more than MAX_SERIES_POINTS points (docs/indicators.md). */
export function checkSeriesSize(from: Date, to: Date, zone: string, granularity: Granularity): number {
  const points = bucketCount(from, to, zone, granularity);
  if (points > MAX_SERIES_POINTS) {
    throw new ValidationError('period too long for this granularity', [
      {
        field: 'granularity',
        value: granularity,
        message: `${points} points, at most ${MAX_SERIES_POINTS}: choose a coarser granularity or a shorter period`,
      },
    ]);
  }
  return points;
}

type Sql = postgres.Sql;
/** The statements' client: the pool or the request's transaction. */
type Client = postgres.Sql | postgres.TransactionSql;
type Fragment = postgres.PendingQuery<postgres.Row[]>;

function unionAll(sql: Client, parts: Fragment[]): Fragment {
  return parts.reduce((acc, p) => sql`${acc} UNION ALL ${p}`);
}

interface Filters {
  site?: string;
  line?: string;
  class?: string;
}

/** WHERE conditions on rollup columns (site, class and, where present, line). */
function rollupFilters(sql: Client, f: Filters, withLine: boolean): Fragment {
  return sql`${f.site !== undefined ? sql`AND site = ${f.site}` : sql``}
    ${f.class !== undefined ? sql`AND class = ${f.class}` : sql``}
    ${withLine && f.line !== undefined ? sql`AND line = ${f.line}` : sql``}`;
}

function rawWhere(sql: Client, tenantId: string, range: [Date, Date], f: Filters): Fragment {
  return sql`c.tenant_id = ${tenantId} AND c.started_at >= ${range[0]} AND c.started_at < ${range[1]}
    ${f.site !== undefined ? sql`AND c.site = ${f.site}` : sql``}
    ${f.class !== undefined ? sql`AND c.class = ${f.class}` : sql``}
    ${f.line !== undefined ? sql`AND COALESCE(c.line, c.caller) = ${f.line}` : sql``}`;
}

const RAW_MEASURES = `1::bigint AS calls, (c.disposition = 'answered')::int::bigint AS answered,
  (CASE WHEN c.disposition = 'answered' THEN c.duration_seconds ELSE 0 END)::bigint AS talk, c.cost::numeric AS cost`;
const ROLLUP_MEASURES = `calls, answered, talk_seconds AS talk, cost`;

function rawBucket(sql: Client, zone: string, g: Granularity): Fragment {
  if (g === 'hour') return sql`c.started_at - ((c.started_at AT TIME ZONE ${zone}) - date_trunc('hour', c.started_at AT TIME ZONE ${zone}))`;
  if (g === 'day') return sql`(c.started_at AT TIME ZONE ${zone})::date`;
  return sql`date_trunc('month', c.started_at AT TIME ZONE ${zone})::date`;
}

/** The series' totals, computed by PostgreSQL with its points. */
interface SeriesRow {
  outCalls: string;
  outAnswered: string;
  outTalk: string;
  inCalls: string;
  inAnswered: string;
  inTalk: string;
  cost: string;
}

/**
 * Every bucket of [from, to) in the tenant's zone, made by PostgreSQL (issue
 * #24: no per-bucket work on the server's event loop). Hours: the instants of
 * a 15-minute grid from the start of `from`'s local hour whose local time is on
 * the hour — both 02:00 of a fall-back night, none in a spring-forward gap, and
 * the right phase in half- and quarter-hour zones. Days and months: the local
 * dates from `from`'s to the last millisecond's.
 */
function bucketGrid(sql: Client, zone: string, from: Date, to: Date, g: Granularity): Fragment {
  const last = new Date(to.getTime() - 1);
  if (g === 'hour') {
    const start = sql`${from}::timestamptz - ((${from}::timestamptz AT TIME ZONE ${zone}) - date_trunc('hour', ${from}::timestamptz AT TIME ZONE ${zone}))`;
    return sql`SELECT t AS bucket FROM generate_series(${start}, ${last}::timestamptz, interval '15 minutes') t
      WHERE date_trunc('hour', t AT TIME ZONE ${zone}) = t AT TIME ZONE ${zone}`;
  }
  const step = g === 'day' ? sql`interval '1 day'` : sql`interval '1 month'`;
  const local = (at: Date) => sql`date_trunc(${g}, ${at}::timestamptz AT TIME ZONE ${zone})`;
  return sql`SELECT d::date AS bucket FROM generate_series(${local(from)}, ${local(last)}, ${step}) d`;
}

/**
 * A point's start as luxon's toISO({ suppressMilliseconds: true }) writes it in
 * the tenant's zone, from its local time and its offset in seconds:
 * `2026-10-25T02:00:00+01:00`, or `Z` at offset 0 in a zone luxon calls
 * universal (UTC, GMT).
 */
function isoStart(sql: Client, zone: string): Fragment {
  const hhmm = sql`lpad((abs(off) / 3600)::text, 2, '0') || ':' || lpad((abs(off) % 3600 / 60)::text, 2, '0')`;
  const signed = sql`CASE WHEN off < 0 THEN '-' ELSE '+' END || ${hhmm}`;
  const offset = Info.normalizeZone(zone).isUniversal ? sql`CASE WHEN off = 0 THEN 'Z' ELSE ${signed} END` : signed;
  return sql`to_char(local, 'YYYY-MM-DD"T"HH24:MI:SS') || ${offset}`;
}

function seriesQuery(sql: Client, tenantId: string, zone: string, plan: Plan, g: Granularity, f: Filters) {
  const parts: Fragment[] = [];
  const raw = [...plan.raw];
  const m = sql.unsafe(ROLLUP_MEASURES);
  if (plan.days) {
    const { d0, d1, start, end } = plan.days;
    if (g === 'hour') {
      // hours carry no line: with a line filter the interior is read from the CDRs too
      if (f.line !== undefined) raw.push([start, end]);
      else parts.push(sql`SELECT hour AS bucket, direction, ${m} FROM indicator_hours
        WHERE tenant_id = ${tenantId} AND hour >= ${start} AND hour < ${end} ${rollupFilters(sql, f, false)}`);
    } else {
      const bucket = g === 'day' ? sql`day` : sql`date_trunc('month', day)::date`;
      const table = f.line !== undefined ? sql`indicator_lines` : sql`indicator_days`;
      parts.push(sql`SELECT ${bucket} AS bucket, direction, ${m} FROM ${table}
        WHERE tenant_id = ${tenantId} AND day >= ${d0}::date AND day < ${d1}::date ${rollupFilters(sql, f, true)}`);
    }
  }
  const rm = sql.unsafe(RAW_MEASURES);
  for (const r of raw) parts.push(sql`SELECT ${rawBucket(sql, zone, g)} AS bucket, c.direction, ${rm} FROM cdrs c WHERE ${rawWhere(sql, tenantId, r, f)}`);
  // a day or month bucket starts at the first instant of its local date
  const at = g === 'hour' ? sql`k.bucket` : sql`k.bucket::timestamp AT TIME ZONE ${zone}`;
  const out = (col: string) => sql.unsafe(`coalesce(sum(${col}) FILTER (WHERE direction = 'out'), 0)::bigint`);
  const inc = (col: string) => sql.unsafe(`coalesce(sum(${col}) FILTER (WHERE direction = 'in'), 0)::bigint`);
  // a bucket with data outside the grid (a zone whose offset moves mid-hour) is kept
  return sql`
    WITH d AS (
      SELECT bucket, ${out('calls')} AS oc, ${out('answered')} AS oa, ${out('talk')} AS ot,
             ${inc('calls')} AS ic, ${inc('answered')} AS ia, ${inc('talk')} AS it, coalesce(sum(cost), 0) AS cost
        FROM (${unionAll(sql, parts)}) p GROUP BY bucket
    ), s AS (
      SELECT at, local, (extract(epoch FROM local) - extract(epoch FROM at))::int AS off, coalesce(d.oc, 0) AS oc, coalesce(d.oa, 0) AS oa, coalesce(d.ot, 0) AS ot,
             coalesce(d.ic, 0) AS ic, coalesce(d.ia, 0) AS ia, coalesce(d.it, 0) AS it, coalesce(d.cost, 0) AS cost
        FROM (${bucketGrid(sql, zone, plan.from, plan.to, g)} UNION SELECT bucket FROM d) k
        CROSS JOIN LATERAL (SELECT ${at} AS at) a CROSS JOIN LATERAL (SELECT a.at AT TIME ZONE ${zone} AS local) l
        LEFT JOIN d ON d.bucket = k.bucket
    )
    SELECT sum(oc)::text AS "outCalls", sum(oa)::text AS "outAnswered", sum(ot)::text AS "outTalk",
           sum(ic)::text AS "inCalls", sum(ia)::text AS "inAnswered", sum(it)::text AS "inTalk", round(sum(cost), 4)::text AS cost,
           coalesce(string_agg('{"start":"' || ${isoStart(sql, zone)} || '","outgoingCalls":' || oc || ',"outgoingAnswered":' || oa
             || ',"incomingCalls":' || ic || ',"incomingMissed":' || (ic - ia) || ',"talkSeconds":' || (ot + it)
             || ',"cost":"' || round(cost, 4) || '"}', ',' ORDER BY at), '') AS points
      FROM s`;
}

const TOTALS: (keyof SeriesRow)[] = ['outCalls', 'outAnswered', 'outTalk', 'inCalls', 'inAnswered', 'inTalk', 'cost'];

/**
 * The series' row read as bytes (postgres.js's raw rows): its points stay the
 * Buffer PostgreSQL sent and go into the answer as they are, not a 1.5 MB
 * string (for 10,000 points) decoded, copied into the answer's text and encoded
 * back to bytes: ~2 ms and 3 MB of strings less per request.
 */
async function readSeries(query: Fragment): Promise<{ points: Buffer; totals: SeriesRow }> {
  const [row] = (await query.raw()) as unknown as (Buffer | null)[][];
  if (!row) throw new Error('the series query returned no row');
  const text = (i: number) => row[i]?.toString('utf8') ?? null;
  const totals = Object.fromEntries(TOTALS.map((k, i) => [k, text(i)])) as unknown as SeriesRow;
  return { points: row[TOTALS.length] ?? Buffer.alloc(0), totals };
}

interface DestinationRow {
  destination: string | null;
  class: string | null;
  calls: string;
  seconds: string;
  cost: string;
}

function destinationQuery(sql: Client, tenantId: string, plan: Plan, f: Filters) {
  const parts: Fragment[] = [];
  const raw = [...plan.raw];
  if (plan.days) {
    const { d0, d1, start, end } = plan.days;
    // destinations carry no line: with a line filter the interior is read from the CDRs too
    if (f.line !== undefined) raw.push([start, end]);
    else parts.push(sql`SELECT destination, class, ${sql.unsafe(ROLLUP_MEASURES)} FROM indicator_destinations
      WHERE tenant_id = ${tenantId} AND day >= ${d0}::date AND day < ${d1}::date ${rollupFilters(sql, f, false)}`);
  }
  for (const r of raw) {
    parts.push(sql`SELECT c.destination, c.class, ${sql.unsafe(RAW_MEASURES)} FROM cdrs c WHERE ${rawWhere(sql, tenantId, r, f)} AND c.direction = 'out'`);
  }
  return sql<DestinationRow[]>`
    SELECT destination, class, sum(calls)::text AS calls, sum(talk)::text AS seconds, sum(cost)::text AS cost
      FROM (${unionAll(sql, parts)}) p GROUP BY destination, class HAVING sum(calls) > 0
     ORDER BY sum(calls) DESC, sum(talk) DESC, destination COLLATE "C" NULLS LAST, class COLLATE "C" NULLS LAST`;
}

interface LineRow {
  line: string | null;
  calls: string;
  seconds: string;
}

/** The most active lines of one direction: a top-N sort of the per-line sums. */
function topLinesQuery(sql: Client, tenantId: string, plan: Plan, f: Filters, top: number, direction: 'in' | 'out') {
  const parts: Fragment[] = [];
  const m = sql.unsafe(ROLLUP_MEASURES);
  const days = (a: string, b: string) =>
    parts.push(sql`SELECT line, ${m} FROM indicator_lines
      WHERE tenant_id = ${tenantId} AND day >= ${a}::date AND day < ${b}::date AND direction = ${direction} ${rollupFilters(sql, f, true)}`);
  if (plan.days) {
    const { d0, d1 } = plan.days;
    // line months carry no class: with a class filter the whole interior is read by day
    if (plan.months && f.class === undefined) {
      const { m0, m1 } = plan.months;
      parts.push(sql`SELECT line, ${m} FROM indicator_line_months
        WHERE tenant_id = ${tenantId} AND month >= ${m0}::date AND month < ${m1}::date AND direction = ${direction} ${rollupFilters(sql, f, true)}`);
      if (d0 < m0) days(d0, m0);
      if (m1 < d1) days(m1, d1);
    } else days(d0, d1);
  }
  for (const r of plan.raw) {
    parts.push(sql`SELECT COALESCE(c.line, c.caller) AS line, ${sql.unsafe(RAW_MEASURES)} FROM cdrs c
      WHERE ${rawWhere(sql, tenantId, r, f)} AND c.direction = ${direction}`);
  }
  return sql<LineRow[]>`
    SELECT line, sum(calls)::text AS calls, sum(talk)::text AS seconds
      FROM (${unionAll(sql, parts)}) p GROUP BY line HAVING sum(calls) > 0
     ORDER BY sum(calls) DESC, sum(talk) DESC, line COLLATE "C" NULLS LAST LIMIT ${top}`;
}

/** A request checked and planned, nothing asked of the database yet. */
export interface IndicatorRequest {
  tenant: IndicatorTenant;
  from: Date;
  to: Date;
  granularity: Granularity;
  plan: Plan;
  filters: Filters;
  top: number;
}

/**
 * Checks a request and counts its points: a 400 naming the field comes from
 * here, before any query and before the request waits for its turn — an
 * oversized period costs a couple of zone conversions (issue #24).
 */
export function indicatorRequest(tenant: IndicatorTenant, q: IndicatorQuery, options: { source?: 'rollups' | 'raw' } = {}): IndicatorRequest {
  const zone = tenant.timezone;
  const granularity = q.granularity ?? 'day';
  const now = DateTime.now().setZone(zone);
  const from = q.from !== undefined ? periodBound(q.from, 'from', zone) : now.startOf('month').toJSDate();
  const to = q.to !== undefined ? periodBound(q.to, 'to', zone) : DateTime.fromJSDate(from, { zone }).startOf('month').plus({ months: 1 }).toJSDate();
  checkRange(from, to, q);
  checkSeriesSize(from, to, zone, granularity);
  const filters: Filters = { site: q.site, line: q.line, class: q.class };
  return { tenant, from, to, granularity, plan: planPeriod(from, to, zone, options.source), filters, top: q.top ?? 10 };
}

/**
 * The §8 indicators as the bytes of the JSON answer. The series — every
 * bucket, its figures and its start — is written by PostgreSQL as JSON text and
 * passed through as bytes. The server runs this in a worker thread
 * (./worker.ts), off the thread that answers the PBX (issue #24).
 */
export async function runIndicators(sql: Sql, r: IndicatorRequest): Promise<Buffer> {
  const { tenant, plan, filters: f, granularity } = r;
  const zone = tenant.timezone;
  // One read-only transaction: the four statements see one snapshot (the totals are the series'), one
  // after the other on one connection and without parallel workers, so a report takes one core of
  // PostgreSQL at most and leaves the others to the PBX's commits (issue #24).
  const [series, destinations, linesOut, linesIn] = await sql.begin('read only', async (tx) => {
    await tx`SET LOCAL max_parallel_workers_per_gather = 0`;
    const s = await readSeries(seriesQuery(tx, tenant.id, zone, plan, granularity, f));
    const d = await destinationQuery(tx, tenant.id, plan, f);
    const lo = await topLinesQuery(tx, tenant.id, plan, f, r.top, 'out');
    const li = await topLinesQuery(tx, tenant.id, plan, f, r.top, 'in');
    return [s, d, lo, li] as const;
  });
  const head = assemble(tenant, r.from, r.to, granularity, series.totals, destinations, linesOut, linesIn);
  // `series` is the last key: its points go in as PostgreSQL wrote them
  return Buffer.concat([Buffer.from(`${JSON.stringify(head).slice(0, -1)},"series":[`), series.points, Buffer.from(']}')]);
}

/** Checks, then answers (`source: 'raw'`: from the CDRs alone, the reference). */
export async function indicatorsJson(sql: Sql, tenant: IndicatorTenant, q: IndicatorQuery, options: { source?: 'rollups' | 'raw' } = {}): Promise<string> {
  return (await runIndicators(sql, indicatorRequest(tenant, q, options))).toString('utf8');
}

/** The same answer as an object (tests, benchmarks, the CLI). */
export async function indicators(sql: Sql, tenant: IndicatorTenant, q: IndicatorQuery, options: { source?: 'rollups' | 'raw' } = {}): Promise<Indicators> {
  return JSON.parse(await indicatorsJson(sql, tenant, q, options)) as Indicators;
}

/** Everything but the series, in the order the answer prints it. */
function assemble(
  tenant: IndicatorTenant,
  from: Date,
  to: Date,
  granularity: Granularity,
  series: SeriesRow,
  destinations: DestinationRow[],
  linesOut: LineRow[],
  linesIn: LineRow[],
): Omit<Indicators, 'series'> {
  const zone = tenant.timezone;
  const iso = (d: Date) => DateTime.fromJSDate(d, { zone }).toISO({ suppressMilliseconds: true })!;
  const lineFigure = (r: LineRow): LineFigure => ({ line: r.line, calls: Number(r.calls), seconds: Number(r.seconds) });
  const inCalls = Number(series.inCalls);
  return {
    period: { from: iso(from), to: iso(to), timezone: zone, granularity },
    currency: tenant.currency,
    locale: tenant.locale,
    outgoing: {
      calls: Number(series.outCalls),
      answered: Number(series.outAnswered),
      talkSeconds: Number(series.outTalk),
      cost: fromUnits4(toUnits4(series.cost)),
      byDestination: destinations.map((d) => ({
        destination: d.destination,
        class: d.class,
        calls: Number(d.calls),
        seconds: Number(d.seconds),
        cost: fromUnits4(toUnits4(d.cost)),
      })),
      topLines: linesOut.map(lineFigure),
    },
    incoming: {
      calls: inCalls,
      missed: inCalls - Number(series.inAnswered),
      talkSeconds: Number(series.inTalk),
      topLines: linesIn.map(lineFigure),
    },
  };
}
