import { describe, expect, it } from 'vitest';
import { buildTariffIndex, type Rate } from '../../engine/index.js';
import { referenceLookup } from '../../engine/reference.js';
import { makeRate } from './helpers.js';

const at = (iso: string): number => Date.parse(iso);

const rates: Rate[] = [
  makeRate({ id: 'fr', prefix: '33', destination: 'France' }),
  makeRate({ id: 'fr-mobile', prefix: '336', destination: 'France mobile' }),
  makeRate({ id: 'fr-mobile-2026', prefix: '336', destination: 'France mobile 2026', validFrom: '2026-01-01T00:00:00Z' }),
  makeRate({ id: 'fr-mobile-2027', prefix: '336', destination: 'France mobile 2027', validFrom: '2027-01-01T00:00:00+01:00' }),
  makeRate({ id: 'fr-premium-soon', prefix: '3389', destination: 'France premium', validFrom: '2030-01-01T00:00:00Z' }),
  makeRate({ id: 'nanp', prefix: '1', destination: 'North America' }),
  makeRate({ id: 'short-3949', prefix: '3949', destination: 'Service 3949', class: 'special' }),
];

describe('TariffIndex', () => {
  const index = buildTariffIndex(rates);

  it.each<[string, string, string | undefined]>([
    ['33123456789', '2025-06-01T00:00:00Z', 'fr'],
    ['33612345678', '2025-06-01T00:00:00Z', 'fr-mobile'],
    ['33612345678', '2026-01-01T00:00:00Z', 'fr-mobile-2026'], // validFrom is inclusive
    ['33612345678', '2025-12-31T23:59:59.999Z', 'fr-mobile'],
    ['33612345678', '2026-12-31T22:59:59.999Z', 'fr-mobile-2026'],
    ['33612345678', '2026-12-31T23:00:00Z', 'fr-mobile-2027'], // 2027-01-01 in +01:00
    ['33612345678', '2040-01-01T00:00:00Z', 'fr-mobile-2027'],
    ['33891234567', '2025-06-01T00:00:00Z', 'fr'], // longer prefix not valid yet: falls back
    ['33891234567', '2030-01-01T00:00:00Z', 'fr-premium-soon'],
    ['+33612345678', '2025-06-01T00:00:00Z', 'fr-mobile'], // a leading + is skipped
    ['12125550100', '2025-06-01T00:00:00Z', 'nanp'],
    ['3949', '2025-06-01T00:00:00Z', 'short-3949'],
    ['44207946', '2025-06-01T00:00:00Z', undefined],
    ['', '2025-06-01T00:00:00Z', undefined],
  ])('%s at %s → %s', (digits, when, id) => {
    expect(index.lookup(digits, at(when))?.rate.id).toBe(id);
    expect(referenceLookup(rates, digits.replace('+', ''), at(when))?.id).toBe(id);
  });

  it('has no rate before the first validFrom', () => {
    const only = buildTariffIndex([makeRate({ prefix: '33', validFrom: '2026-01-01T00:00:00Z' })]);
    expect(only.lookup('33123456789', at('2025-01-01T00:00:00Z'))).toBeUndefined();
  });

  it('pre-parses integer fields', () => {
    const rate = buildTariffIndex([makeRate({ prefix: '+33', pricePerMinute: '0.2', nextPricePerMinute: '0.1', connectionFee: '0.4' })]).rates[0];
    expect(rate).toMatchObject({ prefix: '33', priceMicros: 200000, nextPriceMicros: 100000, connectionFeeMicros: 400000, validFromMs: 0 });
  });

  it('refuses two rates with the same prefix and validFrom, and invalid rates', () => {
    expect(() => buildTariffIndex([makeRate(), makeRate({ validFrom: '1970-01-01T00:00:00.000Z' })])).toThrow(RangeError);
    expect(() => buildTariffIndex([makeRate({ pricePerMinute: '-1' })])).toThrow(/pricePerMinute/);
    expect(() => buildTariffIndex([makeRate({ firstIncrement: 0 })])).toThrow(/increments/);
    expect(() => buildTariffIndex([makeRate({ prefix: '33x' })])).toThrow(/prefix/);
    expect(() => buildTariffIndex([makeRate({ validFrom: 'soon' })])).toThrow(/validFrom/);
  });

  it('looks up a large tariff', () => {
    const many: Rate[] = [];
    for (let i = 0; i < 5000; i++) many.push(makeRate({ id: String(i), prefix: String(10_000 + i * 17) }));
    const big = buildTariffIndex(many);
    expect(big.size).toBe(5000);
    expect(big.lookup('10017999', 0)?.rate.id).toBe('1');
    expect(big.lookup('9999999', 0)).toBeUndefined();
  });
});
