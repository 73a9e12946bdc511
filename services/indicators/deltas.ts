/**
 * What a batch of freshly rated CDRs adds to the indicator rollups, grouped
 * from the rated rows the batch writer already holds in memory: reading every
 * inserted row back by id, as indicator_apply() would, costs the hot path more
 * PostgreSQL time per CDR than grouping here (figures: benchmarks/RESULTS.md,
 * ingest). The groups go to indicator_add() (migration 0016), the one writer of
 * the rollup tables, which indicator_apply() calls too.
 *
 * Local time comes from PostgreSQL, not from Node's time zone data: one
 * statement reads the tenant's zone through indicator_zone(), under the lock
 * indicator_apply() takes too (a zone change waits for this transaction, and
 * its rebuild then sees these CDRs), and gives the zone's UTC offset at the
 * first and last microsecond of every UTC hour the batch touches. Where both
 * agree — every hour but those of a DST change — a CDR's local hour, day and
 * month are integer arithmetic on its epoch ms, exactly as `started_at AT TIME
 * ZONE z` would have them. The few CDRs of an hour that contains a change go
 * through indicator_apply() by id.
 */
import type postgres from 'postgres';

type Tx = postgres.TransactionSql | postgres.Sql;

/** One rated CDR, as the rollups see it (filled by the caller, reused between rows). */
export interface RollupFact {
  startedAtMs: number;
  direction: 'in' | 'out';
  site: string | null;
  /** The CDR's line, or its caller when it has none (COALESCE(line, caller)). */
  line: string | null;
  class: string | null;
  destination: string | null;
  answered: boolean;
  durationSeconds: number;
  /** Cost in 1/10000 units (≥ 0, a safe integer). */
  cost: number;
}

const HOUR = 3_600_000;
const DAY = 86_400_000;

/** Small ids for the values of one batch: grouping keys are numbers, not strings built per CDR. */
class Interner<T> {
  private readonly ids = new Map<T, number>();
  readonly values: T[] = [];
  id(v: T): number {
    let id = this.ids.get(v);
    if (id === undefined) {
      id = this.values.length;
      this.values.push(v);
      this.ids.set(v, id);
    }
    return id;
  }
}

/** Measures of the groups of one grouping, by group index. */
class Groups {
  readonly index = new Map<number, number>();
  readonly calls: number[] = [];
  readonly answered: number[] = [];
  readonly talk: number[] = [];
  readonly cost: number[] = [];
  /** The group's key parts (interned ids), in the order the caller gave them. */
  readonly parts: number[][] = [];

  add(key: number, f: RollupFact, talk: number, p0: number, p1: number, p2: number, p3: number, p4: number): void {
    let g = this.index.get(key);
    if (g === undefined) {
      g = this.calls.length;
      this.index.set(key, g);
      this.calls.push(0);
      this.answered.push(0);
      this.talk.push(0);
      this.cost.push(0);
      this.parts.push([p0, p1, p2, p3, p4]);
    }
    this.calls[g]!++;
    if (f.answered) this.answered[g]!++;
    this.talk[g]! += talk;
    this.cost[g]! += f.cost;
  }
}

/** "2026-11-03" of a local day number (days since 1970-01-01). */
function dayText(day: number): string {
  return new Date(day * DAY).toISOString().slice(0, 10);
}

function units4(units: number): string {
  // sums of non-negative safe integers: exact as long as the total is safe
  if (!Number.isSafeInteger(units) || units < 0) throw new RangeError(`rollup cost out of range: ${units}`);
  const digits = String(units).padStart(5, '0');
  return digits.slice(0, -4) + '.' + digits.slice(-4);
}

/** Array literal of text values (NULL for null). */
function textArray(values: readonly (string | null)[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (i > 0) out += ',';
    out += v === null ? 'NULL' : '"' + v.replace(/[\\"]/g, '\\$&') + '"';
  }
  return out + '}';
}

function intArray(values: readonly number[]): string {
  for (const v of values) if (!Number.isSafeInteger(v)) throw new RangeError(`not a safe integer: ${v}`);
  return '{' + values.join(',') + '}';
}

// bounds of the interned ids packed into one number key (< 2^53); a batch beyond them
// (tens of thousands of sites, years of hours) sends the rows past them through indicator_apply()
const HOURS_MAX = 1 << 16;
const DAYS_MAX = 1 << 10;
const SITES_MAX = 1 << 10;
const CLASSES_MAX = 1 << 4;
const DESTINATIONS_MAX = 1 << 12;
const LINES_MAX = 1 << 20;

/**
 * Adds `rows` to the tenant's rollups, in the caller's transaction. `fill`
 * writes row i's facts into the object it is given; `idOf` names the stored
 * CDR (for the rows that go through indicator_apply).
 */
export async function addRatedToRollups(
  tx: Tx,
  tenantId: string,
  count: number,
  fill: (i: number, into: RollupFact) => void,
  idOf: (i: number) => string,
): Promise<void> {
  if (count === 0) return;
  const f: RollupFact = { startedAtMs: 0, direction: 'out', site: null, line: null, class: null, destination: null, answered: false, durationSeconds: 0, cost: 0 };

  // the UTC hours touched, then their offsets in the tenant's zone, under its KEY SHARE lock
  const hours = new Set<number>();
  for (let i = 0; i < count; i++) {
    fill(i, f);
    hours.add(Math.floor(f.startedAtMs / HOUR));
  }
  const hourList = [...hours];
  const [zone] = await tx<{ zone: string | null; offsets: string | null }[]>`
    SELECT t.zone, (SELECT string_agg(h::text || ':' || extract(epoch FROM (a AT TIME ZONE t.zone))::bigint - h * 3600 || ':'
                              || extract(epoch FROM ((a + interval '1 hour' - interval '1 microsecond') AT TIME ZONE t.zone) + interval '1 microsecond')::bigint - (h + 1) * 3600, ',')
              FROM unnest(${intArray(hourList)}::bigint[]) AS h, LATERAL (SELECT 'epoch'::timestamptz + h * interval '1 hour' AS a) x) AS offsets
      FROM indicator_zone(${tenantId}::uuid) AS t(zone)`;
  if (zone?.zone == null) return; // no such tenant: indicator_apply would add nothing either
  /** Offset in ms of each UTC hour without a change of offset inside it. */
  const steady = new Map<number, number>();
  for (const item of (zone.offsets ?? '').split(',')) {
    if (item === '') continue;
    const [h, start, end] = item.split(':');
    if (start === end) steady.set(Number(h), Number(start) * 1000);
  }

  const hourGroups = new Interner<number>();
  const hourSec: number[] = [];
  const hourDay: number[] = [];
  const days = new Interner<number>();
  const sites = new Interner<string | null>();
  const classes = new Interner<string | null>();
  const destinations = new Interner<string | null>();
  const lines = new Interner<string | null>();
  // A: (local hour, local day, direction, site, class, destination) → hours, days, destinations
  // B: (local day, direction, line, site, class) → lines, line months
  const a = new Groups();
  const b = new Groups();
  const viaSql: string[] = [];
  for (let i = 0; i < count; i++) {
    fill(i, f);
    const offset = steady.get(Math.floor(f.startedAtMs / HOUR));
    if (offset === undefined) {
      viaSql.push(idOf(i)); // an hour with a change of offset inside it
      continue;
    }
    const local = f.startedAtMs + offset;
    const hourStart = f.startedAtMs - (((local % HOUR) + HOUR) % HOUR); // the instant the local hour starts
    const day = Math.floor(local / DAY);
    const sec = hourStart / 1000;
    const hourKey = sec * 65_536 + (day + 32_768);
    if (!Number.isSafeInteger(hourKey) || day < -32_768 || day >= 32_768) {
      viaSql.push(idOf(i)); // a fraction of a second in the offset, or an instant centuries away
      continue;
    }
    const hg = hourGroups.id(hourKey);
    if (hg === hourSec.length) {
      hourSec.push(sec);
      hourDay.push(day);
    }
    const dy = days.id(day);
    const site = sites.id(f.site);
    const cls = classes.id(f.class);
    const dest = destinations.id(f.destination);
    const line = lines.id(f.line);
    if (hg >= HOURS_MAX || dy >= DAYS_MAX || site >= SITES_MAX || cls >= CLASSES_MAX || dest >= DESTINATIONS_MAX || line >= LINES_MAX) {
      viaSql.push(idOf(i));
      continue;
    }
    const dir = f.direction === 'out' ? 1 : 0;
    const talk = f.answered ? f.durationSeconds : 0;
    a.add((((hg * 2 + dir) * SITES_MAX + site) * CLASSES_MAX + cls) * DESTINATIONS_MAX + dest, f, talk, hg, dir, site, cls, dest);
    b.add((((dy * 2 + dir) * LINES_MAX + line) * SITES_MAX + site) * CLASSES_MAX + cls, f, talk, day, dir, line, site, cls);
  }
  if (viaSql.length > 0) {
    for (const id of viaSql) if (!/^\d{1,19}$/.test(id)) throw new RangeError(`not a CDR id: ${id}`);
    await tx`SELECT indicator_apply(${tenantId}::uuid, ${'{' + viaSql.join(',') + '}'}::bigint[], 1)`;
  }
  if (a.calls.length === 0) return;

  const dirText = (d: number) => (d === 1 ? 'out' : 'in');
  const dayTexts = new Map<number, string>();
  const dayOf = (d: number) => {
    let t = dayTexts.get(d);
    if (t === undefined) {
      t = dayText(d);
      dayTexts.set(d, t);
    }
    return t;
  };
  const hourTexts: string[] = [];
  const hourOf = (hg: number) => (hourTexts[hg] ??= new Date(hourSec[hg]! * 1000).toISOString());
  const measures = (g: Groups) => ({
    calls: intArray(g.calls),
    answered: intArray(g.answered),
    talk: intArray(g.talk),
    cost: '{' + g.cost.map(units4).join(',') + '}',
  });
  const am = measures(a);
  const bm = measures(b);
  const aHour = textArray(a.parts.map((p) => hourOf(p[0]!)));
  const aDay = textArray(a.parts.map((p) => dayOf(hourDay[p[0]!]!)));
  const aDir = textArray(a.parts.map((p) => dirText(p[1]!)));
  const aSite = textArray(a.parts.map((p) => sites.values[p[2]!]!));
  const aClass = textArray(a.parts.map((p) => classes.values[p[3]!]!));
  const aDest = textArray(a.parts.map((p) => destinations.values[p[4]!]!));
  const bDay = textArray(b.parts.map((p) => dayOf(p[0]!)));
  const bDir = textArray(b.parts.map((p) => dirText(p[1]!)));
  const bLine = textArray(b.parts.map((p) => lines.values[p[2]!]!));
  const bSite = textArray(b.parts.map((p) => sites.values[p[3]!]!));
  const bClass = textArray(b.parts.map((p) => classes.values[p[4]!]!));
  await tx`
    SELECT indicator_add(${tenantId}::uuid,
      ${aHour}::timestamptz[], ${aDay}::date[], ${aDir}::text[], ${aSite}::text[], ${aClass}::text[], ${aDest}::text[],
      ${am.calls}::bigint[], ${am.answered}::bigint[], ${am.talk}::bigint[], ${am.cost}::numeric[],
      ${bDay}::date[], ${bDir}::text[], ${bLine}::text[], ${bSite}::text[], ${bClass}::text[],
      ${bm.calls}::bigint[], ${bm.answered}::bigint[], ${bm.talk}::bigint[], ${bm.cost}::numeric[])`;
}
