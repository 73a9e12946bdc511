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
import { DateTime } from 'luxon';
import type postgres from 'postgres';
import { ValidationError } from '../shared/errors.js';
import { fromUnits4, toUnits4 } from '../cdrs/pgArrays.js';
import { periodBound } from '../cdrs/view.js';

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

/** Bucket starts (local hour, day or month starts) covering [from, to). */
export function bucketStarts(from: Date, to: Date, zone: string, granularity: Granularity): DateTime[] {
  const out: DateTime[] = [];
  let b = DateTime.fromJSDate(from, { zone }).startOf(granularity);
  const end = to.getTime();
  while (b.toMillis() < end) {
    out.push(b);
    if (out.length > MAX_SERIES_POINTS) {
      throw new ValidationError('period too long for this granularity', [
        { field: 'granularity', value: granularity, message: `at most ${MAX_SERIES_POINTS} points: choose a coarser granularity or a shorter period` },
      ]);
    }
    let next = b.plus({ [`${granularity}s`]: 1 }).startOf(granularity);
    if (next <= b) next = b.plus({ [`${granularity}s`]: 1 });
    b = next;
  }
  return out;
}

type Sql = postgres.Sql;
type Fragment = postgres.PendingQuery<postgres.Row[]>;

function unionAll(sql: Sql, parts: Fragment[]): Fragment {
  return parts.reduce((acc, p) => sql`${acc} UNION ALL ${p}`);
}

interface Filters {
  site?: string;
  line?: string;
  class?: string;
}

/** WHERE conditions on rollup columns (site, class and, where present, line). */
function rollupFilters(sql: Sql, f: Filters, withLine: boolean): Fragment {
  return sql`${f.site !== undefined ? sql`AND site = ${f.site}` : sql``}
    ${f.class !== undefined ? sql`AND class = ${f.class}` : sql``}
    ${withLine && f.line !== undefined ? sql`AND line = ${f.line}` : sql``}`;
}

function rawWhere(sql: Sql, tenantId: string, range: [Date, Date], f: Filters): Fragment {
  return sql`c.tenant_id = ${tenantId} AND c.started_at >= ${range[0]} AND c.started_at < ${range[1]}
    ${f.site !== undefined ? sql`AND c.site = ${f.site}` : sql``}
    ${f.class !== undefined ? sql`AND c.class = ${f.class}` : sql``}
    ${f.line !== undefined ? sql`AND COALESCE(c.line, c.caller) = ${f.line}` : sql``}`;
}

const RAW_MEASURES = `1::bigint AS calls, (c.disposition = 'answered')::int::bigint AS answered,
  (CASE WHEN c.disposition = 'answered' THEN c.duration_seconds ELSE 0 END)::bigint AS talk, c.cost::numeric AS cost`;
const ROLLUP_MEASURES = `calls, answered, talk_seconds AS talk, cost`;

function rawBucket(sql: Sql, zone: string, g: Granularity): Fragment {
  if (g === 'hour') return sql`c.started_at - ((c.started_at AT TIME ZONE ${zone}) - date_trunc('hour', c.started_at AT TIME ZONE ${zone}))`;
  if (g === 'day') return sql`(c.started_at AT TIME ZONE ${zone})::date`;
  return sql`date_trunc('month', c.started_at AT TIME ZONE ${zone})::date`;
}

interface SeriesRow {
  bucket: string;
  direction: 'in' | 'out';
  calls: string;
  answered: string;
  talk: string;
  cost: string;
}

function seriesQuery(sql: Sql, tenantId: string, zone: string, plan: Plan, g: Granularity, f: Filters) {
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
  const bucketText = g === 'hour' ? sql`(extract(epoch FROM bucket) * 1000)::bigint::text` : sql`bucket::text`;
  return sql<SeriesRow[]>`
    SELECT ${bucketText} AS bucket, direction, sum(calls)::text AS calls, sum(answered)::text AS answered,
           sum(talk)::text AS talk, sum(cost)::text AS cost
      FROM (${unionAll(sql, parts)}) p GROUP BY bucket, direction`;
}

interface DestinationRow {
  destination: string | null;
  class: string | null;
  calls: string;
  seconds: string;
  cost: string;
}

function destinationQuery(sql: Sql, tenantId: string, plan: Plan, f: Filters) {
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
function topLinesQuery(sql: Sql, tenantId: string, plan: Plan, f: Filters, top: number, direction: 'in' | 'out') {
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

/** The §8 indicators of a tenant. `source: 'raw'` answers from the CDRs alone (the reference). */
export async function indicators(sql: Sql, tenant: IndicatorTenant, q: IndicatorQuery, options: { source?: 'rollups' | 'raw' } = {}): Promise<Indicators> {
  const zone = tenant.timezone;
  const granularity = q.granularity ?? 'day';
  const now = DateTime.now().setZone(zone);
  const from = q.from !== undefined ? periodBound(q.from, 'from', zone) : now.startOf('month').toJSDate();
  const to = q.to !== undefined ? periodBound(q.to, 'to', zone) : DateTime.fromJSDate(from, { zone }).startOf('month').plus({ months: 1 }).toJSDate();
  if (!(from < to)) throw new ValidationError('empty period', [{ field: 'to', value: q.to ?? '', message: '`to` must be after `from`' }]);
  const buckets = bucketStarts(from, to, zone, granularity);
  const plan = planPeriod(from, to, zone, options.source);
  const f: Filters = { site: q.site, line: q.line, class: q.class };
  const [series, destinations, linesOut, linesIn] = await Promise.all([
    seriesQuery(sql, tenant.id, zone, plan, granularity, f),
    destinationQuery(sql, tenant.id, plan, f),
    topLinesQuery(sql, tenant.id, plan, f, q.top ?? 10, 'out'),
    topLinesQuery(sql, tenant.id, plan, f, q.top ?? 10, 'in'),
  ]);
  return assemble(tenant, from, to, granularity, buckets, series, destinations, linesOut, linesIn);
}

function assemble(
  tenant: IndicatorTenant,
  from: Date,
  to: Date,
  granularity: Granularity,
  buckets: DateTime[],
  seriesRows: SeriesRow[],
  destinations: DestinationRow[],
  linesOut: LineRow[],
  linesIn: LineRow[],
): Indicators {
  const zone = tenant.timezone;
  const iso = (d: DateTime) => d.toISO({ suppressMilliseconds: true })!;
  interface Acc {
    at: DateTime;
    outCalls: number;
    outAnswered: number;
    inCalls: number;
    inAnswered: number;
    outTalk: number;
    inTalk: number;
    cost: bigint;
  }
  const byKey = new Map<string, Acc>();
  const keyOf = (d: DateTime) => (granularity === 'hour' ? String(d.toMillis()) : d.toISODate()!);
  const empty = (at: DateTime): Acc => ({ at, outCalls: 0, outAnswered: 0, inCalls: 0, inAnswered: 0, outTalk: 0, inTalk: 0, cost: 0n });
  for (const b of buckets) byKey.set(keyOf(b), empty(b));
  for (const r of seriesRows) {
    let acc = byKey.get(r.bucket);
    if (acc === undefined) {
      // a bucket the calendar walk did not produce (a zone whose offset moves mid-hour): keep it
      const at = granularity === 'hour' ? DateTime.fromMillis(Number(r.bucket), { zone }) : DateTime.fromISO(r.bucket, { zone }).startOf('day');
      acc = empty(at);
      byKey.set(r.bucket, acc);
    }
    if (r.direction === 'out') {
      acc.outCalls += Number(r.calls);
      acc.outAnswered += Number(r.answered);
      acc.outTalk += Number(r.talk);
    } else {
      acc.inCalls += Number(r.calls);
      acc.inAnswered += Number(r.answered);
      acc.inTalk += Number(r.talk);
    }
    acc.cost += toUnits4(r.cost);
  }
  const points = [...byKey.values()].sort((a, b) => a.at.toMillis() - b.at.toMillis());
  const total = empty(DateTime.fromJSDate(from, { zone }));
  for (const p of points) {
    total.outCalls += p.outCalls;
    total.outAnswered += p.outAnswered;
    total.inCalls += p.inCalls;
    total.inAnswered += p.inAnswered;
    total.outTalk += p.outTalk;
    total.inTalk += p.inTalk;
    total.cost += p.cost;
  }
  const lineFigure = (r: LineRow): LineFigure => ({ line: r.line, calls: Number(r.calls), seconds: Number(r.seconds) });
  return {
    period: { from: iso(DateTime.fromJSDate(from, { zone })), to: iso(DateTime.fromJSDate(to, { zone })), timezone: zone, granularity },
    currency: tenant.currency,
    locale: tenant.locale,
    outgoing: {
      calls: total.outCalls,
      answered: total.outAnswered,
      talkSeconds: total.outTalk,
      cost: fromUnits4(total.cost),
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
      calls: total.inCalls,
      missed: total.inCalls - total.inAnswered,
      talkSeconds: total.inTalk,
      topLines: linesIn.map(lineFigure),
    },
    series: points.map((p) => ({
      start: iso(p.at),
      outgoingCalls: p.outCalls,
      outgoingAnswered: p.outAnswered,
      incomingCalls: p.inCalls,
      incomingMissed: p.inCalls - p.inAnswered,
      talkSeconds: p.outTalk + p.inTalk,
      cost: fromUnits4(p.cost),
    })),
  };
}
