/**
 * Instants in CDRs. A 1,000,000-line import cannot afford luxon's ISO parser on
 * every line (5–15 µs each, two instants a line), so the usual shape — a date,
 * a time of day, an optional offset — is cut in those three parts by one
 * regular expression and each part is read by a library, then remembered:
 *
 * - the time of day by ECMAScript's own ISO 8601 parser (`Date.parse`), which
 *   refuses minute or second 60 (and gives 24:00 as a whole day, refused here);
 * - the date by luxon, once per day (Date.parse would roll 31 February over
 *   into March);
 * - an offset by Date.parse, once per offset text; a local time's offset in
 *   the tenant's zone by luxon, once per local hour (in a spring-forward gap
 *   luxon moves the time forward: the offset it lands on serves the whole hour).
 *
 * Every other form of ISO 8601 is read by luxon through the engine's
 * `parseInstant`. What is remembered belongs to one reader, made for one
 * ingestion of one tenant: nothing is kept between imports.
 */
import { DateTime } from 'luxon';
import { parseInstant } from '../../engine/index.js';

// 2026-11-03T10:15:00, 2026-11-03 10:15:00.250, …Z, …+01:00, …+0100
const SHAPE = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}:?\d{2})?$/;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Bound on each memo (a file spans few days, hours and offsets; a hostile one may not). */
const MAX_ENTRIES = 100_000;

function remember<K, V>(map: Map<K, V>, key: K, value: V): V {
  if (map.size >= MAX_ENTRIES) map.clear();
  map.set(key, value);
  return value;
}

/** Reads the instants of one tenant's CDRs: without an offset they are local times in its zone. */
export class InstantReader {
  /** "YYYY-MM-DD" → epoch ms of its midnight UTC, NaN when there is no such day. */
  private readonly days = new Map<string, number>();
  /** "+01:00", "-0330"… → the offset in ms, NaN when out of range. */
  private readonly offsets = new Map<string, number>();
  /** A local hour (epoch ms of its start as if UTC, / HOUR) → the zone's offset in ms then, NaN in no zone. */
  private readonly zoneOffsets = new Map<number, number>();

  constructor(readonly zone: string) {}

  /** Epoch ms of an ISO 8601 date-time, or undefined when it is not one. */
  read(text: string): number | undefined {
    const s = text.trim();
    const m = SHAPE.exec(s);
    if (m === null) return parseInstant(s, this.zone);
    const day = this.day(m[1]!);
    const time = Date.parse('1970-01-01T' + m[2]! + 'Z');
    // NaN (no such day, minute 60) fails the comparison; 24:00 is the next day's midnight: refused
    if (!(time < DAY) || Number.isNaN(day)) return undefined;
    const wall = day + time;
    const offset = m[3] === undefined ? this.zoneOffset(wall) : this.fixedOffset(m[3]);
    return Number.isNaN(offset) ? undefined : wall - offset;
  }

  private day(text: string): number {
    const hit = this.days.get(text);
    if (hit !== undefined) return hit;
    const dt = DateTime.fromISO(text, { zone: 'utc' });
    return remember(this.days, text, dt.isValid ? dt.toMillis() : NaN);
  }

  private fixedOffset(text: string): number {
    if (text === 'Z') return 0;
    const hit = this.offsets.get(text);
    if (hit !== undefined) return hit;
    // the epoch read with that offset is -offset (NaN beyond ±23:59)
    return remember(this.offsets, text, -Date.parse('1970-01-01T00:00:00' + text));
  }

  private zoneOffset(wall: number): number {
    const hour = Math.floor(wall / HOUR);
    const hit = this.zoneOffsets.get(hour);
    if (hit !== undefined) return hit;
    const u = new Date(hour * HOUR);
    const dt = DateTime.fromObject(
      { year: u.getUTCFullYear(), month: u.getUTCMonth() + 1, day: u.getUTCDate(), hour: u.getUTCHours() },
      { zone: this.zone },
    );
    return remember(this.zoneOffsets, hour, dt.isValid ? dt.offset * 60_000 : NaN);
  }
}

/** ISO 8601 with the zone's offset, e.g. "2026-11-03T10:15:00+01:00" (SPEC §7: times with offset). */
export function formatInZone(instant: Date, zone: string): string {
  const iso = DateTime.fromJSDate(instant, { zone }).toISO({ suppressMilliseconds: true });
  return iso ?? instant.toISOString();
}
