/**
 * Phone numbers (SPEC §3). Every number is stored in E.164 ("+33612345678").
 *
 * Validation uses libphonenumber-js with the "max" metadata: it knows the number
 * ranges per type, so "07 12 34 56 78" (an unallocated FR mobile range) is refused
 * while "min" metadata would accept it. It costs a few microseconds per number,
 * which only the authorization and CDR-ingestion paths pay, not the rating loop.
 *
 * Short numbers (emergency and service numbers such as 112, 15, 17, 3949, 118712)
 * are not E.164. They are kept as their bare digits ("112"): see `parseNumber`.
 */
import {
  parsePhoneNumberFromString,
  isSupportedCountry,
  type CountryCode,
} from 'libphonenumber-js/max';

export type { CountryCode };

export type ParsedNumber = { ok: true; e164: string } | { ok: false; message: string };
export type NumberDisplay = 'international' | 'national';

/** Characters people and PBXs put between digits. */
const SEPARATORS_RE = /[\s.\-()/]/g;
/** A short number: 2 to 6 digits not starting with 0 (a leading 0 is a truncated national number). */
const SHORT_NUMBER_RE = /^[1-9]\d{1,5}$/;

export function isCountryCode(country: string): country is CountryCode {
  return isSupportedCountry(country);
}

/** The country numbers are read in for a tenant: its own, or France when unknown to the metadata. */
export function tenantCountry(country: string): CountryCode {
  return isCountryCode(country) ? country : 'FR';
}

/**
 * A tenant's free numbers (SPEC §5: always allowed, never charged) as calls name
 * them: the E.164 form of a full number, the bare digits of a short one or of
 * anything the parser refuses.
 */
export function freeNumberSet(numbers: readonly string[], parse: (n: string) => string | null): Set<string> {
  const free = new Set<string>();
  for (const n of numbers) free.add(parse(n) ?? n.replace(/\D/g, ''));
  return free;
}

/**
 * Parses a number typed or sent in `country` (the tenant's country).
 *
 * - Full numbers in any usual form give their E.164 form: in FR, `0612345678`,
 *   `06 12 34 56 78`, `+33 6 12 34 56 78`, `0033612345678` and `33612345678` all
 *   give `+33612345678`. The number must be valid for its country (known range
 *   and length), and must not carry an extension.
 * - Short numbers: when the input, separators removed, is 2–6 digits not starting
 *   with 0 and is not a valid full number, it is kept as those digits without '+'
 *   ("112", "3949"). Free-number lists and tariffs name them the same way
 *   (a tariff prefix "3949" or "118"), so look-ups and comparisons work on them.
 * - Anything else is refused with a message.
 */
export function parseNumber(input: string, country: CountryCode): ParsedNumber {
  const text = input.trim();
  if (text === '') return { ok: false, message: 'number is empty' };
  const compact = text.replace(SEPARATORS_RE, '');
  const phone = parsePhoneNumberFromString(text, { defaultCountry: country, extract: false });
  if (phone?.isValid()) {
    if (phone.ext !== undefined) return { ok: false, message: `"${input}" has an extension, which cannot be dialled` };
    return { ok: true, e164: phone.number };
  }
  if (SHORT_NUMBER_RE.test(compact)) return { ok: true, e164: compact };
  return { ok: false, message: `"${input}" is not a valid phone number for ${country}` };
}

/** True for the bare-digit form that `parseNumber` gives short numbers. */
export function isShortNumber(normalized: string): boolean {
  return SHORT_NUMBER_RE.test(normalized);
}

/**
 * Digits used for tariff look-up: the E.164 number without '+', or the short
 * number's digits as they are.
 */
export function digitsForLookup(e164: string): string {
  return e164.charCodeAt(0) === 43 /* + */ ? e164.slice(1) : e164;
}

/**
 * Display form. `international` → the E.164 string itself (`+33123456789`).
 * `national` → national format for numbers of the tenant's country
 * (`01 23 45 67 89`) and the spaced international format for foreign ones
 * (`+44 20 7946 0958`), since a national form would be ambiguous for them.
 * Short numbers and anything unparsable are returned unchanged.
 */
export function formatNumber(e164: string, display: NumberDisplay, country: CountryCode): string {
  if (display === 'international' || e164.charCodeAt(0) !== 43) return e164;
  const phone = parsePhoneNumberFromString(e164);
  if (phone === undefined) return e164;
  return phone.country === country ? phone.formatNational() : phone.formatInternational();
}
