import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  digitsKey,
  forfaitMinutesValue,
  identifiantProblem,
  identifiantRule,
  matriculeProblem,
  matriculeRule,
  maxForfaitMinutes,
} from '../../services/users/fields.js';

// Digits, near-digits and the odd characters a spreadsheet leaves in a cell.
const cell = fc.string({ unit: fc.constantFrom('0', '1', '7', '9', '/', ':', ' ', 'a', '٣', '\u00a0', '+', '-'), maxLength: 16 });

describe('field rules (SPEC §2 User)', () => {
  it('a matricule and an identifiant: the schema pattern and the character check agree', () => {
    fc.assert(
      fc.property(cell, (value) => {
        for (const rule of [matriculeRule, identifiantRule]) {
          const key = digitsKey(rule, value);
          expect(key >= 0).toBe(rule.re.test(value));
          if (key >= 0) expect(key).toBe(Number(value));
        }
      }),
      { numRuns: 2000 },
    );
    expect(matriculeRule.re.source).toBe('^[0-9]{14}$');
    expect(identifiantRule.re.source).toBe('^[0-9]{7}$');
    expect(matriculeProblem('2026000000000')).toBe('matricule must be exactly 14 digits (got "2026000000000")');
    expect(identifiantProblem('')).toBe('identifiant must be exactly 7 digits (got nothing)');
    expect(matriculeProblem('20260000000001')).toBeUndefined();
  });

  it('forfait minutes: 1 to 7 digits, at most 1,000,000', () => {
    fc.assert(
      fc.property(cell, (value) => {
        const ok = /^[0-9]{1,7}$/.test(value) && Number(value) <= maxForfaitMinutes;
        expect(forfaitMinutesValue(value)).toBe(ok ? Number(value) : -1);
      }),
      { numRuns: 2000 },
    );
    expect(forfaitMinutesValue('1000000')).toBe(1_000_000);
    expect(forfaitMinutesValue('1000001')).toBe(-1);
    expect(forfaitMinutesValue('0000007')).toBe(7);
    expect(forfaitMinutesValue('')).toBe(-1);
  });
});
