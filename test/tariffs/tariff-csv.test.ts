import { describe, expect, it } from 'vitest';
import type { CsvLineError } from '../../engine/index.js';
import { parseTariffCsv } from '../../services/tariffs/tariffs.js';

const HEADER = 'prefix,destination,class,price_per_minute,connection_fee,first_increment,next_increment,forfait_eligible';
const FULL_HEADER = `${HEADER},next_price_per_minute,valid_from`;

async function errorsOf(text: string): Promise<CsvLineError[]> {
  const result = await parseTariffCsv(text);
  if (result.ok) throw new Error('expected line errors');
  return result.errors;
}

describe('parseTariffCsv (SPEC §6)', () => {
  it('reads the minimal columns with defaults for the optional ones', async () => {
    const result = await parseTariffCsv(`${HEADER}\n33,France fixe,fixed,0.02,0,60,60,true\n336,France mobile,mobile,0.10,0.05,30,6,oui\n`);
    expect(result).toEqual({
      ok: true,
      rates: [
        {
          prefix: '33', destination: 'France fixe', class: 'fixed', pricePerMinute: '0.0200', nextPricePerMinute: '0.0200',
          connectionFee: '0.0000', firstIncrement: 60, nextIncrement: 60, forfaitEligible: true, validFrom: '1970-01-01T00:00:00Z',
        },
        {
          prefix: '336', destination: 'France mobile', class: 'mobile', pricePerMinute: '0.1000', nextPricePerMinute: '0.1000',
          connectionFee: '0.0500', firstIncrement: 30, nextIncrement: 6, forfaitEligible: true, validFrom: '1970-01-01T00:00:00Z',
        },
      ],
    });
  });

  it('reads BOM, CRLF, quotes, optional columns and a leading +', async () => {
    const text =
      `\ufeff${FULL_HEADER}\r\n` +
      `+44,"United Kingdom, London",international,0.2,0.4,60,1,no,0.1,2026-01-01T00:00:00+01:00\r\n` +
      `"3949","Service ""3949""\r\nPôle emploi",special,0.15,0,1,1,0,,\r\n` +
      `112,Urgences,free,0,0,1,1,NON,,2026-03-01\r\n`;
    const result = await parseTariffCsv(text);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.rates.map((r) => [r.prefix, r.destination, r.class, r.pricePerMinute, r.nextPricePerMinute, r.forfaitEligible, r.validFrom])).toEqual([
      ['44', 'United Kingdom, London', 'international', '0.2000', '0.1000', false, '2025-12-31T23:00:00Z'],
      ['3949', 'Service "3949"\r\nPôle emploi', 'special', '0.1500', '0.1500', false, '1970-01-01T00:00:00Z'],
      ['112', 'Urgences', 'free', '0.0000', '0.0000', false, '2026-03-01T00:00:00Z'],
    ]);
  });

  it("accepts ';' used consistently, with decimal commas", async () => {
    const result = await parseTariffCsv(`${HEADER.replaceAll(',', ';')}\n33;"France; fixe";fixed;0,02;0;60;60;1\n`);
    expect(result).toMatchObject({ ok: true, rates: [{ prefix: '33', destination: 'France; fixe', pricePerMinute: '0.0200', forfaitEligible: true }] });
  });

  it('reads valid_from without offset in the given zone', async () => {
    const result = await parseTariffCsv(`${FULL_HEADER}\n33,France,fixed,0.02,0,60,60,true,,2026-07-01 00:00:00\n`, { defaultZone: 'Europe/Paris' });
    expect(result).toMatchObject({ ok: true, rates: [{ validFrom: '2026-06-30T22:00:00Z' }] });
  });

  it('accepts a header only (an empty tariff) and skips blank lines', async () => {
    expect(await parseTariffCsv(`${HEADER}\n`)).toEqual({ ok: true, rates: [] });
    expect(await parseTariffCsv(`${HEADER}\n\n33,France,fixed,0.02,0,60,60,true\n\n`)).toMatchObject({ ok: true, rates: [{ prefix: '33' }] });
  });

  it.each<[string, string, number, string, string]>([
    ['bad prefix', '33a,France,fixed,0.02,0,60,60,true', 2, 'prefix', '33a'],
    ['too long prefix', '1234567890123456,France,fixed,0.02,0,60,60,true', 2, 'prefix', '1234567890123456'],
    ['missing prefix', ',France,fixed,0.02,0,60,60,true', 2, 'prefix', ''],
    ['missing destination', '33,,fixed,0.02,0,60,60,true', 2, 'destination', ''],
    ['unknown class', '33,France,landline,0.02,0,60,60,true', 2, 'class', 'landline'],
    ['negative price', '33,France,fixed,-0.02,0,60,60,true', 2, 'price_per_minute', '-0.02'],
    ['price with 7 decimals', '33,France,fixed,0.1234567,0,60,60,true', 2, 'price_per_minute', '0.1234567'],
    ['garbage price', '33,France,fixed,cheap,0,60,60,true', 2, 'price_per_minute', 'cheap'],
    ['negative connection fee', '33,France,fixed,0.02,-1,60,60,true', 2, 'connection_fee', '-1'],
    ['zero first increment', '33,France,fixed,0.02,0,0,60,true', 2, 'first_increment', '0'],
    ['negative next increment', '33,France,fixed,0.02,0,60,-6,true', 2, 'next_increment', '-6'],
    ['fractional increment', '33,France,fixed,0.02,0,60,1.5,true', 2, 'next_increment', '1.5'],
    ['bad boolean', '33,France,fixed,0.02,0,60,60,maybe', 2, 'forfait_eligible', 'maybe'],
  ])('%s → line error', async (_name, row, line, field, value) => {
    expect(await errorsOf(`${HEADER}\n${row}\n`)).toEqual([expect.objectContaining({ line, field, value })]);
  });

  it('reports bad next price and bad date', async () => {
    expect(await errorsOf(`${FULL_HEADER}\n33,France,fixed,0.02,0,60,60,true,-1,2026-13-01\n`)).toEqual([
      expect.objectContaining({ line: 2, field: 'next_price_per_minute', value: '-1' }),
      expect.objectContaining({ line: 2, field: 'valid_from', value: '2026-13-01' }),
    ]);
  });

  it('reports every error of the file with its physical line', async () => {
    const text = [
      HEADER, // 1
      '33,France,fixed,0.02,0,60,60,true', // 2 ok
      '34,"Spain', // 3: a quoted field over two lines…
      'mainland",international,0.1,0,60,60,false', // 4 …so the row is line 3 and ok
      '', // 5 blank
      '35,Portugal,international,0.1,0,60,60', // 6 wrong field count
      '33,France again,fixed,0.03,0,60,60,true', // 7 duplicate of line 2
      'x1,Nowhere,teleport,-1,0,0,60,perhaps', // 8 five errors
      '36,Hungary,international,0.1,0,60,60,true', // 9 ok
    ].join('\n');
    expect(await errorsOf(text)).toEqual([
      expect.objectContaining({ line: 6, field: 'row', value: '7' }),
      expect.objectContaining({ line: 7, field: 'prefix', value: '33', message: expect.stringContaining('line 2') }),
      expect.objectContaining({ line: 8, field: 'prefix', value: 'x1' }),
      expect.objectContaining({ line: 8, field: 'class', value: 'teleport' }),
      expect.objectContaining({ line: 8, field: 'price_per_minute', value: '-1' }),
      expect.objectContaining({ line: 8, field: 'first_increment', value: '0' }),
      expect.objectContaining({ line: 8, field: 'forfait_eligible', value: 'perhaps' }),
    ]);
  });

  it('allows the same prefix with different valid_from, refuses the same valid_from twice', async () => {
    const ok = await parseTariffCsv(`${FULL_HEADER}\n33,France,fixed,0.02,0,60,60,true,,\n33,France,fixed,0.03,0,60,60,true,,2026-01-01\n`);
    expect(ok.ok).toBe(true);
    expect(await errorsOf(`${FULL_HEADER}\n33,France,fixed,0.02,0,60,60,true,,2026-01-01T00:00:00Z\n+33,France,fixed,0.03,0,60,60,true,,2026-01-01\n`)).toEqual([
      expect.objectContaining({ line: 3, field: 'prefix' }),
    ]);
  });

  it('reports malformed quoting and goes on with the next lines', async () => {
    const errors = await errorsOf(`${HEADER}\n33,"France"x,fixed,0.02,0,60,60,true\n34,Spain,international,0.1,0,60,60,maybe\n`);
    expect(errors).toEqual([
      expect.objectContaining({ line: 2, field: 'row', message: expect.stringContaining('quoting') }),
      expect.objectContaining({ line: 3, field: 'forfait_eligible' }),
    ]);
  });

  it('reports an unterminated quote at the line it opens', async () => {
    expect(await errorsOf(`${HEADER}\n33,France,fixed,0.02,0,60,60,true\n34,"Spain,international,0.1,0,60,60,true\n`)).toEqual([
      expect.objectContaining({ line: 3, field: 'row', message: expect.stringMatching(/closing|unterminated/) }),
    ]);
  });

  it.each<[string, string]>([
    ['missing column', 'prefix,destination,class,price_per_minute,connection_fee,first_increment,next_increment'],
    ['unknown column', `${HEADER},colour`],
    ['column twice', `${HEADER},prefix`],
  ])('header error: %s', async (_name, header) => {
    expect(await errorsOf(`${header}\n33,France,fixed,0.02,0,60,60,true\n`)).toEqual([expect.objectContaining({ line: 1, field: 'header' })]);
  });

  it('refuses an empty file', async () => {
    expect(await errorsOf('')).toEqual([expect.objectContaining({ line: 1, field: 'header' })]);
  });
});
