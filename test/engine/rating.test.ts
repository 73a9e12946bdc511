import { describe, expect, it } from 'vitest';
import { billableSeconds, formatMoney4, rateCall, rateOrFree, type Rate } from '../../engine/index.js';
import { referenceRateCall } from '../../engine/reference.js';
import { compiled, makeRate } from './helpers.js';

const SPEC_FIRST_MINUTE: Partial<Rate> = {
  connectionFee: '0.4',
  pricePerMinute: '0.2',
  nextPricePerMinute: '0.1',
  firstIncrement: 60,
  nextIncrement: 1,
};

interface Case {
  name: string;
  rate: Partial<Rate>;
  d: number;
  answered?: boolean;
  forfait?: number;
  billing?: boolean;
  free?: boolean;
  expected: { billableSeconds: number; forfaitSeconds: number; chargedSeconds: number; cost: string };
}

const cases: Case[] = [
  // SPEC §4 examples
  { name: 'spec 60/1: 20 s', rate: SPEC_FIRST_MINUTE, d: 20, expected: { billableSeconds: 60, forfaitSeconds: 0, chargedSeconds: 60, cost: '0.6000' } },
  { name: 'spec 60/1: 85 s', rate: SPEC_FIRST_MINUTE, d: 85, expected: { billableSeconds: 85, forfaitSeconds: 0, chargedSeconds: 85, cost: '0.6417' } },
  { name: 'spec 60/1: 120 s', rate: SPEC_FIRST_MINUTE, d: 120, expected: { billableSeconds: 120, forfaitSeconds: 0, chargedSeconds: 120, cost: '0.7000' } },
  { name: 'spec 30/6: 45 s bills 48 s', rate: { pricePerMinute: '0.05', firstIncrement: 30, nextIncrement: 6 }, d: 45, expected: { billableSeconds: 48, forfaitSeconds: 0, chargedSeconds: 48, cost: '0.0400' } },
  // §4.1
  { name: 'unanswered', rate: SPEC_FIRST_MINUTE, d: 85, answered: false, expected: { billableSeconds: 0, forfaitSeconds: 0, chargedSeconds: 0, cost: '0.0000' } },
  { name: 'zero duration', rate: SPEC_FIRST_MINUTE, d: 0, expected: { billableSeconds: 0, forfaitSeconds: 0, chargedSeconds: 0, cost: '0.0000' } },
  // increments
  { name: '60/60: 1 s bills 60', rate: { pricePerMinute: '0.12', firstIncrement: 60, nextIncrement: 60 }, d: 1, expected: { billableSeconds: 60, forfaitSeconds: 0, chargedSeconds: 60, cost: '0.1200' } },
  { name: '60/60: 60 s bills 60', rate: { pricePerMinute: '0.12', firstIncrement: 60, nextIncrement: 60 }, d: 60, expected: { billableSeconds: 60, forfaitSeconds: 0, chargedSeconds: 60, cost: '0.1200' } },
  { name: '60/60: 61 s bills 120', rate: { pricePerMinute: '0.12', firstIncrement: 60, nextIncrement: 60 }, d: 61, expected: { billableSeconds: 120, forfaitSeconds: 0, chargedSeconds: 120, cost: '0.2400' } },
  { name: '30/6: 30 s bills 30', rate: { pricePerMinute: '0.05', firstIncrement: 30, nextIncrement: 6 }, d: 30, expected: { billableSeconds: 30, forfaitSeconds: 0, chargedSeconds: 30, cost: '0.0250' } },
  { name: '30/6: 31 s bills 36', rate: { pricePerMinute: '0.05', firstIncrement: 30, nextIncrement: 6 }, d: 31, expected: { billableSeconds: 36, forfaitSeconds: 0, chargedSeconds: 36, cost: '0.0300' } },
  { name: '30/6: 5 s bills 30', rate: { pricePerMinute: '0.05', firstIncrement: 30, nextIncrement: 6 }, d: 5, expected: { billableSeconds: 30, forfaitSeconds: 0, chargedSeconds: 30, cost: '0.0250' } },
  { name: '1/1: 1 s', rate: { pricePerMinute: '0.06', firstIncrement: 1, nextIncrement: 1 }, d: 1, expected: { billableSeconds: 1, forfaitSeconds: 0, chargedSeconds: 1, cost: '0.0010' } },
  { name: '1/1: 59 s at 0.07 rounds half-up once', rate: { pricePerMinute: '0.07', firstIncrement: 1, nextIncrement: 1 }, d: 59, expected: { billableSeconds: 59, forfaitSeconds: 0, chargedSeconds: 59, cost: '0.0688' } },
  { name: 'half-up at the 5th decimal: 3 s at 0.001 = 0.00005', rate: { pricePerMinute: '0.001', firstIncrement: 1, nextIncrement: 1 }, d: 3, expected: { billableSeconds: 3, forfaitSeconds: 0, chargedSeconds: 3, cost: '0.0001' } },
  { name: 'just below half: 2 s at 0.001 = 0.0000333', rate: { pricePerMinute: '0.001', firstIncrement: 1, nextIncrement: 1 }, d: 2, expected: { billableSeconds: 2, forfaitSeconds: 0, chargedSeconds: 2, cost: '0.0000' } },
  { name: 'no rounding per increment: 10 × 6 s at 0.0001', rate: { pricePerMinute: '0.0001', firstIncrement: 6, nextIncrement: 6 }, d: 60, expected: { billableSeconds: 60, forfaitSeconds: 0, chargedSeconds: 60, cost: '0.0001' } },
  { name: '6-decimal prices', rate: { connectionFee: '0.000001', pricePerMinute: '0.123456', nextPricePerMinute: '0.654321', firstIncrement: 30, nextIncrement: 1 }, d: 100, expected: { billableSeconds: 100, forfaitSeconds: 0, chargedSeconds: 100, cost: '0.8251' } },
  // forfait
  { name: 'forfait covers all: no connection fee', rate: { ...SPEC_FIRST_MINUTE, forfaitEligible: true }, d: 85, forfait: 600, expected: { billableSeconds: 85, forfaitSeconds: 85, chargedSeconds: 0, cost: '0.0000' } },
  { name: 'forfait runs out inside the first increment', rate: { ...SPEC_FIRST_MINUTE, forfaitEligible: true }, d: 85, forfait: 20, expected: { billableSeconds: 85, forfaitSeconds: 20, chargedSeconds: 65, cost: '0.5750' } },
  { name: 'forfait runs out inside the next increments', rate: { ...SPEC_FIRST_MINUTE, forfaitEligible: true }, d: 85, forfait: 70, expected: { billableSeconds: 85, forfaitSeconds: 70, chargedSeconds: 15, cost: '0.4250' } },
  { name: 'forfait ends exactly at the first increment', rate: { ...SPEC_FIRST_MINUTE, forfaitEligible: true }, d: 120, forfait: 60, expected: { billableSeconds: 120, forfaitSeconds: 60, chargedSeconds: 60, cost: '0.5000' } },
  { name: 'forfait runs out in a 60/60 call', rate: { pricePerMinute: '0.12', firstIncrement: 60, nextIncrement: 60, forfaitEligible: true }, d: 61, forfait: 90, expected: { billableSeconds: 120, forfaitSeconds: 90, chargedSeconds: 30, cost: '0.0600' } },
  { name: 'rate not forfait-eligible: forfait untouched', rate: { ...SPEC_FIRST_MINUTE, forfaitEligible: false }, d: 85, forfait: 600, expected: { billableSeconds: 85, forfaitSeconds: 0, chargedSeconds: 85, cost: '0.6417' } },
  { name: 'negative remaining forfait counts as 0', rate: { ...SPEC_FIRST_MINUTE, forfaitEligible: true }, d: 85, forfait: -30, expected: { billableSeconds: 85, forfaitSeconds: 0, chargedSeconds: 85, cost: '0.6417' } },
  // billing off
  { name: 'billing off: seconds computed, cost 0', rate: { ...SPEC_FIRST_MINUTE, forfaitEligible: true }, d: 85, forfait: 20, billing: false, expected: { billableSeconds: 85, forfaitSeconds: 20, chargedSeconds: 65, cost: '0.0000' } },
  // free
  { name: 'free number: cost 0, no forfait, billable kept', rate: { ...SPEC_FIRST_MINUTE, forfaitEligible: true }, d: 85, forfait: 600, free: true, expected: { billableSeconds: 85, forfaitSeconds: 0, chargedSeconds: 0, cost: '0.0000' } },
  { name: 'class free: cost 0, no forfait', rate: { ...SPEC_FIRST_MINUTE, class: 'free', forfaitEligible: true }, d: 85, forfait: 600, expected: { billableSeconds: 85, forfaitSeconds: 0, chargedSeconds: 0, cost: '0.0000' } },
];

describe('rateCall (SPEC §4)', () => {
  it.each(cases)('$name', (c) => {
    const input = {
      durationSeconds: c.d,
      answered: c.answered ?? true,
      remainingForfaitSeconds: c.forfait ?? 0,
      billingEnabled: c.billing ?? true,
      freeNumber: c.free ?? false,
    };
    const fast = rateCall({ ...input, rate: compiled(c.rate) });
    expect({ ...fast, cost: formatMoney4(fast.cost) }).toEqual(c.expected);
    expect(referenceRateCall({ ...input, rate: makeRate(c.rate) })).toEqual(c.expected);
  });

  it('falls back to decimal.js beyond 2^53 and still rounds once', () => {
    // N = 0.00005 × 60 + 100000 × 120000 in micro-units is 1.2e16 > 2^53; the exact cost is 200000000.00005.
    const rate = compiled({ pricePerMinute: '100000', connectionFee: '0.00005', firstIncrement: 1, nextIncrement: 1 });
    const input = { durationSeconds: 120_000, answered: true, remainingForfaitSeconds: 0, billingEnabled: true, freeNumber: false };
    const fast = rateCall({ ...input, rate });
    expect(formatMoney4(fast.cost)).toBe('200000000.0001');
    expect(referenceRateCall({ ...input, rate: rate.rate }).cost).toBe('200000000.0001');
  });

  it('refuses durations that are not whole seconds', () => {
    const base = { answered: true, rate: compiled(), remainingForfaitSeconds: 0, billingEnabled: true, freeNumber: false };
    expect(() => rateCall({ ...base, durationSeconds: 1.5 })).toThrow(RangeError);
    expect(() => rateCall({ ...base, durationSeconds: -1 })).toThrow(RangeError);
    expect(() => rateCall({ ...base, durationSeconds: Number.NaN })).toThrow(RangeError);
  });
});

describe('billableSeconds', () => {
  it.each([
    [0, 60, 60, 0],
    [1, 60, 60, 60],
    [60, 60, 60, 60],
    [61, 60, 60, 120],
    [119, 60, 60, 120],
    [121, 60, 60, 180],
    [45, 30, 6, 48],
    [36, 30, 6, 36],
    [37, 30, 6, 42],
    [7, 1, 1, 7],
    [90, 60, 1, 90],
  ])('d=%i with %i/%i bills %i', (d, first, next, expected) => {
    expect(billableSeconds(d, first, next)).toBe(expected);
  });
});

describe('rateOrFree: a free number with no rate (§4.5), the one rule ingest, rerate and simulation share', () => {
  const input = { durationSeconds: 125, answered: true, remainingForfaitSeconds: 600, billingEnabled: true, freeNumber: true };
  it('counts the seconds as talked and pays nothing', () => {
    expect(rateOrFree({ ...input, rate: undefined })).toEqual({ billableSeconds: 125, forfaitSeconds: 0, chargedSeconds: 0, cost: 0 });
    expect(rateOrFree({ ...input, answered: false, rate: undefined })).toEqual({ billableSeconds: 0, forfaitSeconds: 0, chargedSeconds: 0, cost: 0 });
  });
  it('is rateCall whenever a rate is found', () => {
    const rate = compiled(makeRate({}));
    for (const freeNumber of [true, false]) expect(rateOrFree({ ...input, freeNumber, rate })).toEqual(rateCall({ ...input, freeNumber, rate }));
  });
});
