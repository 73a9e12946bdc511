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
  getCountryCallingCode,
  validatePhoneNumberLength,
  type CountryCode,
  type PhoneNumber,
} from 'libphonenumber-js/max';

export type { CountryCode };

/**
 * A number read. `unknownRange`: the number has a possible length for its
 * country code but lies outside the ranges the metadata knows (only given
 * when the caller asked for `lenient` reading: calls that happened).
 */
export type ParsedNumber = { ok: true; e164: string; unknownRange?: true } | { ok: false; message: string };

export interface ParseOptions {
  /**
   * Calls that happened (CDRs) and calls being set up (authorization): a number
   * of a possible length outside the known ranges is accepted with
   * `unknownRange` instead of refused. Number plans change every month and the
   * metadata lags; the directory (what people type) stays strict.
   */
  lenient?: boolean;
}

/**
 * The French numbering plan (ARCEP) covers metropolitan France and the overseas
 * departments and collectivities: `0692 36 09 58` dialled in Paris is Réunion's
 * `+262 692 36 09 58`, and `01 23 45 67 89` dialled in Réunion is Paris. Their
 * ranges are libphonenumber's metadata of each territory, tried before France's
 * own (whose broad fixed-line pattern also matches some overseas ranges).
 */
const FRENCH_PLAN: readonly CountryCode[] = ['RE', 'YT', 'GP', 'MF', 'BL', 'GF', 'MQ', 'PM', 'FR'];

const GEOGRAPHIC = new Set(['FIXED_LINE', 'MOBILE', 'FIXED_LINE_OR_MOBILE']);

/**
 * Saint-Pierre-et-Miquelon's numbers are 6 digits (`41 12 34`): the French plan
 * reaches them as `0` + its country code + the number (ARCEP's `05 08 41 12 34`
 * is `+508 41 12 34`), a range France's own metadata reads as `+33 5 08…`.
 */
const DIALLED_WITH_COUNTRY_CODE: readonly CountryCode[] = ['PM'];

const regionNames = new Intl.DisplayNames(['en'], { type: 'region' });

/** "France (+33)": how a message names a country. */
function countryName(country: CountryCode): string {
  return `${regionNames.of(country) ?? country} (+${getCountryCallingCode(country)})`;
}
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
export function parseNumber(input: string, country: CountryCode, options: ParseOptions = {}): ParsedNumber {
  const text = input.trim();
  if (text === '') return { ok: false, message: 'number is empty' };
  const compact = text.replace(SEPARATORS_RE, '');
  const phone = validIn(text, country);
  if (phone !== undefined) {
    if (phone.ext !== undefined) return { ok: false, message: `"${input}" has an extension, which cannot be dialled` };
    return { ok: true, e164: phone.number };
  }
  if (SHORT_NUMBER_RE.test(compact)) return { ok: true, e164: compact };
  const read = parsePhoneNumberFromString(text, { defaultCountry: country, extract: false });
  if (read?.isPossible()) {
    if (read.ext !== undefined) return { ok: false, message: `"${input}" has an extension, which cannot be dialled` };
    if (options.lenient) return { ok: true, e164: read.number, unknownRange: true };
    const where = read.country ?? country;
    return { ok: false, message: `"${input}" has the length of a ${countryName(where)} number but is not in a range allocated there` };
  }
  return { ok: false, message: invalidMessage(input, text, country) };
}

/**
 * The number as a valid one: read in the tenant's country, or in its national
 * plan's other territories. A territory claims a national number when its
 * geographic or mobile ranges hold it and no other country code's do (0806…
 * is valid in several territories' metadata: a shared range, the tenant's own).
 */
function validIn(text: string, country: CountryCode): PhoneNumber | undefined {
  const own = parsePhoneNumberFromString(text, { defaultCountry: country, extract: false });
  // a number written internationally (+262…, 00590…) names its country itself
  if (own === undefined || !isNationalForm(text) || !FRENCH_PLAN.includes(country)) return own?.isValid() ? own : undefined;
  const withCode = dialledWithCountryCode(text);
  if (withCode !== undefined) return withCode;
  // in a territory, its own numbers first; in France, whose broad fixed pattern also matches 0596…, the territories' first
  if (country !== 'FR' && own.isValid()) return own;
  const claims: PhoneNumber[] = [];
  for (const c of FRENCH_PLAN) {
    if (c === country || c === 'FR') continue;
    const phone = parsePhoneNumberFromString(text, { defaultCountry: c, extract: false });
    if (phone?.isValid() && GEOGRAPHIC.has(phone.getType() ?? '')) claims.push(phone);
  }
  if (claims.length > 0 && claims.every((p) => p.countryCallingCode === claims[0]!.countryCallingCode)) return claims[0];
  if (own.isValid()) return own;
  const metropolitan = country === 'FR' ? undefined : parsePhoneNumberFromString(text, { defaultCountry: 'FR', extract: false });
  return metropolitan?.isValid() ? metropolitan : undefined;
}

/** `0` + a territory's country code + its fixed or mobile number (`05 08 41 12 34`): that territory's number. */
function dialledWithCountryCode(text: string): PhoneNumber | undefined {
  const compact = text.replace(SEPARATORS_RE, '');
  for (const c of DIALLED_WITH_COUNTRY_CODE) {
    const code = getCountryCallingCode(c);
    if (!compact.startsWith(`0${code}`)) continue;
    const phone = parsePhoneNumberFromString(`+${code}${compact.slice(code.length + 1)}`);
    if (phone?.isValid() && phone.country === c && GEOGRAPHIC.has(phone.getType() ?? '')) return phone;
  }
  return undefined;
}

/** Written as dialled within the country (`0692…`), not with a country code (`+262…`, `00262…`). */
function isNationalForm(text: string): boolean {
  const compact = text.replace(SEPARATORS_RE, '');
  return compact.startsWith('0') && !compact.startsWith('00');
}

/** Why `text` is not a phone number of `country`, in words. */
function invalidMessage(input: string, text: string, country: CountryCode): string {
  switch (validatePhoneNumberLength(text, { defaultCountry: country })) {
    case 'TOO_SHORT':
      return `"${input}" is too short for a ${countryName(country)} number`;
    case 'TOO_LONG':
      return `"${input}" is too long for a ${countryName(country)} number`;
    case 'INVALID_COUNTRY':
      return `"${input}" starts with a country code that does not exist`;
    case 'NOT_A_NUMBER':
      return `"${input}" is not a phone number: digits expected, with spaces, dots, dashes or a leading +`;
    default:
      return `"${input}" is not a valid phone number for ${countryName(country)}`;
  }
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
