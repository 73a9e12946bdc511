/**
 * Cell rules of the CSV exports (SPEC §6): a text cell starting with = + - @
 * (or a tab or CR) is prefixed with ' so a spreadsheet does not run it as a
 * formula; numeric columns (counts, seconds, amounts, phone numbers) never are.
 * The same rule written for JavaScript values and for PostgreSQL expressions
 * (the CDR export formats its rows inside COPY).
 */
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

/** The inverse of guardText, for a file read back: `'=x` is `=x` (an export imported again is unchanged). */
export function unguardText(value: string): string {
  return /^'[=+\-@\t\r]/.test(value) ? value.slice(1) : value;
}
