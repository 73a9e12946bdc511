/**
 * What input may hold, checked at every boundary (HTTP parameters and bodies,
 * CSV lines, CDR records) so that no value reaches PostgreSQL only to fail there.
 *
 * - Text: no control character. PostgreSQL refuses NUL in text outright
 *   (a failed statement, a failed batch); the other C0 controls and DEL are
 *   never meaningful in a name, a number or an id and break CSV exports and
 *   logs. Tab, line feed and carriage return are allowed: a CSV or NDJSON body
 *   is made of them, and a free-text field may hold a line break.
 * - Instants: years 0001 to 9999 (UTC). PostgreSQL reads no year 0 and
 *   JavaScript's `Date` writes years beyond 9999 in a form it does not read.
 */

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const CONTROLS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g;

/** True when `s` holds a character no text field accepts (NUL, other C0 controls but tab and line breaks, DEL). */
export function hasControlCharacter(s: string): boolean {
  return CONTROL.test(s);
}

/** `s` with each such character replaced by U+FFFD (text kept for the record, e.g. a rejected CDR's raw line). */
export function replaceControlCharacters(s: string): string {
  return hasControlCharacter(s) ? s.replace(CONTROLS, '\uFFFD') : s;
}

export const CONTROL_CHARACTER_MESSAGE = 'must not contain control characters (NUL, U+0001–U+001F, DEL)';

/** 0001-01-01T00:00:00Z */
export const MIN_INSTANT_MS = -62_135_596_800_000;
/** 9999-12-31T23:59:59.999Z */
export const MAX_INSTANT_MS = 253_402_300_799_999;

export const INSTANT_RANGE_MESSAGE = 'year must be between 0001 and 9999';

/** True when `ms` is an instant within years 0001–9999 (UTC). */
export function isInstantInRange(ms: number): boolean {
  return ms >= MIN_INSTANT_MS && ms <= MAX_INSTANT_MS;
}
