/**
 * A tariff's rate as the API and the database see it (decimal strings), and its
 * compiled form with pre-parsed integer fields for the rating hot path.
 */
import { DateTime } from 'luxon';
import { isInstantInRange } from './input.js';
import { parsePrice, type PriceMicros } from './money.js';

export const RATE_CLASSES = ['fixed', 'mobile', 'special', 'international', 'free'] as const;
export type RateClass = (typeof RATE_CLASSES)[number];

export interface Rate {
  id?: string;
  /** E.164 digits without '+', 1–15 digits (or a short number's digits). */
  prefix: string;
  destination: string;
  class: RateClass;
  /** Decimal strings, up to 6 decimals, ≥ 0. */
  pricePerMinute: string;
  nextPricePerMinute: string;
  connectionFee: string;
  /** Seconds, positive integers. */
  firstIncrement: number;
  nextIncrement: number;
  forfaitEligible: boolean;
  /** ISO 8601 instant; `EPOCH_ISO` means "since forever". */
  validFrom: string;
}

export interface CompiledRate {
  readonly rate: Rate;
  readonly prefix: string;
  readonly validFromMs: number;
  readonly connectionFeeMicros: PriceMicros;
  readonly priceMicros: PriceMicros;
  readonly nextPriceMicros: PriceMicros;
  readonly firstIncrement: number;
  readonly nextIncrement: number;
  readonly forfaitEligible: boolean;
  /** class `free`: never costs anything and never uses forfait. */
  readonly free: boolean;
}

export const EPOCH_ISO = '1970-01-01T00:00:00Z';
/** Longest increment accepted (one day): keeps every product of seconds × price far from overflow. */
export const MAX_INCREMENT_SECONDS = 86_400;
const PREFIX_RE = /^\d{1,15}$/;
const CANONICAL_UTC_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?Z$/;

export function isRateClass(s: string): s is RateClass {
  return (RATE_CLASSES as readonly string[]).includes(s);
}

/**
 * Parses an ISO 8601 date or date-time. Without an offset it is read in
 * `defaultZone` (UTC unless told otherwise); a space instead of 'T' is accepted.
 * Returns epoch milliseconds, or undefined when invalid or outside years 0001–9999.
 */
export function parseInstant(s: string, defaultZone = 'utc'): number | undefined {
  const text = s.trim();
  if (CANONICAL_UTC_RE.test(text)) {
    const ms = Date.parse(text);
    return Number.isNaN(ms) || !isInstantInRange(ms) ? undefined : ms;
  }
  let dt = DateTime.fromISO(text, { zone: defaultZone, setZone: true });
  if (!dt.isValid && /^\d{4}-\d{2}-\d{2} \d/.test(text)) {
    dt = DateTime.fromISO(text.replace(' ', 'T'), { zone: defaultZone, setZone: true });
  }
  return dt.isValid && isInstantInRange(dt.toMillis()) ? dt.toMillis() : undefined;
}

/** Epoch ms → canonical UTC ISO string without milliseconds when they are 0 ("1970-01-01T00:00:00Z"). */
export function formatInstant(ms: number): string {
  const iso = DateTime.fromMillis(ms, { zone: 'utc' }).toISO({ suppressMilliseconds: true });
  if (iso === null) throw new RangeError(`instant out of range: ${ms}`);
  return iso;
}

function isIncrement(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= MAX_INCREMENT_SECONDS;
}

/**
 * Checks a rate and pre-parses it. Throws RangeError naming the bad field: rates
 * reaching this point come from the database or a parsed CSV, so a bad one is a
 * programming or data error, not an expected outcome.
 */
export function compileRate(rate: Rate): CompiledRate {
  const where = `rate ${rate.id ?? rate.prefix}`;
  const prefix = rate.prefix.startsWith('+') ? rate.prefix.slice(1) : rate.prefix;
  if (!PREFIX_RE.test(prefix)) throw new RangeError(`${where}: prefix must be 1 to 15 digits`);
  if (!isRateClass(rate.class)) throw new RangeError(`${where}: unknown class "${String(rate.class)}"`);
  const price = (field: 'pricePerMinute' | 'nextPricePerMinute' | 'connectionFee'): PriceMicros => {
    // A missing next price means "same as the first" (SPEC §2), also for rows stored without one.
    const text = field === 'nextPricePerMinute' && rate[field] === '' ? rate.pricePerMinute : rate[field];
    const micros = parsePrice(text);
    if (micros < 0) throw new RangeError(`${where}: ${field} must not be negative`);
    return micros;
  };
  if (!isIncrement(rate.firstIncrement) || !isIncrement(rate.nextIncrement)) {
    throw new RangeError(`${where}: increments must be whole seconds between 1 and ${MAX_INCREMENT_SECONDS}`);
  }
  const validFromMs = parseInstant(rate.validFrom);
  if (validFromMs === undefined) throw new RangeError(`${where}: invalid validFrom "${rate.validFrom}"`);
  return {
    rate,
    prefix,
    validFromMs,
    connectionFeeMicros: price('connectionFee'),
    priceMicros: price('pricePerMinute'),
    nextPriceMicros: price('nextPricePerMinute'),
    firstIncrement: rate.firstIncrement,
    nextIncrement: rate.nextIncrement,
    forfaitEligible: rate.forfaitEligible,
    free: rate.class === 'free',
  };
}
