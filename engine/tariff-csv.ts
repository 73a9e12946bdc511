/**
 * Tariff CSV (SPEC §6):
 *   prefix,destination,class,price_per_minute,connection_fee,first_increment,
 *   next_increment,forfait_eligible[,next_price_per_minute,valid_from]
 *
 * The file's records come read (services/shared/csvRecords.ts: fast-csv, one
 * record at a time), each with the 1-based physical line it starts on (header =
 * line 1), even when a quoted field spans several lines; a record that could
 * not be read comes as its line error. Here they are checked, the whole file,
 * and every error is returned; rates are returned only when there is none.
 */
import { CONTROL_CHARACTER_MESSAGE, INSTANT_RANGE_MESSAGE, hasControlCharacter } from './input.js';
import { parsePrice, formatPrice } from './money.js';
import {
  EPOCH_ISO,
  MAX_INCREMENT_SECONDS,
  formatInstant,
  isRateClass,
  parseInstant,
  type Rate,
} from './rate.js';

export interface CsvLineError {
  line: number;
  field: string;
  value: string;
  message: string;
}

export type TariffCsvResult = { ok: true; rates: Rate[] } | { ok: false; errors: CsvLineError[] };

/** A CSV record and the physical line it starts on. */
export interface CsvRow {
  line: number;
  cells: string[];
}

export interface TariffCsvOptions {
  /** IANA zone for `valid_from` values written without an offset. Default UTC. */
  defaultZone?: string;
}

const REQUIRED_COLUMNS = [
  'prefix',
  'destination',
  'class',
  'price_per_minute',
  'connection_fee',
  'first_increment',
  'next_increment',
  'forfait_eligible',
] as const;
const OPTIONAL_COLUMNS = ['next_price_per_minute', 'valid_from'] as const;
type Column = (typeof REQUIRED_COLUMNS)[number] | (typeof OPTIONAL_COLUMNS)[number];
const KNOWN_COLUMNS: readonly string[] = [...REQUIRED_COLUMNS, ...OPTIONAL_COLUMNS];

const BOOLEANS: ReadonlyMap<string, boolean> = new Map([
  ['true', true], ['1', true], ['yes', true], ['oui', true],
  ['false', false], ['0', false], ['no', false], ['non', false],
]);

const PREFIX_RE = /^\d{1,15}$/;
const INTEGER_RE = /^[+-]?\d+$/;

export function parseBooleanCell(s: string): boolean | undefined {
  return BOOLEANS.get(s.trim().toLowerCase());
}

/**
 * The rates of a tariff CSV's records (`records` in file order, records that
 * could not be read given as their errors), or every error of the file.
 */
export function tariffFromCsv(records: Iterable<CsvRow | CsvLineError>, delimiter: ',' | ';', options: TariffCsvOptions = {}): TariffCsvResult {
  const errors: CsvLineError[] = [];
  const rates: Rate[] = [];
  let columns: Map<Column, number> | undefined;
  let headerBroken = false;
  const firstLineOf = new Map<string, number>();

  for (const record of records) {
    if (!('cells' in record)) {
      errors.push(record);
      continue;
    }
    const { cells, line } = record;
    if (cells.every((c) => c.trim() === '')) continue; // blank line
    if (columns === undefined && !headerBroken) {
      columns = readHeader(cells, line, errors);
      if (columns === undefined) headerBroken = true;
      continue;
    }
    if (columns === undefined) continue;
    const rate = readRate(cells, line, columns, delimiter, options, errors);
    if (rate === undefined) continue;
    const key = `${rate.prefix}@${rate.validFrom}`;
    const first = firstLineOf.get(key);
    if (first !== undefined) {
      errors.push({
        line,
        field: 'prefix',
        value: rate.prefix,
        message: `duplicate of line ${first}: same prefix and valid_from (${rate.validFrom})`,
      });
      continue;
    }
    firstLineOf.set(key, line);
    rates.push(rate);
  }
  if (columns === undefined && !headerBroken) {
    errors.push({ line: 1, field: 'header', value: '', message: 'missing header line' });
  }
  return errors.length === 0 ? { ok: true, rates } : { ok: false, errors };
}

/** The text without its BOM, and its separator: ';' when the header uses it and no comma, ',' otherwise. */
export function tariffCsvText(text: string): { body: string; delimiter: ',' | ';' } {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const nl = body.indexOf('\n');
  const first = nl === -1 ? body : body.slice(0, nl);
  return { body, delimiter: first.includes(';') && !first.includes(',') ? ';' : ',' };
}

function readHeader(cells: string[], line: number, errors: CsvLineError[]): Map<Column, number> | undefined {
  const columns = new Map<Column, number>();
  const before = errors.length;
  cells.forEach((raw, i) => {
    const name = raw.trim().toLowerCase();
    if (!KNOWN_COLUMNS.includes(name)) {
      errors.push({ line, field: 'header', value: raw, message: `unknown column "${raw}"` });
    } else if (columns.has(name as Column)) {
      errors.push({ line, field: 'header', value: raw, message: `column "${raw}" appears twice` });
    } else {
      columns.set(name as Column, i);
    }
  });
  for (const required of REQUIRED_COLUMNS) {
    if (!columns.has(required)) {
      errors.push({ line, field: 'header', value: cells.join(','), message: `missing column "${required}"` });
    }
  }
  return errors.length === before ? columns : undefined;
}

function readRate(
  cells: string[],
  line: number,
  columns: Map<Column, number>,
  delimiter: string,
  options: TariffCsvOptions,
  errors: CsvLineError[],
): Rate | undefined {
  if (cells.length !== columns.size) {
    errors.push({
      line,
      field: 'row',
      value: String(cells.length),
      message: `expected ${columns.size} fields, found ${cells.length}`,
    });
    return undefined;
  }
  const before = errors.length;
  const fail = (field: Column, value: string, message: string): undefined => {
    errors.push({ line, field, value, message });
    return undefined;
  };
  for (const [field, i] of columns) {
    const v = cells[i] ?? '';
    if (hasControlCharacter(v)) fail(field, v, CONTROL_CHARACTER_MESSAGE);
  }
  if (errors.length !== before) return undefined;
  const cell = (field: Column): string => {
    const i = columns.get(field);
    return i === undefined ? '' : (cells[i] ?? '').trim();
  };
  const required = (field: Column): string | undefined => {
    const v = cell(field);
    return v === '' ? fail(field, v, `${field} is required`) : v;
  };
  const price = (field: Column, value: string | undefined): string | undefined => {
    if (value === undefined) return undefined;
    // French spreadsheets that write ';' between fields write "0,20" for 0.20.
    const text = delimiter === ';' ? value.replace(',', '.') : value;
    let micros: number;
    try {
      micros = parsePrice(text);
    } catch {
      return fail(field, value, 'must be a decimal number with at most 6 decimals');
    }
    return micros < 0 ? fail(field, value, 'must not be negative') : formatPrice(parsePrice(text));
  };
  const increment = (field: Column): number | undefined => {
    const v = required(field);
    if (v === undefined) return undefined;
    const n = INTEGER_RE.test(v) ? Number(v) : Number.NaN;
    if (!Number.isInteger(n) || n <= 0) return fail(field, v, 'must be a whole number of seconds greater than 0');
    if (n > MAX_INCREMENT_SECONDS) return fail(field, v, `must be at most ${MAX_INCREMENT_SECONDS} seconds`);
    return n;
  };

  let prefix = required('prefix');
  if (prefix !== undefined) {
    const digits = prefix.startsWith('+') ? prefix.slice(1) : prefix;
    prefix = PREFIX_RE.test(digits) ? digits : fail('prefix', prefix, 'must be 1 to 15 digits (an optional leading + is ignored)');
  }
  const destination = required('destination');
  const klassText = required('class');
  const klass = klassText?.toLowerCase();
  if (klassText !== undefined && klass !== undefined && !isRateClass(klass)) {
    fail('class', klassText, 'must be one of fixed, mobile, special, international, free');
  }
  const pricePerMinute = price('price_per_minute', required('price_per_minute'));
  const connectionFee = price('connection_fee', required('connection_fee'));
  const firstIncrement = increment('first_increment');
  const nextIncrement = increment('next_increment');
  const eligibleText = required('forfait_eligible');
  const forfaitEligible = eligibleText === undefined ? undefined : parseBooleanCell(eligibleText);
  if (eligibleText !== undefined && forfaitEligible === undefined) {
    fail('forfait_eligible', eligibleText, 'must be true/false, 1/0, yes/no or oui/non');
  }
  const nextText = cell('next_price_per_minute');
  const nextPricePerMinute = nextText === '' ? pricePerMinute : price('next_price_per_minute', nextText);
  const validFromText = cell('valid_from');
  let validFrom: string | undefined = EPOCH_ISO;
  if (validFromText !== '') {
    const ms = parseInstant(validFromText, options.defaultZone);
    validFrom = ms === undefined ? fail('valid_from', validFromText, `must be an ISO 8601 date or date-time (${INSTANT_RANGE_MESSAGE})`) : formatInstant(ms);
  }

  if (
    errors.length !== before ||
    prefix === undefined ||
    destination === undefined ||
    klass === undefined ||
    !isRateClass(klass) ||
    pricePerMinute === undefined ||
    nextPricePerMinute === undefined ||
    connectionFee === undefined ||
    firstIncrement === undefined ||
    nextIncrement === undefined ||
    forfaitEligible === undefined ||
    validFrom === undefined
  ) {
    return undefined;
  }
  return {
    prefix,
    destination,
    class: klass,
    pricePerMinute,
    nextPricePerMinute,
    connectionFee,
    firstIncrement,
    nextIncrement,
    forfaitEligible,
    validFrom,
  };
}
