import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildTariffIndex,
  compileRate,
  EPOCH_ISO,
  formatMoney4,
  formatPrice,
  maxCallSeconds,
  parseMoney4,
  rateCall,
  RATE_CLASSES,
  type Money4,
  type PriceMicros,
  type Rate,
} from '../../engine/index.js';
import { referenceLookup, referenceRateCall } from '../../engine/reference.js';

const RUNS = { numRuns: 10_000 };

/** Prices with 0 to 6 decimals, zero included, written the way people write them. */
const price = fc
  .oneof(
    fc.constant(0),
    fc.integer({ min: 0, max: 1_000 }), // tiny: exercises rounding at the 4th decimal
    fc.integer({ min: 0, max: 2_000_000 }), // up to 2 per minute
    fc.integer({ min: 0, max: 200 }).map((units) => units * 1_000_000), // whole units, up to 200
  )
  .chain((micros) => fc.constantFrom(formatPrice(micros as PriceMicros), trimmed(micros)));

/** "0.200000" → "0.2", "6.0000" → "6". */
function trimmed(micros: number): string {
  return formatPrice(micros as PriceMicros).replace(/0+$/, '').replace(/\.$/, '');
}

const increment = fc.integer({ min: 1, max: 120 });

const rate: fc.Arbitrary<Rate> = fc.record({
  prefix: fc.constant('33'),
  destination: fc.constant('France'),
  class: fc.constantFrom(...RATE_CLASSES, 'mobile', 'fixed'), // 'free' less often
  pricePerMinute: price,
  nextPricePerMinute: price,
  connectionFee: price,
  firstIncrement: fc.oneof(increment, fc.constantFrom(1, 30, 60)),
  nextIncrement: fc.oneof(increment, fc.constantFrom(1, 6, 60)),
  forfaitEligible: fc.boolean(),
  validFrom: fc.constant(EPOCH_ISO),
});

const call = fc.record({
  rate,
  durationSeconds: fc.oneof(fc.integer({ min: 0, max: 20_000 }), fc.integer({ min: 0, max: 200 })),
  answered: fc.integer({ min: 0, max: 9 }).map((n) => n < 8), // mostly answered
  remainingForfaitSeconds: fc.oneof(fc.integer({ min: 0, max: 20_000 }), fc.integer({ min: -100, max: 300 })),
  billingEnabled: fc.boolean(),
  freeNumber: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
});

describe('properties', () => {
  it('the integer fast path equals the decimal.js reference', () => {
    fc.assert(
      fc.property(call, (c) => {
        const fast = rateCall({ ...c, rate: compileRate(c.rate) });
        const reference = referenceRateCall(c);
        expect({ ...fast, cost: formatMoney4(fast.cost) }).toEqual(reference);
      }),
      RUNS,
    );
  });

  it('exact half-way costs round up, as the reference does', () => {
    // Connection fee ending in 5 at the 5th decimal plus per-second prices with 4
    // decimals: every exact cost is a half-way value, where float maths slips.
    const halfway = fc.record({
      rate: fc.record({
        prefix: fc.constant('33'),
        destination: fc.constant('France'),
        class: fc.constant('fixed' as const),
        pricePerMinute: fc.integer({ min: 0, max: 5_000 }).map((k) => formatPrice((k * 6_000) as PriceMicros)),
        nextPricePerMinute: fc.integer({ min: 0, max: 5_000 }).map((k) => formatPrice((k * 6_000) as PriceMicros)),
        connectionFee: fc.integer({ min: 0, max: 100_000 }).map((k) => formatPrice((k * 100 + 50) as PriceMicros)),
        firstIncrement: increment,
        nextIncrement: increment,
        forfaitEligible: fc.constant(false),
        validFrom: fc.constant(EPOCH_ISO),
      }),
      durationSeconds: fc.integer({ min: 1, max: 20_000 }),
      answered: fc.constant(true),
      remainingForfaitSeconds: fc.constant(0),
      billingEnabled: fc.constant(true),
      freeNumber: fc.constant(false),
    });
    fc.assert(
      fc.property(halfway, (c) => {
        const fast = rateCall({ ...c, rate: compileRate(c.rate) });
        expect(formatMoney4(fast.cost)).toBe(referenceRateCall(c).cost);
      }),
      RUNS,
    );
  });

  it('billable, forfait and charged seconds are consistent', () => {
    fc.assert(
      fc.property(call, (c) => {
        const r = rateCall({ ...c, rate: compileRate(c.rate) });
        if (!c.answered || c.durationSeconds === 0) {
          expect(r).toEqual({ billableSeconds: 0, forfaitSeconds: 0, chargedSeconds: 0, cost: 0 });
          return;
        }
        expect(r.billableSeconds).toBeGreaterThanOrEqual(c.durationSeconds);
        expect(r.billableSeconds - c.durationSeconds).toBeLessThan(Math.max(c.rate.firstIncrement, c.rate.nextIncrement));
        expect(r.forfaitSeconds).toBeLessThanOrEqual(Math.max(0, c.remainingForfaitSeconds));
        if (c.freeNumber || c.rate.class === 'free') expect(r.chargedSeconds + r.forfaitSeconds + r.cost).toBe(0);
        else expect(r.forfaitSeconds + r.chargedSeconds).toBe(r.billableSeconds);
        if (!c.billingEnabled) expect(r.cost).toBe(0);
      }),
      RUNS,
    );
  });

  it('cost and seconds never decrease when the duration grows', () => {
    fc.assert(
      fc.property(call, fc.integer({ min: 0, max: 3_000 }), (c, extra) => {
        const compiled = compileRate(c.rate);
        const shorter = rateCall({ ...c, answered: true, rate: compiled });
        const longer = rateCall({ ...c, answered: true, rate: compiled, durationSeconds: c.durationSeconds + extra });
        expect(longer.cost).toBeGreaterThanOrEqual(shorter.cost);
        expect(longer.billableSeconds).toBeGreaterThanOrEqual(shorter.billableSeconds);
        expect(longer.chargedSeconds).toBeGreaterThanOrEqual(shorter.chargedSeconds);
        expect(longer.forfaitSeconds).toBeGreaterThanOrEqual(shorter.forfaitSeconds);
      }),
      RUNS,
    );
  });

  it('maxSeconds is the largest duration that fits, and the hold is its rating', () => {
    const allowanceInput = fc.record({
      rate,
      availableForfaitSeconds: fc.oneof(fc.integer({ min: 0, max: 20_000 }), fc.integer({ min: -100, max: 300 })),
      availableMoney: fc.oneof(fc.integer({ min: -100_000, max: 5_000_000 }), fc.integer({ min: -100, max: 20_000 })),
      billingEnabled: fc.boolean(),
      maxCallSeconds: fc.oneof(fc.integer({ min: 0, max: 20_000 }), fc.constant(14_400)),
    });
    fc.assert(
      fc.property(allowanceInput, (a) => {
        const compiled = compileRate(a.rate);
        const money = a.availableMoney as Money4;
        const result = maxCallSeconds({ ...a, rate: compiled, availableMoney: money });
        const rated = (d: number) =>
          rateCall({ durationSeconds: d, answered: true, rate: compiled, remainingForfaitSeconds: a.availableForfaitSeconds, billingEnabled: a.billingEnabled, freeNumber: false });
        const fits = (d: number): boolean => {
          const r = rated(d);
          return a.billingEnabled ? r.cost === 0 || r.cost <= money : r.chargedSeconds === 0;
        };
        expect(result.maxSeconds).toBeGreaterThanOrEqual(0);
        expect(result.maxSeconds).toBeLessThanOrEqual(Math.max(0, a.maxCallSeconds));
        expect(fits(result.maxSeconds)).toBe(true);
        if (result.maxSeconds < a.maxCallSeconds) expect(fits(result.maxSeconds + 1)).toBe(false);
        const hold = rated(result.maxSeconds);
        expect(result.holdForfaitSeconds).toBe(hold.forfaitSeconds);
        expect(result.holdMoney).toBe(hold.cost);
        expect(result.reason === undefined).toBe(result.maxSeconds > 0);
        if (result.reason !== undefined) {
          const expected = a.billingEnabled ? 'INSUFFICIENT_BALANCE' : a.rate.forfaitEligible ? 'FORFAIT_EXHAUSTED' : 'DESTINATION_NOT_COVERED';
          expect(result.reason).toBe(expected);
        }
      }),
      RUNS,
    );
  });

  it('look-up equals the reference on random tariffs', () => {
    const prefixRate = fc.record({
      prefix: fc.stringMatching(/^[1-4]{1,5}$/),
      validFromDay: fc.integer({ min: 0, max: 20 }),
    });
    fc.assert(
      fc.property(fc.uniqueArray(prefixRate, { selector: (r) => `${r.prefix}@${r.validFromDay}`, maxLength: 30 }), fc.stringMatching(/^[1-4]{0,8}$/), fc.integer({ min: -1, max: 22 }), (specs, digits, day) => {
        const rates: Rate[] = specs.map((s, i) => ({
          id: String(i), prefix: s.prefix, destination: s.prefix, class: 'fixed', pricePerMinute: '0.1', nextPricePerMinute: '0.1',
          connectionFee: '0', firstIncrement: 1, nextIncrement: 1, forfaitEligible: true, validFrom: new Date(s.validFromDay * 86_400_000).toISOString(),
        }));
        const when = day * 86_400_000;
        expect(buildTariffIndex(rates).lookup(digits, when)?.rate.id).toBe(referenceLookup(rates, digits, when)?.id);
      }),
      RUNS,
    );
  });

  it('money round-trips through its string form', () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), (n) => {
        expect(parseMoney4(formatMoney4(n as Money4))).toBe(n);
      }),
      RUNS,
    );
  });
});
