/**
 * Instants in CDRs. A 1,000,000-line import cannot afford luxon's ISO parser on
 * every line (5–15 µs each, two instants a line). The usual shapes — a date and
 * a time of day, with or without an offset — are recognised by a regular
 * expression and read by ECMAScript's own ISO 8601 parser, `Date.parse`, which
 * refuses minute or second 60 and an offset beyond ±23:59. What it would let
 * through is refused here: 24:00 (it reads the next midnight), and a day the
 * month does not have (it rolls 31 February over into March) — each date is
 * checked by luxon once. A time without an offset is read as if UTC, then
 * moved by the tenant zone's offset of that local hour, which luxon gives once
 * per hour (in a spring-forward gap luxon moves the time forward: the offset it
 * lands on serves the whole hour).
 *
 * Every other form of ISO 8601 is read by luxon through the engine's
 * `parseInstant`. What is remembered belongs to one reader, made for one
 * ingestion of one tenant: nothing is kept between imports.
 */
import { DateTime } from 'luxon';
import { isInstantInRange, parseInstant } from '../../engine/index.js';

// 2026-11-03T10:15:00, 2026-11-03 10:15:00.250, 2026-11-03T10:15 …
const LOCAL = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?$/;
// … followed by Z, +01:00 or +0100
const WITH_OFFSET = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/;
const HOUR = 3_600_000;
const SPACE = 32;
/** Bound on each memo (a file spans few days, hours and offsets; a hostile one may not). */
const MAX_ENTRIES = 100_000;

function remember<K, V>(map: Map<K, V>, key: K, value: V): V {
  if (map.size >= MAX_ENTRIES) map.clear();
  map.set(key, value);
  return value;
}

/** Reads the instants of one tenant's CDRs: without an offset they are local times in its zone. */
export class InstantReader {
  /** "YYYY-MM-DD" → whether the calendar has that day. */
  private readonly days = new Map<string, boolean>();
  /** A local hour (epoch ms of its start as if UTC, / HOUR) → the zone's offset in ms then, NaN in no zone. */
  private readonly zoneOffsets = new Map<number, number>();

  constructor(readonly zone: string) {}

  /** Epoch ms of an ISO 8601 date-time within years 0001–9999, or undefined when it is not one. */
  read(text: string): number | undefined {
    const ms = this.parse(text);
    return ms !== undefined && isInstantInRange(ms) ? ms : undefined;
  }

  private parse(text: string): number | undefined {
    const s = text.trim();
    const local = LOCAL.test(s);
    if (!local && !WITH_OFFSET.test(s)) return parseInstant(s, this.zone);
    // both shapes start "YYYY-MM-DD?HH": 24 is no hour, and the date must exist
    if ((s.charCodeAt(11) === 50 && s.charCodeAt(12) === 52) || !this.dayExists(s.slice(0, 10))) return undefined;
    const iso = s.charCodeAt(10) === SPACE ? s.slice(0, 10) + 'T' + s.slice(11) : s;
    if (!local) {
      const ms = Date.parse(iso);
      return Number.isNaN(ms) ? undefined : ms;
    }
    const wall = Date.parse(iso + 'Z');
    const offset = Number.isNaN(wall) ? NaN : this.zoneOffset(wall);
    return Number.isNaN(offset) ? undefined : wall - offset;
  }

  private dayExists(text: string): boolean {
    return this.days.get(text) ?? remember(this.days, text, DateTime.fromISO(text, { zone: 'utc' }).isValid);
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
