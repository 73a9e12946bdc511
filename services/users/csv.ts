// The users CSV of SPEC §6, read and written without a library: the file can be
// 50 MB and a sync import must stay within a few times a raw COPY, so parsing is
// one pass over the string with no per-field allocation beyond the values.
import { guardText } from '../exports/csvCells.js';

export interface CsvRecord {
  /** 1-based line of the file where the record starts (quoted fields may span lines). */
  line: number;
  fields: string[];
}

export interface CsvParseResult {
  delimiter: ',' | ';';
  records: CsvRecord[];
  /** Structural problems (an unterminated quote), reported like line errors. */
  errors: { line: number; message: string }[];
}

/** Fields of the portal's format: 13 required positions, 3 optional trailing ones. */
export const portalFieldCount = 13;
export const fullFieldCount = 16;

/**
 * RFC 4180 with the leniencies spreadsheets need: a BOM, CRLF/LF/CR line ends,
 * `;` or `,` as separator, a quote inside an unquoted field kept as text.
 * Lines that are entirely empty (or only separators) are skipped: spreadsheets
 * leave them at the end of files.
 */
export function parseUsersCsv(input: string): CsvParseResult {
  const reader = new UsersCsvReader(input);
  const records: CsvRecord[] = [];
  while (reader.next()) records.push({ line: reader.line, fields: reader.readFields().slice() });
  return { delimiter: reader.delimiter, records, errors: reader.error ? [reader.error] : [] };
}

/** What String.prototype.trim removes (for a character code known to be > 32). */
export function isTrimmedSpace(ch: number): boolean {
  return (
    ch === 0xa0 || ch === 0x1680 || (ch >= 0x2000 && ch <= 0x200a) || ch === 0x2028 || ch === 0x2029 || ch === 0x202f || ch === 0x205f || ch === 0x3000 || ch === 0xfeff
  );
}

/**
 * The reader behind parseUsersCsv, one record at a time, without a record
 * object per line. A record without quotes is only located: `count` fields,
 * field k spanning `text.slice(bounds[2k], bounds[2k + 1])`, so a caller can
 * check it on character codes and copy it as it is; `readFields()` gives the
 * values (and is the only way for a record with quotes, `quoted`). The arrays
 * are refilled by each `next()`. After `next()` answers false, `error` holds an
 * unterminated quote if any.
 */
export class UsersCsvReader {
  readonly delimiter: ',' | ';';
  readonly text: string;
  /** 1-based line where the current record starts. */
  line = 0;
  /** fields of the current record */
  count = 0;
  /** the current record has a quoted field: its values are only in readFields() */
  quoted = false;
  bounds = new Int32Array(64);
  error: { line: number; message: string } | undefined;
  private readonly fields: string[] = [];
  private fieldsRead = false;
  private readonly sep: number;
  private i = 0;
  private nextLine = 1;

  constructor(input: string) {
    this.text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
    this.delimiter = detectDelimiter(this.text);
    this.sep = this.delimiter.charCodeAt(0);
  }

  /** Line breaks in the text (an upper bound of the record count, for progress). */
  lineCount(): number {
    let count = 0;
    for (let k = this.text.indexOf('\n'); k !== -1; k = this.text.indexOf('\n', k + 1)) count++;
    return count + 1;
  }

  /** The values of the current record's fields (the same array, refilled). */
  readFields(): string[] {
    if (!this.fieldsRead) {
      const { fields, bounds, text } = this;
      fields.length = 0;
      for (let k = 0; k < this.count; k++) fields.push(text.slice(bounds[2 * k]!, bounds[2 * k + 1]!));
      this.fieldsRead = true;
    }
    return this.fields;
  }

  next(): boolean {
    const { text, sep, fields } = this;
    const n = text.length;
    while (this.i < n && this.error === undefined) {
      let i = this.i;
      const startLine = this.nextLine;
      fields.length = 0;
      let count = 0;
      let quoted = false;
      let endOfRecord = false;
      let blank = true;
      while (!endOfRecord) {
        if (text.charCodeAt(i) === 34 /* " */) {
          // quoted field: "" is a quote, anything else (separators, line ends) is text
          if (!quoted) {
            // the fields before this one were only located
            for (let k = 0; k < count; k++) fields.push(text.slice(this.bounds[2 * k]!, this.bounds[2 * k + 1]!));
            quoted = true;
          }
          let j = i + 1;
          let chunks = '';
          let closed = false;
          while (j < n) {
            const q = text.indexOf('"', j);
            if (q === -1) break;
            chunks += text.slice(j, q);
            if (text.charCodeAt(q + 1) === 34) {
              chunks += '"';
              j = q + 2;
            } else {
              j = q + 1;
              closed = true;
              break;
            }
          }
          if (!closed) {
            this.error = { line: startLine, message: 'unterminated quoted field: a " opens a value that never closes' };
            this.i = n;
            return false;
          }
          this.nextLine += countLineBreaks(chunks);
          // text after the closing quote up to the separator is kept (lenient)
          let k = j;
          while (k < n) {
            const ch = text.charCodeAt(k);
            if (ch === sep || ch === 10 || ch === 13) break;
            k++;
          }
          const value = k > j ? chunks + text.slice(j, k) : chunks;
          fields.push(value);
          if (blank && value !== '' && value.trim() !== '') blank = false;
          i = k;
        } else {
          let k = i;
          while (k < n) {
            const ch = text.charCodeAt(k);
            if (ch === sep || ch === 10 || ch === 13) break;
            k++;
          }
          if (quoted) fields.push(text.slice(i, k));
          else this.setBounds(count, i, k);
          if (blank && k > i) {
            const first = text.charCodeAt(i);
            if ((first > 32 && first < 0x80) || text.slice(i, k).trim() !== '') blank = false;
          }
          i = k;
        }
        count++;
        if (i >= n) {
          endOfRecord = true;
        } else {
          const ch = text.charCodeAt(i);
          if (ch === sep) {
            i++;
            if (i >= n) {
              // a trailing separator: one more (empty) field
              if (quoted) fields.push('');
              else this.setBounds(count, n, n);
              count++;
              endOfRecord = true;
            }
          } else {
            // CRLF, LF or CR
            i += ch === 13 && text.charCodeAt(i + 1) === 10 ? 2 : 1;
            this.nextLine++;
            endOfRecord = true;
          }
        }
      }
      this.i = i;
      if (!blank) {
        this.line = startLine;
        this.count = count;
        this.quoted = quoted;
        this.fieldsRead = quoted;
        return true;
      }
    }
    return false;
  }

  /** Field `count` of a record without quotes spans text[from, to). */
  private setBounds(count: number, from: number, to: number): void {
    if (2 * count + 2 > this.bounds.length) {
      const grown = new Int32Array(this.bounds.length * 2);
      grown.set(this.bounds);
      this.bounds = grown;
    }
    this.bounds[2 * count] = from;
    this.bounds[2 * count + 1] = to;
  }
}

function countLineBreaks(s: string): number {
  let count = 0;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch === 10) count++;
    else if (ch === 13 && s.charCodeAt(i + 1) !== 10) count++;
  }
  return count;
}

/**
 * `;` when the first record, read with `;`, has the portal's field count and
 * read with `,` does not (a French spreadsheet); `,` otherwise. A file mixing
 * both then shows as field-count errors on the lines that do not follow it.
 */
export function detectDelimiter(text: string): ',' | ';' {
  const first = firstRecordText(text);
  const count = (sep: string) => countOutsideQuotes(first, sep) + 1;
  const fits = (k: number) => k >= portalFieldCount && k <= fullFieldCount;
  const semicolons = count(';');
  const commas = count(',');
  if (fits(semicolons) && !fits(commas)) return ';';
  if (!fits(commas) && semicolons > commas) return ';';
  return ',';
}

function firstRecordText(text: string): string {
  let inQuotes = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 34) inQuotes = !inQuotes;
    else if (!inQuotes && (ch === 10 || ch === 13)) {
      if (text.slice(start, i).trim() !== '') return text.slice(start, i);
      start = i + 1;
    }
    if (i - start > 100_000) break;
  }
  return text.slice(start, Math.min(text.length, start + 100_000));
}

function countOutsideQuotes(s: string, sep: string): number {
  let inQuotes = false;
  let count = 0;
  for (const ch of s) {
    if (ch === '"') inQuotes = !inQuotes;
    else if (!inQuotes && ch === sep) count++;
  }
  return count;
}

// ---- writing ---------------------------------------------------------------

/**
 * A text cell: quoted when it holds a separator, quote or line end, and
 * prefixed with `'` when a spreadsheet would take it for a formula (SPEC §6,
 * the rule every export applies: guardText). The import strips that prefix
 * again, so export → import is lossless.
 */
export function textCell(value: string): string {
  const safe = guardText(value);
  return /[",;\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

/** Numeric columns (digits, phone numbers) are never formula-escaped; quoted only if needed. */
export function numericCell(value: string): string {
  return /[",;\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** The inverse of textCell's formula guard: `'=x` → `=x`. */
export function unescapeFormula(value: string): string {
  if (value.length < 2 || value.charCodeAt(0) !== 39 /* ' */) return value;
  const rest = value.slice(1);
  return guardText(rest) === rest ? value : rest;
}
