/**
 * From a received record to a valid CDR, or a MALFORMED rejection naming the
 * field. Numbers are parsed in the tenant's country (SPEC §3) through a cache:
 * PBX files repeat the same callers and callees over and over, and
 * libphonenumber costs microseconds per call.
 */
import { CONTROL_CHARACTER_MESSAGE, hasControlCharacter, parseNumber, replaceControlCharacters, type CountryCode } from '../../engine/index.js';
import type { InstantReader } from './time.js';
import { DISPOSITIONS, type CdrInput, type Direction, type Disposition, type IncomingCdr, type NormalizedCdr, type Rejection } from './types.js';

/** Where a tenant's numbers and times are: its country and zone. */
export interface TenantNumbers {
  country: CountryCode;
  timezone: string;
}

/** What normalizing reads a tenant's CDRs with (one of each per ingestion). */
export interface CdrReaders {
  /** Numbers in the tenant's country. */
  numbers: NumberCache;
  /** Times, local ones in the tenant's zone. */
  instants: InstantReader;
}

const MAX_TEXT = 200;
/** 31 days: longer than any real call, far below the int column's range. */
const MAX_DURATION_SECONDS = 31 * 86_400;
const DIGITS_RE = /^\d{1,9}$/;

/**
 * Numbers of calls (CDRs, authorizations) read leniently: a number of a possible
 * length outside the ranges the metadata knows is kept (E.164) and remembered
 * as such (`isUnknownRange`), never refused: the call happened.
 */
export class NumberCache {
  private readonly map = new Map<string, string | null>();
  private readonly unknown = new Set<string>();
  constructor(private readonly country: CountryCode) {}

  /** E.164 (or a short number's digits), or null when not a phone number. */
  parse(text: string): string | null {
    const hit = this.map.get(text);
    if (hit !== undefined) return hit;
    const parsed = parseNumber(text, this.country, { lenient: true });
    const value = parsed.ok ? parsed.e164 : null;
    if (this.map.size >= 500_000) {
      this.map.clear();
      this.unknown.clear();
    }
    this.map.set(text, value);
    if (parsed.ok && parsed.unknownRange) this.unknown.add(parsed.e164);
    return value;
  }

  /** Whether `e164`, a value `parse` gave, lies outside the ranges the metadata knows. */
  isUnknownRange(e164: string): boolean {
    return this.unknown.size > 0 && this.unknown.has(e164);
  }
}

class Malformed {
  constructor(
    readonly field: string,
    readonly message: string,
  ) {}
}

function text(input: CdrInput, field: keyof CdrInput, required: boolean): string | null {
  const v = input[field];
  if (v === undefined || v === null) {
    if (required) throw new Malformed(field, `${field} is required`);
    return null;
  }
  if (typeof v !== 'string' && typeof v !== 'number') throw new Malformed(field, `${field} must be a string`);
  const s = String(v).trim();
  if (s === '') {
    if (required) throw new Malformed(field, `${field} is required`);
    return null;
  }
  if (s.length > MAX_TEXT) throw new Malformed(field, `${field} is longer than ${MAX_TEXT} characters`);
  if (hasControlCharacter(s)) throw new Malformed(field, `${field} ${CONTROL_CHARACTER_MESSAGE}`);
  return s;
}

function seconds(input: CdrInput): number {
  const v = input.durationSeconds;
  if (v === undefined || v === null || v === '') return 0;
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && DIGITS_RE.test(v.trim())) n = Number(v.trim());
  else throw new Malformed('durationSeconds', 'durationSeconds must be a whole number of seconds ≥ 0');
  if (!Number.isSafeInteger(n) || n < 0) throw new Malformed('durationSeconds', 'durationSeconds must be a whole number of seconds ≥ 0');
  if (n > MAX_DURATION_SECONDS) throw new Malformed('durationSeconds', `durationSeconds over ${MAX_DURATION_SECONDS}`);
  return n;
}

function instant(input: CdrInput, field: 'startedAt' | 'answeredAt', instants: InstantReader, required: boolean): number | null {
  const s = text(input, field, required);
  if (s === null) return null;
  const ms = instants.read(s);
  if (ms === undefined) throw new Malformed(field, `${field} "${s}" is not an ISO 8601 date-time`);
  return ms;
}

function normalizeOne(rec: IncomingCdr, { numbers, instants }: CdrReaders): NormalizedCdr {
  const input = rec.input;
  const callId = text(input, 'callId', true)!;
  const dirText = text(input, 'direction', false);
  if (dirText !== null && dirText !== 'out' && dirText !== 'in') throw new Malformed('direction', 'direction must be "out" or "in"');
  const direction: Direction = dirText === 'in' ? 'in' : 'out';
  const identifiant = text(input, 'identifiant', direction === 'out');
  const calleeText = text(input, 'callee', true)!;
  const parsedCallee = numbers.parse(calleeText);
  // an incoming call's callee may be an extension: kept as received then
  if (parsedCallee === null && direction === 'out') throw new Malformed('callee', `callee "${calleeText}" is not a valid phone number`);
  const callerText = text(input, 'caller', false);
  // the caller is a label (often an extension): E.164 when it is a number, else as received
  const caller = callerText === null ? null : (numbers.parse(callerText) ?? callerText);
  const startedAtMs = instant(input, 'startedAt', instants, true)!;
  const answeredAtMs = instant(input, 'answeredAt', instants, false);
  const durationSeconds = seconds(input);
  const dispText = text(input, 'disposition', false);
  let disposition: Disposition;
  if (dispText === null) disposition = durationSeconds > 0 ? 'answered' : 'no_answer';
  else if ((DISPOSITIONS as readonly string[]).includes(dispText)) disposition = dispText as Disposition;
  else throw new Malformed('disposition', `disposition must be one of ${DISPOSITIONS.join(', ')}`);
  return {
    position: rec.position,
    raw: rec.raw,
    // always present (undefined when not reprocessing): every CDR object has the same shape
    rejectId: rec.rejectId,
    callId,
    identifiant,
    caller,
    callee: parsedCallee ?? calleeText,
    numberCheck: parsedCallee !== null && numbers.isUnknownRange(parsedCallee) ? 'unknown_range' : null,
    direction,
    startedAtMs,
    answeredAtMs,
    durationSeconds,
    disposition,
    site: text(input, 'site', false),
    line: text(input, 'line', false),
  };
}

function callIdGuess(rec: IncomingCdr): string | null {
  const v = rec.input.callId;
  return typeof v === 'string' && v.trim() !== '' && v.length <= MAX_TEXT ? replaceControlCharacters(v.trim()) : null;
}

function malformed(rec: IncomingCdr, field: string | undefined, message: string): Rejection {
  return {
    position: rec.position,
    callId: callIdGuess(rec),
    reason: 'MALFORMED',
    ...(field !== undefined ? { field } : {}),
    message,
    // PostgreSQL refuses NUL in text: a MALFORMED record (never rated again) is stored with U+FFFD in its place
    raw: replaceControlCharacters(rec.raw),
    ...(rec.rejectId !== undefined ? { rejectId: rec.rejectId } : {}),
  };
}

/**
 * A valid CDR, or a MALFORMED rejection naming the field at fault. (No closure
 * here: this runs once per record, and a function created per call costs more
 * than the rest of the checks of a plain line.)
 */
export function normalizeCdr(rec: IncomingCdr, readers: CdrReaders): NormalizedCdr | Rejection {
  if (rec.error) return malformed(rec, rec.error.field, rec.error.message);
  try {
    const cdr = normalizeOne(rec, readers);
    // a control character in a field no column maps (a CSV line's other cells)
    if (hasControlCharacter(rec.raw)) return malformed(rec, 'row', `the record ${CONTROL_CHARACTER_MESSAGE}`);
    return cdr;
  } catch (err) {
    if (err instanceof Malformed) return malformed(rec, err.field, err.message);
    throw err;
  }
}

export function isRejection(x: NormalizedCdr | Rejection): x is Rejection {
  return 'reason' in x;
}
