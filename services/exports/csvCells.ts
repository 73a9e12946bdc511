/**
 * Cell rules of the CSV exports (SPEC §6): a text cell starting with = + - @
 * (or a tab or CR) is prefixed with ' so a spreadsheet does not run it as a
 * formula; numeric columns (counts, seconds, amounts, phone numbers) never are.
 * The same rule written for JavaScript values and for PostgreSQL expressions
 * (the CDR export formats its rows inside COPY).
 */
import { Readable } from 'node:stream';

const formulaStart = /^[=+\-@\t\r]/;

export function guardText(value: string | null | undefined): string {
  if (value === null || value === undefined) return '';
  return formulaStart.test(value) ? `'${value}` : value;
}

/**
 * SQL: the same guard on a text expression (NULL stays NULL, an empty cell).
 * ascii() of the first character: = 61, + 43, - 45, @ 64, tab 9, CR 13 (cheaper
 * per row than left(…) IN (…), which matters over a million rows).
 */
export function guardTextSql(expr: string): string {
  return `CASE WHEN ascii(${expr}) IN (61, 43, 45, 64, 9, 13) THEN '''' || ${expr} ELSE ${expr} END`;
}

/**
 * `?excel=1` on a CSV export: what French Excel opens in columns without an
 * import wizard — a UTF-8 BOM (else it reads Windows-1252 and prints Ã©), `;`
 * between cells (its list separator) and the decimal comma (else 0.6417 is text
 * or a date). Times stay ISO 8601 with their offset in every export.
 */
export const EXCEL = { bom: '\uFEFF', delimiter: ';', decimal: ',' } as const;

/** The export's bytes after the BOM. */
export function withExcelBom(rows: Readable): Readable {
  async function* bytes(): AsyncGenerator<Buffer> {
    yield Buffer.from(EXCEL.bom, 'utf8');
    for await (const chunk of rows) yield typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : (chunk as Buffer);
  }
  const out = Readable.from(bytes());
  out.once('close', () => rows.destroy());
  return out;
}

/** The inverse of guardText, for a file read back: `'=x` is `=x` (an export imported again is unchanged). */
export function unguardText(value: string): string {
  return /^'[=+\-@\t\r]/.test(value) ? value.slice(1) : value;
}
