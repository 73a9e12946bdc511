import { describe, expect, it } from 'vitest';
import { digitsForLookup, formatNumber, isShortNumber, parseNumber } from '../../engine/index.js';

describe('parseNumber (SPEC §3)', () => {
  it.each(['0612345678', '06 12 34 56 78', '+33 6 12 34 56 78', '0033612345678', '33612345678', '06.12.34.56.78', '06-12-34-56-78', '+33 (0)6 12 34 56 78'])(
    '%j in FR is +33612345678',
    (input) => {
      expect(parseNumber(input, 'FR')).toEqual({ ok: true, e164: '+33612345678' });
    },
  );

  it.each([
    ['0123456789', 'FR', '+33123456789'],
    ['0800 12 34 56', 'FR', '+33800123456'],
    ['+44 20 7946 0958', 'FR', '+442079460958'],
    ['0044 20 7946 0958', 'FR', '+442079460958'],
    ['020 7946 0958', 'GB', '+442079460958'],
    ['(212) 555-0100', 'US', '+12125550100'],
  ] as const)('%j in %s is %s', (input, country, e164) => {
    expect(parseNumber(input, country)).toEqual({ ok: true, e164 });
  });

  it.each(['112', '15', '17', '18', '114', '3949', '118712', '1015'])('short number %j keeps its digits', (input) => {
    expect(parseNumber(input, 'FR')).toEqual({ ok: true, e164: input });
    expect(isShortNumber(input)).toBe(true);
    expect(digitsForLookup(input)).toBe(input);
  });

  it.each(['', '   ', 'abc', '0612', '06123456789', '+336123', '0712345678', '1234567', '+999123', '0612345678 ext 12', '06 12 34 56 7x'])(
    'refuses %j',
    (input) => {
      const result = parseNumber(input, 'FR');
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.message).not.toBe('');
    },
  );
});

describe('formatNumber', () => {
  it.each([
    ['+33123456789', 'international', '+33123456789'],
    ['+33123456789', 'national', '01 23 45 67 89'],
    ['+33612345678', 'national', '06 12 34 56 78'],
    ['+442079460958', 'national', '+44 20 7946 0958'],
    ['112', 'national', '112'],
    ['112', 'international', '112'],
  ] as const)('%s as %s is %s', (e164, display, text) => {
    expect(formatNumber(e164, display, 'FR')).toBe(text);
  });

  it('strips + for tariff look-up', () => {
    expect(digitsForLookup('+33612345678')).toBe('33612345678');
  });
});
