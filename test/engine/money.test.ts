import { describe, expect, it } from 'vitest';
import {
  formatMoney4,
  ratePercent,
  formatPrice,
  mulMoney4,
  mulMoney4Round2,
  parseMoney4,
  parsePrice,
  roundMoney2,
  roundMoney2String,
  type Money4,
} from '../../engine/index.js';

describe('Money4', () => {
  it.each([
    ['10', 100000, '10.0000'],
    ['10.5', 105000, '10.5000'],
    ['-0.0417', -417, '-0.0417'],
    ['0', 0, '0.0000'],
    ['-0', 0, '0.0000'],
    ['+3.25', 32500, '3.2500'],
    ['.5', 5000, '0.5000'],
    ['7.', 70000, '7.0000'],
    ['1.50000', 15000, '1.5000'],
    [' 2.0001 ', 20001, '2.0001'],
    ['123456789.1234', 1234567891234, '123456789.1234'],
  ])('parses %s', (text, units, formatted) => {
    const m = parseMoney4(text);
    expect(m).toBe(units);
    expect(formatMoney4(m)).toBe(formatted);
  });

  it.each(['', '-', '.', '1.23456', '1e3', 'abc', '1,5', '0x10', '1.2.3', '99999999999999999'])('refuses %j', (text) => {
    expect(() => parseMoney4(text)).toThrow(RangeError);
  });

  it.each([
    [6417, '0.64', 6400],
    [6450, '0.65', 6500],
    [6449, '0.64', 6400],
    [50, '0.01', 100],
    [49, '0.00', 0],
    [-50, '-0.01', -100],
    [-6450, '-0.65', -6500],
    [-49, '0.00', 0],
    [1234567, '123.46', 1234600],
  ])('rounds %i half-up (away from zero) to %s', (units, text, rounded) => {
    expect(roundMoney2String(units as Money4)).toBe(text);
    expect(roundMoney2(units as Money4)).toBe(rounded);
  });

  it('multiplies by decimal factors exactly', () => {
    expect(formatMoney4(mulMoney4Round2(parseMoney4('10.25'), '0.20'))).toBe('2.0500');
    expect(formatMoney4(mulMoney4Round2(parseMoney4('0.025'), '1'))).toBe('0.0300');
    expect(formatMoney4(mulMoney4(parseMoney4('3.3333'), '0.2'))).toBe('0.6667');
    expect(formatMoney4(mulMoney4(parseMoney4('-0.0005'), '0.5'))).toBe('-0.0003');
  });
});

describe('prices (micro-units)', () => {
  it.each([
    ['0.2', 200000, '0.2000'],
    ['0.041667', 41667, '0.041667'],
    ['0.12345', 123450, '0.12345'],
    ['6', 6000000, '6.0000'],
    ['0', 0, '0.0000'],
  ])('parses %s', (text, micros, formatted) => {
    expect(parsePrice(text)).toBe(micros);
    expect(formatPrice(parsePrice(text))).toBe(formatted);
  });

  it('refuses more than 6 decimals', () => {
    expect(() => parsePrice('0.1234567')).toThrow(RangeError);
  });
});

describe('ratePercent (VAT rates on invoices and in Factur-X)', () => {
  it('prints a rate as an exact percentage with a point', () => {
    expect(ratePercent('0.2000')).toBe('20');
    expect(ratePercent('0.055')).toBe('5.5');
    expect(ratePercent('0.021')).toBe('2.1');
    expect(ratePercent('0')).toBe('0');
    expect(ratePercent('1')).toBe('100');
    expect(ratePercent('0.19625')).toBe('19.625');
  });
});
