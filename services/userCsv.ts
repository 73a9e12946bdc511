// The users CSV of SPEC §6, read and written without a library: the file can be
// 50 MB and a sync import must stay within a few times a raw COPY, so parsing is
// one pass over the string with no per-field allocation beyond the values.

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
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  const delimiter = detectDelimiter(text);
  const sep = delimiter.charCodeAt(0);
  const records: CsvRecord[] = [];
  const errors: { line: number; message: string }[] = [];
  const n = text.length;
  let i = 0;
  let line = 1;
  while (i < n) {
    const startLine = line;
    const fields: string[] = [];
    let endOfRecord = false;
    while (!endOfRecord) {
      let value: string;
      if (text.charCodeAt(i) === 34 /* " */) {
        // quoted field: "" is a quote, anything else (separators, line ends) is text
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
          errors.push({ line: startLine, message: 'unterminated quoted field: a " opens a value that never closes' });
          return { delimiter, records, errors };
        }
        line += countLineBreaks(chunks);
        // text after the closing quote up to the separator is kept (lenient)
        let k = j;
        while (k < n && text.charCodeAt(k) !== sep && text.charCodeAt(k) !== 10 && text.charCodeAt(k) !== 13) k++;
        value = k > j ? chunks + text.slice(j, k) : chunks;
        i = k;
      } else {
        let k = i;
        while (k < n) {
          const ch = text.charCodeAt(k);
          if (ch === sep || ch === 10 || ch === 13) break;
          k++;
        }
        value = text.slice(i, k);
        i = k;
      }
      fields.push(value);
      if (i >= n) {
        endOfRecord = true;
      } else {
        const ch = text.charCodeAt(i);
        if (ch === sep) {
          i++;
          if (i >= n) {
            fields.push('');
            endOfRecord = true;
          }
        } else {
          // CRLF, LF or CR
          i += ch === 13 && text.charCodeAt(i + 1) === 10 ? 2 : 1;
          line++;
          endOfRecord = true;
        }
      }
    }
    if (!fields.every((f) => f.trim() === '')) records.push({ line: startLine, fields });
  }
  return { delimiter, records, errors };
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

const formulaStart = /^[=+\-@\t\r]/;

/**
 * A text cell: quoted when it holds a separator, quote or line end, and
 * prefixed with `'` when a spreadsheet would take it for a formula (SPEC §6).
 * The import strips that prefix again, so export → import is lossless.
 */
export function textCell(value: string): string {
  const safe = formulaStart.test(value) ? `'${value}` : value;
  return /[",;\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

/** Numeric columns (digits, phone numbers) are never formula-escaped; quoted only if needed. */
export function numericCell(value: string): string {
  return /[",;\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** The inverse of textCell's formula guard: `'=x` → `=x`. */
export function unescapeFormula(value: string): string {
  return value.length > 1 && value.charCodeAt(0) === 39 /* ' */ && formulaStart.test(value.slice(1)) ? value.slice(1) : value;
}
