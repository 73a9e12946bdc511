/**
 * Money in the engine.
 *
 * Amounts (costs, balances, ledger amounts) have 4 decimals and are carried as a
 * safe integer number of 1/10000 units (`Money4`). Per-minute prices and
 * connection fees may have 6 decimals and are carried as integer micro-units
 * (`PriceMicros`). No binary floating point fraction is ever used for money: the
 * `number` values are integers, and anything that would not fit a safe integer
 * goes through decimal.js.
 */
import { Decimal } from 'decimal.js';

export type Money4 = number & { readonly __brand: 'Money4' };
export type PriceMicros = number & { readonly __brand: 'PriceMicros' };

/** 1 currency unit = 10 000 Money4 units. */
export const MONEY4_SCALE = 10_000;
/** 1 currency unit = 1 000 000 PriceMicros units. */
export const PRICE_SCALE = 1_000_000;

export const ZERO_MONEY4 = 0 as Money4;

/**
 * A private decimal.js constructor: exact enough for any amount we meet and
 * rounding half-up, without touching the global Decimal configuration that other
 * layers may rely on.
 */
export const Dec = Decimal.clone({ precision: 60, rounding: Decimal.ROUND_HALF_UP, toExpNeg: -30, toExpPos: 40 });
export type Dec = InstanceType<typeof Dec>;

const DECIMAL_RE = /^([+-]?)(\d*)(?:\.(\d*))?$/;

/**
 * Parses a plain decimal string into an integer count of 10^-scale units.
 * Digits beyond `scale` are accepted only when they are zeros ("1.50000" is
 * exactly 1.5), so no value is ever silently rounded.
 */
function parseScaled(input: string, scale: number, what: string): number {
  const s = input.trim();
  const m = DECIMAL_RE.exec(s);
  const intPart = m?.[2] ?? '';
  const fracPart = m?.[3] ?? '';
  if (m === null || (intPart === '' && fracPart === '')) {
    throw new RangeError(`invalid ${what} "${input}": expected a decimal number such as 12.5`);
  }
  const significant = fracPart.replace(/0+$/, '');
  if (significant.length > scale) {
    throw new RangeError(`invalid ${what} "${input}": at most ${scale} decimals`);
  }
  const digits = (intPart === '' ? '0' : intPart) + significant.padEnd(scale, '0');
  const value = Number(digits);
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`invalid ${what} "${input}": out of range`);
  }
  // `-0` would print as "0.0000" anyway, but keep the integer canonical.
  return m[1] === '-' && value !== 0 ? -value : value;
}

function formatScaled(value: number, scale: number, decimals: number): string {
  if (!Number.isSafeInteger(value)) throw new RangeError(`not a safe integer amount: ${value}`);
  const negative = value < 0;
  const digits = String(negative ? -value : value).padStart(scale + 1, '0');
  const intPart = digits.slice(0, digits.length - scale);
  const fracPart = digits.slice(digits.length - scale, digits.length - scale + decimals);
  return `${negative ? '-' : ''}${intPart}${decimals > 0 ? '.' + fracPart : ''}`;
}

/** "10" → 100000, "-0.0417" → -417. Throws RangeError on garbage or > 4 decimals. */
export function parseMoney4(s: string): Money4 {
  return parseScaled(s, 4, 'amount') as Money4;
}

/** Always 4 decimals: 100000 → "10.0000", -417 → "-0.0417". */
export function formatMoney4(m: Money4): string {
  return formatScaled(m, 4, 4);
}

/** True when `s` is a decimal with at most 4 decimals that fits a Money4. */
export function isMoney4String(s: string): boolean {
  try {
    parseMoney4(s);
    return true;
  } catch {
    return false;
  }
}

/** A price per minute or connection fee with up to 6 decimals → micro-units. Throws RangeError. */
export function parsePrice(s: string): PriceMicros {
  return parseScaled(s, 6, 'price') as PriceMicros;
}

/**
 * Canonical price string: at least 4 decimals, up to 6 when needed
 * (200000 → "0.2000", 41667 → "0.041667").
 */
export function formatPrice(p: PriceMicros): string {
  const full = formatScaled(p, 6, 6);
  return full.endsWith('00') ? full.slice(0, -2) : full.endsWith('0') ? full.slice(0, -1) : full;
}

/**
 * Rounds to cents, half-up with halves going AWAY FROM ZERO for negative amounts
 * too (-0.005 → -0.01), which is what a symmetric invoice/credit-note pair needs.
 * The result stays in Money4 units (a multiple of 100).
 */
export function roundMoney2(m: Money4): Money4 {
  const negative = m < 0;
  const abs = negative ? -m : m;
  const rest = abs % 100;
  const rounded = abs - rest + (rest >= 50 ? 100 : 0);
  return (negative && rounded !== 0 ? -rounded : rounded) as Money4;
}

/** Rounds half-up (away from zero) to 2 decimals and prints exactly 2: 6417 → "0.64", 50 → "0.01". */
export function roundMoney2String(m: Money4): string {
  return formatScaled(roundMoney2(m), 4, 2);
}

/** Sum of Money4 values; throws RangeError if the result leaves the safe-integer range. */
export function addMoney4(...amounts: Money4[]): Money4 {
  let total = 0;
  for (const a of amounts) total += a;
  if (!Number.isSafeInteger(total)) throw new RangeError('amount out of range');
  return total as Money4;
}

export function negateMoney4(m: Money4): Money4 {
  return (m === 0 ? 0 : -m) as Money4;
}

/**
 * Multiplies an amount by a decimal factor (e.g. a VAT rate "0.20" or a quantity)
 * exactly and rounds half-up (away from zero) to 4 decimals.
 */
export function mulMoney4(m: Money4, factor: string | number): Money4 {
  const product = new Dec(m).times(new Dec(factor)).toDecimalPlaces(0, Dec.ROUND_HALF_UP);
  return money4FromUnits(product);
}

/** round2(amount × rate), for VAT on an invoice total: formatMoney4(vatAmount(...)) ends in "00". */
export function mulMoney4Round2(m: Money4, factor: string | number): Money4 {
  const product = new Dec(m).times(new Dec(factor)).div(100).toDecimalPlaces(0, Dec.ROUND_HALF_UP).times(100);
  return money4FromUnits(product);
}

/** decimal.js value in currency units → Money4, rounding half-up to 4 decimals. */
export function money4FromDecimal(d: Dec | Decimal): Money4 {
  return money4FromUnits(new Dec(d).times(MONEY4_SCALE).toDecimalPlaces(0, Dec.ROUND_HALF_UP));
}

/** Money4 → decimal.js value in currency units. */
export function money4ToDecimal(m: Money4): Dec {
  return new Dec(m).div(MONEY4_SCALE);
}

function money4FromUnits(units: Dec): Money4 {
  const n = units.toNumber();
  if (!Number.isSafeInteger(n)) throw new RangeError(`amount out of range: ${units.toString()}`);
  return (n === 0 ? 0 : n) as Money4;
}

/** A rate as a percentage, exactly, with a point: "0.2000" → "20", "0.055" → "5.5" (the rate itself if it is not a decimal). */
export function ratePercent(rate: string): string {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(rate);
  if (!m) return rate;
  const digits = `${m[1]}${(m[2] ?? '').padEnd(2, '0')}`;
  const int = String(Number(digits.slice(0, m[1]!.length + 2)));
  const frac = digits.slice(m[1]!.length + 2).replace(/0+$/, '');
  return frac ? `${int}.${frac}` : int;
}
