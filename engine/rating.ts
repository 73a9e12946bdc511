/**
 * Rating of one call (SPEC §4), in integer arithmetic.
 *
 * Prices are integer micro-units per minute, so the exact cost of a call is
 *     N / (60 × 10^6) currency units,  N = fee×60 + price×c1 + nextPrice×c2
 * with N an integer. In Money4 units (10^-4) that is N / 6000, rounded half-up
 * once. N stays a safe integer for any realistic call (a price of 1 000 per
 * minute over a 10-day call is ~10^15); beyond 2^53 the same sum is done with
 * decimal.js.
 */
import { Dec, type Money4 } from './money.js';
import type { CompiledRate } from './rate.js';

export interface RateCallInput {
  /** Billable talk time reported by the PBX ("billsec"), whole seconds ≥ 0. */
  durationSeconds: number;
  answered: boolean;
  rate: CompiledRate;
  /** Forfait seconds the user has left; negative counts as 0. */
  remainingForfaitSeconds: number;
  billingEnabled: boolean;
  /** The callee is one of the tenant's free numbers. */
  freeNumber: boolean;
}

export interface RatedCall {
  billableSeconds: number;
  forfaitSeconds: number;
  chargedSeconds: number;
  cost: Money4;
}

/** Money4 units per (micro-unit × second / 60): 10^6 × 60 / 10^4. */
const N_PER_MONEY4 = 6000;
const HALF = 3000;

/**
 * §4.2: the first increment is always billed whole, then whole next increments.
 * 0 for d = 0.
 */
export function billableSeconds(durationSeconds: number, firstIncrement: number, nextIncrement: number): number {
  if (durationSeconds <= 0) return 0;
  if (durationSeconds <= firstIncrement) return firstIncrement;
  const beyond = durationSeconds - firstIncrement;
  const rest = beyond % nextIncrement;
  return rest === 0 ? durationSeconds : durationSeconds - rest + nextIncrement;
}

/**
 * §4.4: cost of the charged part of a call of `billable` seconds whose first
 * `forfaitSeconds` the forfait pays for, assuming billing is on and the rate is
 * not free. 0 when nothing is charged (no connection fee either).
 */
export function chargedCost(rate: CompiledRate, billable: number, forfaitSeconds: number): Money4 {
  const charged = billable - forfaitSeconds;
  if (charged <= 0) return 0 as Money4;
  const firstPart = Math.min(billable, rate.firstIncrement);
  const c1 = firstPart > forfaitSeconds ? firstPart - forfaitSeconds : 0;
  const c2 = charged - c1;
  // All terms are ≥ 0, so if the sum is a safe integer every term and partial sum was exact.
  const n = rate.connectionFeeMicros * 60 + rate.priceMicros * c1 + rate.nextPriceMicros * c2;
  if (n > Number.MAX_SAFE_INTEGER) return bigChargedCost(rate, c1, c2);
  const rest = n % N_PER_MONEY4;
  return ((n - rest) / N_PER_MONEY4 + (rest >= HALF ? 1 : 0)) as Money4;
}

/** The same sum with decimal.js, for values beyond 2^53. */
function bigChargedCost(rate: CompiledRate, c1: number, c2: number): Money4 {
  const n = new Dec(rate.connectionFeeMicros)
    .times(60)
    .plus(new Dec(rate.priceMicros).times(c1))
    .plus(new Dec(rate.nextPriceMicros).times(c2));
  const cost = n.div(N_PER_MONEY4).toDecimalPlaces(0, Dec.ROUND_HALF_UP).toNumber();
  if (!Number.isSafeInteger(cost)) throw new RangeError('call cost out of range');
  return cost as Money4;
}

function assertSeconds(name: string, n: number): void {
  if (!Number.isSafeInteger(n)) throw new RangeError(`${name} must be a whole number of seconds, got ${n}`);
}

/**
 * Rates one call by SPEC §4.
 *
 * - Not answered or d = 0: everything 0.
 * - Free number or class `free`: billableSeconds per the increments (for
 *   statistics), forfaitSeconds = chargedSeconds = 0, cost 0 — nothing is paid,
 *   neither by the forfait nor by money.
 * - Otherwise forfaitSeconds = min(billable, remaining forfait) when the rate is
 *   forfait-eligible (the forfait pays the FIRST seconds), chargedSeconds the rest,
 *   and cost per §4.4, or 0 when billing is disabled (seconds still computed).
 */
export function rateCall(input: RateCallInput): RatedCall {
  const { durationSeconds: d, rate } = input;
  assertSeconds('durationSeconds', d);
  assertSeconds('remainingForfaitSeconds', input.remainingForfaitSeconds);
  if (d < 0) throw new RangeError(`durationSeconds must not be negative, got ${d}`);
  if (!input.answered || d === 0) return { billableSeconds: 0, forfaitSeconds: 0, chargedSeconds: 0, cost: 0 as Money4 };
  const billable = billableSeconds(d, rate.firstIncrement, rate.nextIncrement);
  if (input.freeNumber || rate.free) return { billableSeconds: billable, forfaitSeconds: 0, chargedSeconds: 0, cost: 0 as Money4 };
  const remaining = Math.max(input.remainingForfaitSeconds, 0);
  const forfait = rate.forfaitEligible ? Math.min(billable, remaining) : 0;
  return {
    billableSeconds: billable,
    forfaitSeconds: forfait,
    chargedSeconds: billable - forfait,
    cost: input.billingEnabled ? chargedCost(rate, billable, forfait) : (0 as Money4),
  };
}

/**
 * §4 with the rate found, or without one for a free number (§4.5: its seconds
 * counted as they were talked, nothing paid). `rate` undefined for a callee
 * that is not free is the caller's to refuse.
 */
export function rateOrFree(input: Omit<RateCallInput, 'rate'> & { rate: CompiledRate | undefined }): RatedCall {
  // the caller's object as it is (no copy per CDR: ingest and simulation call this millions of times)
  if (input.rate !== undefined) return rateCall(input as RateCallInput);
  return { billableSeconds: input.answered ? input.durationSeconds : 0, forfaitSeconds: 0, chargedSeconds: 0, cost: 0 as Money4 };
}
