import { describe, expect, it } from 'vitest';
import { parseNumber } from '../../engine/index.js';

// The French numbering plan's overseas territories (ARCEP): their national
// numbers, dialled from a French tenant, are their own country codes' E.164.
describe('overseas departments and collectivities in a French tenant (issue 18)', () => {
  it.each([
    ['Réunion fixed', '0262 20 12 34', '+262262201234'],
    ['Réunion mobile', '0692 36 09 58', '+262692360958'],
    ['Réunion mobile 0693', '0693 00 12 34', '+262693001234'],
    ['Mayotte fixed', '0269 60 12 34', '+262269601234'],
    ['Mayotte mobile', '0639 40 12 34', '+262639401234'],
    ['Guadeloupe fixed', '0590 87 12 34', '+590590871234'],
    ['Guadeloupe mobile', '0690 30 12 34', '+590690301234'],
    ['Saint-Martin fixed', '0590 87 12 34', '+590590871234'],
    ['Saint-Barthélemy fixed', '0590 27 12 34', '+590590271234'],
    ['Guyane fixed', '0594 29 12 34', '+594594291234'],
    ['Guyane mobile', '0694 20 12 34', '+594694201234'],
    ['Martinique fixed', '0596 30 12 34', '+596596301234'],
    ['Martinique mobile', '0696 20 12 34', '+596696201234'],
    ['Saint-Pierre-et-Miquelon mobile', '0708 55 12 34', '+508708551234'],
    ['Saint-Pierre-et-Miquelon fixed (0508 + its 6 digits)', '05 08 41 12 34', '+508411234'],
    ['Saint-Pierre-et-Miquelon 6-digit mobile', '05 08 55 12 34', '+508551234'],
  ])('%s: %s is %s', (_territory, input, e164) => {
    expect(parseNumber(input, 'FR')).toEqual({ ok: true, e164 });
    // the same number written internationally is the same number
    expect(parseNumber(e164, 'FR')).toEqual({ ok: true, e164 });
  });

  // Every tenant of the French plan, wherever it is, reaches every territory's
  // fixed and mobile ranges under that territory's country code, and Paris as +33.
  const plan = ['FR', 'RE', 'YT', 'GP', 'MF', 'BL', 'GF', 'MQ', 'PM'] as const;
  const ranges: [string, string, string][] = [
    ['FR fixed', '01 23 45 67 89', '+33123456789'],
    ['FR mobile', '06 12 34 56 78', '+33612345678'],
    ['FR fixed 05', '05 56 12 34 56', '+33556123456'],
    ['RE fixed', '0262 20 12 34', '+262262201234'],
    ['RE mobile', '0692 36 09 58', '+262692360958'],
    ['YT fixed', '0269 60 12 34', '+262269601234'],
    ['YT mobile', '0639 40 12 34', '+262639401234'],
    ['GP fixed', '0590 87 12 34', '+590590871234'],
    ['GP mobile', '0690 30 12 34', '+590690301234'],
    ['MF fixed', '0590 87 12 34', '+590590871234'],
    ['MF mobile', '0690 22 12 34', '+590690221234'],
    ['BL fixed', '0590 27 12 34', '+590590271234'],
    ['BL mobile', '0690 22 12 34', '+590690221234'],
    ['GF fixed', '0594 29 12 34', '+594594291234'],
    ['GF mobile', '0694 20 12 34', '+594694201234'],
    ['MQ fixed', '0596 30 12 34', '+596596301234'],
    ['MQ mobile', '0696 20 12 34', '+596696201234'],
    ['PM fixed', '05 08 41 12 34', '+508411234'],
    ['PM mobile', '05 08 55 12 34', '+508551234'],
    ['PM mobile (9 digits)', '0708 55 12 34', '+508708551234'],
  ];
  it.each(plan)('a tenant in %s reaches each territory under its own country code, in the directory and in calls', (tenant) => {
    for (const [range, input, e164] of ranges) {
      expect([range, parseNumber(input, tenant)]).toEqual([range, { ok: true, e164 }]);
      expect([range, parseNumber(input, tenant, { lenient: true })]).toEqual([range, { ok: true, e164 }]);
      expect([range, parseNumber(e164, tenant)]).toEqual([range, { ok: true, e164 }]);
    }
  });

  it('in Saint-Pierre-et-Miquelon its own 6 digits are local numbers; other countries are untouched', () => {
    expect(parseNumber('41 12 34', 'PM')).toEqual({ ok: true, e164: '+508411234' });
    expect(parseNumber('55 12 34', 'PM')).toEqual({ ok: true, e164: '+508551234' });
    // another country's tenant is untouched: 0508… is its own national number, or nothing
    expect(parseNumber('05 08 41 12 34', 'GB')).not.toEqual({ ok: true, e164: '+508411234' });
  });

  it('metropolitan numbers stay +33, and a tenant overseas reads Paris as Paris', () => {
    expect(parseNumber('06 12 34 56 78', 'FR')).toEqual({ ok: true, e164: '+33612345678' });
    expect(parseNumber('01 23 45 67 89', 'FR')).toEqual({ ok: true, e164: '+33123456789' });
    expect(parseNumber('01 23 45 67 89', 'RE')).toEqual({ ok: true, e164: '+33123456789' });
    expect(parseNumber('0692 36 09 58', 'RE')).toEqual({ ok: true, e164: '+262692360958' });
    expect(parseNumber('0590 87 12 34', 'GP')).toEqual({ ok: true, e164: '+590590871234' });
  });

  it('ranges the territories share (0806…, 0800…) stay the tenant’s own: a territory claims a range alone', () => {
    expect(parseNumber('0806 12 34 56', 'FR')).toEqual({ ok: true, e164: '+33806123456' });
    expect(parseNumber('0800 12 34 56', 'FR')).toEqual({ ok: true, e164: '+33800123456' });
    expect(parseNumber('0976 12 34 56', 'FR')).toEqual({ ok: true, e164: '+33976123456' });
    expect(parseNumber('0590 87 12 34', 'RE')).toEqual({ ok: true, e164: '+590590871234' });
  });

  it('other countries are untouched by the French plan', () => {
    expect(parseNumber('020 7946 0958', 'GB')).toEqual({ ok: true, e164: '+442079460958' });
    expect(parseNumber('0692 36 09 58', 'GB').ok).toBe(false);
  });
});

describe('unknown ranges (issue 18)', () => {
  it('the directory refuses a possible but unallocated number, saying what is wrong', () => {
    const r = parseNumber('07 12 34 56 78', 'FR');
    expect(r).toEqual({ ok: false, message: '"07 12 34 56 78" has the length of a France (+33) number but is not in a range allocated there' });
  });

  it('a call that happened keeps it, flagged', () => {
    expect(parseNumber('07 12 34 56 78', 'FR', { lenient: true })).toEqual({ ok: true, e164: '+33712345678', unknownRange: true });
    expect(parseNumber('+1 212 000 0000', 'FR', { lenient: true })).toEqual({ ok: true, e164: '+12120000000', unknownRange: true });
    // a known number carries no flag
    expect(parseNumber('06 12 34 56 78', 'FR', { lenient: true })).toEqual({ ok: true, e164: '+33612345678' });
  });

  it('wrong lengths and non-numbers are refused either way, in words', () => {
    for (const lenient of [false, true]) {
      expect(parseNumber('0612', 'FR', { lenient })).toEqual({ ok: false, message: '"0612" is too short for a France (+33) number' });
      expect(parseNumber('06123456789', 'FR', { lenient })).toEqual({ ok: false, message: '"06123456789" is too long for a France (+33) number' });
      expect(parseNumber('abc', 'FR', { lenient })).toMatchObject({ ok: false, message: expect.stringContaining('is not a phone number') });
      expect(parseNumber('+999123', 'FR', { lenient })).toEqual({ ok: false, message: '"+999123" starts with a country code that does not exist' });
    }
  });
});
