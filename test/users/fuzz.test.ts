import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { call, testApp, testDb } from '../support/app.js';
import { createUser, directory, dumpDirectory, expectLedgerInvariant, importCsv } from './helpers.js';

/**
 * Random users files, valid and broken in the ways real files are (wrong digit
 * counts, too many or too few fields, unparsable numbers, duplicates inside the
 * file, empty lines, broken quotes, accents and quotes in names), against a
 * directory that already has users. Whatever the file: never a 500, and a
 * rejected import leaves the database exactly as it was.
 */
const app = testApp();

const nameChars = fc.constantFrom(...'abcdeéèëàçœÆØÅñ ZOË\'",;-=+@Łł'.split(''), 'Zoë', 'O\'Brien', '"quoted"', 'Garçon', '\t');
const fullName = fc.oneof({ weight: 8, arbitrary: fc.array(nameChars, { minLength: 1, maxLength: 12 }).map((a) => a.join('')) }, { weight: 1, arbitrary: fc.constant('') });
const digits = (n: number) => fc.array(fc.integer({ min: 0, max: 9 }), { minLength: n, maxLength: n }).map((d) => d.join(''));
const matricule = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('10000000000001', '10000000000002', '10000000000003', '10000000000004', '10000000000005') },
  { weight: 3, arbitrary: digits(14) },
  { weight: 1, arbitrary: fc.oneof(digits(13), digits(15), fc.constant('1e13'), fc.constant('')) },
);
const identifiant = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('2000001', '2000002', '2000003', '2000004', '2000005', '2000006') },
  { weight: 3, arbitrary: digits(7) },
  { weight: 1, arbitrary: fc.oneof(digits(6), digits(8), fc.constant('12a4567')) },
);
const number = fc.oneof(
  { weight: 6, arbitrary: fc.constant('') },
  { weight: 4, arbitrary: fc.constantFrom('0612345678', '06 12 34 56 79', '+33 6 12 34 56 80', '0033612345681', '33612345682', '01 23 45 67 89', '112', '+44 20 7946 0958') },
  { weight: 1, arbitrary: fc.constantFrom('12', 'abc', '+999', '07 12 34 56 78', '0', '06123456789012') },
);
const optional = fc.constantFrom<string[]>([], ['30'], ['30', 'enabled'], ['0', 'disabled', '1'], ['', '', '0'], ['-5', 'maybe', '2']);
const row = fc.record({
  fullName,
  matricule,
  identifiant,
  numbers: fc.array(number, { minLength: 10, maxLength: 10 }),
  optional,
  fieldDelta: fc.oneof({ weight: 12, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(-2, -1, 4, 5) }),
  brokenQuote: fc.oneof({ weight: 30, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});
const file = fc.record({
  rows: fc.array(fc.oneof({ weight: 8, arbitrary: row }, { weight: 1, arbitrary: fc.constant(null) }), { maxLength: 12 }),
  sep: fc.constantFrom(',', ';'),
  eol: fc.constantFrom('\n', '\r\n'),
  bom: fc.boolean(),
  mode: fc.constantFrom('append', 'upsert', 'sync'),
  dryRun: fc.boolean(),
});

function cell(value: string, sep: string): string {
  return value.includes(sep) || value.includes('"') || /[\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

type FileSpec = typeof file extends fc.Arbitrary<infer T> ? T : never;

function render(f: FileSpec): string {
  const lines = f.rows.map((r) => {
    if (r === null) return '';
    let cells = [r.fullName, r.matricule, r.identifiant, ...r.numbers, ...r.optional].map((c) => cell(c, f.sep));
    if (r.fieldDelta < 0) cells = cells.slice(0, 13 + r.fieldDelta);
    else cells = cells.concat(Array.from({ length: r.fieldDelta }, () => 'x'));
    const text = cells.join(f.sep);
    return r.brokenQuote ? `"${text}` : text;
  });
  return (f.bom ? '\uFEFF' : '') + lines.join(f.eol);
}

describe('users import, fuzzed', () => {
  it('never answers 500 and a rejected import changes nothing', async () => {
    const t = await directory(app);
    await createUser(app, t, { fullName: 'Existing One', matricule: '10000000000001', identifiant: '2000001' });
    await createUser(app, t, { fullName: 'Existing Two', matricule: '10000000000009', identifiant: '2000009', authorizedNumbers: ['0612345678'] });
    const { db } = testDb();
    const imports = async () => (await db.selectFrom('importSnapshots').select('id').where('tenantId', '=', t.id).execute()).length;
    const statuses = new Map<number, number>();

    await fc.assert(
      fc.asyncProperty(file, async (f) => {
        const before = await dumpDirectory(t.id);
        const importsBefore = await imports();
        const res = await importCsv(app, t, render(f), `mode=${f.mode}&dryRun=${f.dryRun}`);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        expect([200, 400, 409], res.text).toContain(res.status);
        if (res.status !== 200 || f.dryRun) {
          expect(await dumpDirectory(t.id)).toEqual(before);
          expect(await imports()).toBe(importsBefore);
        }
        if (res.status === 400) {
          for (const d of res.json.error.details) {
            expect(d.line).toBeGreaterThanOrEqual(1);
            expect(typeof d.field).toBe('string');
            expect(typeof d.message).toBe('string');
          }
        }
        if (res.status === 200 && !f.dryRun && f.mode === 'sync') {
          const inFile = new Set(f.rows.filter((r) => r !== null).map((r) => r!.matricule));
          expect(new Set((await dumpDirectory(t.id)).map((u) => u.matricule))).toEqual(inFile);
        }
        // keep the directory small and known: the next file starts from two users again
        if (res.status === 200 && !f.dryRun) {
          const restored = await call(app, 'POST', `/v1/users/imports/${res.json.importId}/restore`, { key: t.adminKey });
          expect(restored.status, restored.text).toBe(200);
          expect(await dumpDirectory(t.id)).toEqual(before);
        }
      }),
      { numRuns: 120, seed: 20261122 },
    );
    // the generator reaches both outcomes
    expect(statuses.get(200) ?? 0).toBeGreaterThan(5);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(5);
    await expectLedgerInvariant(t.id);
  });
});
