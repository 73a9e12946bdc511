/**
 * A plain, literal implementation of SPEC §4 and of the tariff look-up with
 * decimal.js and strings only. It is slow on purpose: property tests compare the
 * fast engine with it, and the rating benchmark uses it as its anchor.
 */
import { Dec, formatMoney4, money4FromDecimal } from './money.js';
import { parseInstant, type Rate } from './rate.js';

export interface ReferenceRateCallInput {
  durationSeconds: number;
  answered: boolean;
  rate: Rate;
  remainingForfaitSeconds: number;
  billingEnabled: boolean;
  freeNumber: boolean;
}

export interface ReferenceRatedCall {
  billableSeconds: number;
  forfaitSeconds: number;
  chargedSeconds: number;
  /** 4 decimals, e.g. "0.6417". */
  cost: string;
}

export function referenceRateCall(input: ReferenceRateCallInput): ReferenceRatedCall {
  const { rate } = input;
  const d = input.durationSeconds;
  if (!input.answered || d === 0) return { billableSeconds: 0, forfaitSeconds: 0, chargedSeconds: 0, cost: '0.0000' };

  const first = rate.firstIncrement;
  const next = rate.nextIncrement;
  const billable = d <= first ? first : first + Math.ceil((d - first) / next) * next;

  if (input.freeNumber || rate.class === 'free') {
    return { billableSeconds: billable, forfaitSeconds: 0, chargedSeconds: 0, cost: '0.0000' };
  }
  const remaining = Math.max(0, input.remainingForfaitSeconds);
  const forfait = rate.forfaitEligible ? Math.min(billable, remaining) : 0;
  const charged = billable - forfait;

  let cost = new Dec(0);
  if (input.billingEnabled && charged > 0) {
    // Charged time is the billable interval [forfait, billable); the first price
    // applies to the part of it inside [0, firstIncrement).
    const c1 = Math.max(0, Math.min(billable, first) - forfait);
    const c2 = charged - c1;
    const price = new Dec(rate.pricePerMinute);
    const nextPrice = new Dec(rate.nextPricePerMinute === '' ? rate.pricePerMinute : rate.nextPricePerMinute);
    // One division, so the only rounding is the final half-up to 4 decimals.
    const perMinuteSum = new Dec(rate.connectionFee).times(60).plus(price.times(c1)).plus(nextPrice.times(c2));
    cost = perMinuteSum.div(60).toDecimalPlaces(4, Dec.ROUND_HALF_UP);
  }
  return {
    billableSeconds: billable,
    forfaitSeconds: forfait,
    chargedSeconds: charged,
    cost: formatMoney4(money4FromDecimal(cost)),
  };
}

/** Longest matching prefix valid at `atEpochMs`, falling back to shorter prefixes; by trying every prefix length. */
export function referenceLookup(rates: readonly Rate[], digits: string, atEpochMs: number): Rate | undefined {
  for (let length = Math.min(15, digits.length); length >= 1; length--) {
    const prefix = digits.slice(0, length);
    let best: Rate | undefined;
    let bestFrom = -Infinity;
    for (const rate of rates) {
      if (rate.prefix !== prefix) continue;
      const from = parseInstant(rate.validFrom) ?? Infinity;
      if (from <= atEpochMs && from > bestFrom) {
        best = rate;
        bestFrom = from;
      }
    }
    if (best !== undefined) return best;
  }
  return undefined;
}

/** A map from prefix to its rates, for a reference look-up that is not quadratic. */
export function groupRatesByPrefix(rates: readonly Rate[]): Map<string, Rate[]> {
  const byPrefix = new Map<string, Rate[]>();
  for (const rate of rates) {
    const list = byPrefix.get(rate.prefix);
    if (list === undefined) byPrefix.set(rate.prefix, [rate]);
    else list.push(rate);
  }
  return byPrefix;
}

/** `referenceLookup` over rates grouped by prefix. */
export function referenceLookupGrouped(byPrefix: ReadonlyMap<string, readonly Rate[]>, digits: string, atEpochMs: number): Rate | undefined {
  for (let length = Math.min(15, digits.length); length >= 1; length--) {
    const found = referenceLookup(byPrefix.get(digits.slice(0, length)) ?? [], digits.slice(0, length), atEpochMs);
    if (found !== undefined) return found;
  }
  return undefined;
}
