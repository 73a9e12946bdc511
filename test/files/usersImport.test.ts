import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { call, testApp, testDb } from '../support/app.js';
import { newTenant } from '../support/factory.js';

const app = testApp();
const fixture = (name: string) => readFile(path.join(import.meta.dirname, '../fixtures/files', name));

async function importFile(key: string, bytes: Uint8Array, query = 'mode=upsert') {
  return call(app, 'POST', `/v1/users/import?${query}`, { key, body: bytes, headers: { 'content-type': 'text/csv' } });
}

async function directory(tenantId: string) {
  const { db } = testDb();
  return db.selectFrom('users').select(['fullName', 'matricule', 'authorizedNumbers']).where('tenantId', '=', tenantId).orderBy('matricule').execute();
}

describe('users files as spreadsheets and portals write them (issue 18)', () => {
  it('a Windows-1252 file saved by French Excel: every user with the right name and number, and the answer says it was converted', async () => {
    const t = await newTenant(app, { country: 'FR' });
    const res = await importFile(t.adminKey, await fixture('users-windows-1252.csv'));
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ created: 4, encoding: 'windows-1252', notes: [expect.stringContaining('Windows-1252')] });
    const users = await directory(t.id);
    expect(users.map((u) => u.fullName)).toEqual(['François Lefèvre', 'Hélène Côté', 'Zoë Œillet-Müller', 'Agnès Bénédicte Ñúñez']);
    expect(users[1]!.authorizedNumbers.slice(0, 2)).toEqual(['+262692360958', '+33123456789']);
    expect(users[2]!.authorizedNumbers[0]).toBe('+596596301234');
    for (const u of users) expect(u.fullName).not.toContain('\uFFFD');
    // what is stored is what is printed: the export gives the names back, in UTF-8
    const exported = await call(app, 'GET', '/v1/users/export', { key: t.adminKey });
    expect(exported.text).toContain('François Lefèvre');
  });

  it('a directory of overseas numbers: each territory under its own country code', async () => {
    const t = await newTenant(app, { country: 'FR' });
    const res = await importFile(t.adminKey, await fixture('users-overseas.csv'));
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ created: 8, encoding: 'utf-8', notes: [] });
    const numbers = Object.fromEntries((await directory(t.id)).map((u) => [u.fullName, u.authorizedNumbers.filter((n) => n?.startsWith("+"))]));
    expect(numbers).toEqual({
      'Réunion Fixe': ['+262262201234', '+262692360958', '+262693001234'],
      Mayotte: ['+262269601234', '+262639401234'],
      Guadeloupe: ['+590590871234', '+590690301234'],
      'Saint-Barthélemy': ['+590590271234'],
      Guyane: ['+594594291234', '+594694201234'],
      Martinique: ['+596596301234', '+596696201234'],
      'Saint-Pierre-et-Miquelon': ['+508708551234', '+508411234', '+508551234'],
      Métropole: ['+33612345678', '+262692360958'],
    });
  });

  it('an Excel file with a BOM and a header line: one error that says so, nothing written', async () => {
    const t = await newTenant(app, { country: 'FR' });
    const res = await importFile(t.adminKey, await fixture('users-excel-header.csv'));
    expect(res.status).toBe(400);
    expect(res.json.error.details).toEqual([
      {
        line: 1,
        field: 'header',
        value: 'Nom;Matricule;Identifiant',
        message: 'the file must have no header line: line 1 ("Nom", "Matricule", "Identifiant", …) looks like column names, and a users file starts with its first record; delete that line and import again',
      },
    ]);
    expect(await directory(t.id)).toEqual([]);
    // without that line, the same file imports: BOM and ';' are fine
    const text = (await fixture('users-excel-header.csv')).toString('utf8');
    const fixed = await importFile(t.adminKey, Buffer.from(text.slice(0, 1) + text.slice(text.indexOf('\r\n') + 2), 'utf8'));
    expect(fixed.status, fixed.text).toBe(200);
    expect(fixed.json).toMatchObject({ created: 2, notes: [expect.stringContaining('byte order mark')] });
    expect((await directory(t.id)).map((u) => u.fullName)).toEqual(['Émilie Durand', 'Noël Garçon']);
  });

  it('a file it cannot read for sure is refused at its line, nothing written', async () => {
    const t = await newTenant(app, { country: 'FR' });
    const res = await importFile(t.adminKey, Buffer.from('Zoë Martin,20260000000001,1234567,,,,,,,,,,\nFran\uFFFDois,20260000000002,1234568,,,,,,,,,,\n', 'utf8'));
    expect(res.status).toBe(400);
    expect(res.json.error.details).toEqual([{ line: 2, field: 'encoding', message: expect.stringContaining('U+FFFD') }]);
    expect(await directory(t.id)).toEqual([]);
  });

  it('a number in an unallocated range is refused in the directory, with what is wrong', async () => {
    const t = await newTenant(app, { country: 'FR' });
    const res = await importFile(t.adminKey, Buffer.from('Zoë Martin,20260000000001,1234567,07 12 34 56 78,,,,,,,,,\n'));
    expect(res.status).toBe(400);
    expect(res.json.error.details).toEqual([
      { line: 1, field: 'authorizedNumber1', value: '07 12 34 56 78', message: '"07 12 34 56 78" has the length of a France (+33) number but is not in a range allocated there' },
    ]);
  });
});
