/**
 * Instants in CDRs, parsed fast. A 1,000,000-line import cannot afford luxon's
 * ISO parser on every line (several µs each), so the usual shapes are read with
 * one regular expression and integer arithmetic; only the zone offset of a
 * local time goes through luxon, once per (zone, local hour), then cached.
 * Anything unusual falls back to the engine's `parseInstant`.
 */
import { DateTime } from 'luxon';
import { parseInstant } from '../../engine/index.js';

// 2026-11-03T10:15:00, 2026-11-03 10:15:00.250, …Z, …+01:00, …+0100
const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** Offsets (minutes) of a zone by local hour "YYYY-MM-DDTHH", bounded. */
const offsets = new Map<string, number>();

function zoneOffsetMinutes(zone: string, y: number, mo: number, d: number, h: number): number | undefined {
  const key = `${zone}|${y}-${mo}-${d}T${h}`;
  const hit = offsets.get(key);
  if (hit !== undefined) return hit;
  const dt = DateTime.fromObject({ year: y, month: mo, day: d, hour: h }, { zone });
  if (!dt.isValid) return undefined;
  if (offsets.size > 100_000) offsets.clear();
  // Inside a spring-forward gap luxon moves the time forward; the offset it
  // lands on is the one used for every minute of that local hour.
  const offset = dt.offset;
  offsets.set(key, offset);
  return offset;
}

// The hour of the last instant read without a fraction of a second: its text up to
// the hour ("2026-11-03T10:"), what followed the seconds ("+01:00", "Z" or ""), the
// zone it was read in and the epoch ms of its minute 00:00. CDR files are in time
// order and give two instants per line: most instants share the previous one's hour
// and only their minutes and seconds need reading.
let lastHead = '';
let lastTail = '';
let lastZone = '';
let lastBase = 0;

const digit = (s: string, i: number) => {
  const c = s.charCodeAt(i) - 48;
  return c >= 0 && c <= 9 ? c : -1;
};

/**
 * Epoch ms of an ISO 8601 date-time; without an offset it is a local time in
 * `zone` (the tenant's). undefined when invalid.
 */
export function parseCdrInstant(text: string, zone: string): number | undefined {
  const s = text.trim();
  if (lastHead !== '' && s.length === 19 + lastTail.length && zone === lastZone && s.startsWith(lastHead) && s.charCodeAt(16) === 58 && s.endsWith(lastTail)) {
    const m1 = digit(s, 14);
    const m2 = digit(s, 15);
    const s1 = digit(s, 17);
    const s2 = digit(s, 18);
    if (m1 >= 0 && m2 >= 0 && s1 >= 0 && s2 >= 0) {
      const mi = m1 * 10 + m2;
      const sec = s1 * 10 + s2;
      if (mi > 59 || sec > 59) return undefined;
      return lastBase + mi * 60_000 + sec * 1000;
    }
  }
  const m = ISO_RE.exec(s);
  if (m === null) return parseInstant(s, zone);
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  const h = Number(m[4]);
  const mi = Number(m[5]);
  const sec = m[6] === undefined ? 0 : Number(m[6]);
  const ms = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) return undefined;
  const utc = Date.UTC(y, mo - 1, d, h, mi, sec, ms);
  // Date.UTC rolls 31 February over into March: refuse it
  if (new Date(utc).getUTCDate() !== d) return undefined;
  const tz = m[8];
  let result: number;
  if (tz === 'Z') result = utc;
  else if (tz !== undefined) {
    const sign = tz[0] === '-' ? -1 : 1;
    const digits = tz.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2, 4));
    if (oh > 23 || om > 59) return undefined;
    result = utc - sign * (oh * 60 + om) * 60_000;
  } else {
    // one offset for the whole local hour (the cache below relies on it)
    const offset = zoneOffsetMinutes(zone, y, mo, d, h);
    if (offset === undefined) return undefined;
    result = utc - offset * 60_000;
  }
  if (m[6] !== undefined && m[7] === undefined) {
    lastHead = s.slice(0, 14);
    lastTail = tz ?? '';
    lastZone = zone;
    lastBase = result - mi * 60_000 - sec * 1000;
  }
  return result;
}

/** ISO 8601 with the zone's offset, e.g. "2026-11-03T10:15:00+01:00" (SPEC §7: times with offset). */
export function formatInZone(instant: Date, zone: string): string {
  const iso = DateTime.fromJSDate(instant, { zone }).toISO({ suppressMilliseconds: true });
  return iso ?? instant.toISOString();
}
