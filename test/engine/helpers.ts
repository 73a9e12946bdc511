import { compileRate, EPOCH_ISO, type CompiledRate, type Rate } from '../../engine/index.js';

/** A rate with sensible defaults; override what the test is about. */
export function makeRate(overrides: Partial<Rate> = {}): Rate {
  const pricePerMinute = overrides.pricePerMinute ?? '0.1';
  return {
    prefix: '33',
    destination: 'France',
    class: 'fixed',
    pricePerMinute,
    nextPricePerMinute: overrides.nextPricePerMinute ?? pricePerMinute,
    connectionFee: '0',
    firstIncrement: 1,
    nextIncrement: 1,
    forfaitEligible: false,
    validFrom: EPOCH_ISO,
    ...overrides,
  };
}

export function compiled(overrides: Partial<Rate> = {}): CompiledRate {
  return compileRate(makeRate(overrides));
}
