import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { call, testApp, testDb, type Answer } from '../support/app.js';
import { resellerKey, uniqueName } from '../support/factory.js';
import { forfait } from '../support/cli.js';
import { slotsFromDb } from '../../services/users/fields.js';

// Issue 18's "Done when": a new user follows README.md ("Five minutes with curl"
// and "Command line") with the files a French operator really has — a users file
// saved by French Excel in Windows-1252, an Excel ';' file with a BOM and a
// header line, a directory of overseas numbers, a tariff saved by Excel, an
// Asterisk Master.csv with a callee in an unallocated range — and gets every
// user with the right name and number, every call rated, and no message a
// person cannot act on.

const app = testApp();
const file = (name: string) => path.join(import.meta.dirname, '../fixtures/files', name);
const bytes = (name: string) => readFile(file(name));

/** What a person must never be shown: validator internals, JavaScript values, mojibake. */
const UNREADABLE = /nonoptional|invalid_type|invalid_union|ZodError|expected (string|number|object|array)|received |\bundefined\b|\bNaN\b|\[object |\uFFFD|Ã©|Ã§/;
const messages: string[] = [];
/** Every message of an answer (error details, notes, unknown ranges, rejects), kept for the last check. */
function heard(res: Answer | { stdout: string; stderr: string }): void {
  if ('stderr' in res) {
    messages.push(...res.stderr.split('\n').filter((l) => l.trim() !== ''));
    return;
  }
  const j = res.json;
  if (j?.error) messages.push(j.error.message, ...(j.error.details ?? []).map((d: { message: string }) => d.message));
  for (const n of j?.notes ?? []) messages.push(n);
  for (const u of [...(j?.unknownRange ?? []), ...(j?.rejected ?? [])]) messages.push(u.message);
}

async function step(res: Answer, status: number, what: string): Promise<any> {
  heard(res);
  expect(res.status, `${what}: ${res.text}`).toBe(status);
  return res.json;
}

async function directory(tenantId: string) {
  const rows = await testDb()
    .db.selectFrom('users')
    .select(['fullName', 'identifiant', 'authorizedNumbers'])
    .where('tenantId', '=', tenantId)
    .orderBy('identifiant')
    .execute();
  return Object.fromEntries(rows.map((u) => [u.identifiant, { name: u.fullName, numbers: slotsFromDb(u.authorizedNumbers).filter((n) => n !== null) }]));
}

describe('README.md with the files operators really send (issue 18)', () => {
  it('every user imported with the right name and number, every call rated, no message a person cannot act on', async () => {
    const { key: KEY } = await resellerKey({ newReseller: true });
    const csv = { 'content-type': 'text/csv' };

    // 1. a tariff: the one French Excel saved (BOM, ';', decimal commas)
    const tariffId = uniqueName('standard').toLowerCase();
    const tariff = await step(await call(app, 'PUT', `/v1/tariffs/${tariffId}`, { key: KEY, body: await bytes('tariff-excel.csv'), headers: csv }), 200, 'tariff');
    expect(tariff.rates.map((r: { prefix: string }) => r.prefix).sort()).toEqual(['262', '33', '336', '590']);

    // 2. a tenant, 3. its PBX key
    const tenant = await step(
      await call(app, 'POST', '/v1/tenants', { key: KEY, json: { name: uniqueName('Acme SARL'), productType: 'pro', reference: 'CLI-0042', tariffId } }),
      201,
      'tenant',
    );
    const ADMIN: string = tenant.adminKey;
    const tenantId: string = tenant.tenant.id;
    const PBX = (await step(await call(app, 'POST', '/v1/keys', { key: ADMIN, json: { name: 'asterisk-1', principal: 'pbx' } }), 201, 'pbx key')).key;

    // 5. users: the Windows-1252 file as it is, through the API
    const latin = await step(await call(app, 'POST', '/v1/users/import?mode=upsert', { key: ADMIN, body: await bytes('users-windows-1252.csv'), headers: csv }), 200, 'Windows-1252 users');
    expect(latin).toMatchObject({ created: 4, encoding: 'windows-1252' });

    //    the Excel file with a header line: one error that says what to do, nothing written…
    const header = await call(app, 'POST', '/v1/users/import?mode=upsert', { key: ADMIN, body: await bytes('users-excel-header.csv'), headers: csv });
    await step(header, 400, 'Excel users with a header');
    expect(header.json.error.details).toHaveLength(1);
    expect(header.json.error.details[0].message).toContain('delete that line and import again');
    //    the CLI says the same, on its own line, and exits 2
    const headerCli = await forfait(['users', 'import', file('users-excel-header.csv'), '--tenant', tenantId, '--mode', 'upsert']);
    heard(headerCli);
    expect(headerCli.code).toBe(2);
    expect(headerCli.stderr).toContain('line 1 header: the file must have no header line');
    //    …and with that line deleted, as the message says, through the CLI
    const excelText = (await bytes('users-excel-header.csv')).toString('utf8');
    const withoutHeader = path.join(await mkdtemp(path.join(tmpdir(), 'forfait-readme-')), 'utilisateurs.csv');
    await writeFile(withoutHeader, Buffer.from(`\uFEFF${excelText.slice(excelText.indexOf('\r\n') + 2)}`, 'utf8'));
    const excel = await forfait(['users', 'import', withoutHeader, '--tenant', tenantId, '--mode', 'upsert']);
    heard(excel);
    expect(excel.code, excel.stderr).toBe(0);
    expect(JSON.parse(excel.stdout)).toMatchObject({ created: 2, encoding: 'utf-8' });
    expect(excel.stderr).toContain('forfait: the UTF-8 byte order mark (BOM) at the start of the file was removed');

    //    the directory of overseas numbers, through the CLI
    const overseas = await forfait(['users', 'import', file('users-overseas.csv'), '--tenant', tenantId, '--mode', 'upsert']);
    heard(overseas);
    expect(overseas.code, overseas.stderr).toBe(0);
    expect(JSON.parse(overseas.stdout)).toMatchObject({ created: 8 });

    //    a user one by one, for the PBX's calls, and money through the ledger
    const alice = await step(
      await call(app, 'POST', '/v1/users', {
        key: ADMIN,
        json: { fullName: 'Alice Martin', matricule: '20260000000999', identifiant: '5550001', authorizedNumbers: ['07 12 34 56 78'] },
      }),
      400,
      'a user with an unallocated number',
    );
    expect(alice.error.details[0]).toMatchObject({ field: 'authorizedNumbers.1', message: expect.stringContaining('is not in a range allocated there') });
    const created = await step(
      await call(app, 'POST', '/v1/users', { key: ADMIN, json: { fullName: 'Alice Martin', matricule: '20260000000999', identifiant: '5550001', authorizedNumbers: [] } }),
      201,
      'a user',
    );
    await step(await call(app, 'POST', `/v1/users/${created.id}/ledger`, { key: ADMIN, json: { kind: 'topup', amount: '20.00', idempotencyKey: 'topup-1' } }), 201, 'top-up');

    expect(await directory(tenantId)).toEqual({
      '1000101': { name: 'François Lefèvre', numbers: ['+33612345678'] },
      '1000102': { name: 'Hélène Côté', numbers: ['+262692360958', '+33123456789'] },
      '1000103': { name: 'Zoë Œillet-Müller', numbers: ['+596596301234'] },
      '1000104': { name: 'Agnès Bénédicte Ñúñez', numbers: [] },
      '2000201': { name: 'Réunion Fixe', numbers: ['+262262201234', '+262692360958', '+262693001234'] },
      '2000202': { name: 'Mayotte', numbers: ['+262269601234', '+262639401234'] },
      '2000203': { name: 'Guadeloupe', numbers: ['+590590871234', '+590690301234'] },
      '2000204': { name: 'Saint-Barthélemy', numbers: ['+590590271234'] },
      '2000205': { name: 'Guyane', numbers: ['+594594291234', '+594694201234'] },
      '2000206': { name: 'Martinique', numbers: ['+596596301234', '+596696201234'] },
      '2000207': { name: 'Saint-Pierre-et-Miquelon', numbers: ['+508708551234', '+508411234', '+508551234'] },
      '2000208': { name: 'Métropole', numbers: ['+33612345678', '+262692360958'] },
      '3000301': { name: 'Émilie Durand', numbers: ['+33612345678'] },
      '3000302': { name: 'Noël Garçon', numbers: ['+594694201234'] },
      '5550001': { name: 'Alice Martin', numbers: [] },
    });

    // 6. the PBX: Hélène (Réunion) calls her Réunion number as she dials it, then the call ends
    const helene = (await call(app, 'GET', '/v1/users?q=1000102', { key: ADMIN })).json.items[0];
    await step(await call(app, 'POST', `/v1/users/${helene.id}/ledger`, { key: ADMIN, json: { kind: 'topup', amount: '5.00', idempotencyKey: 'topup-2' } }), 201, 'top-up');
    const allowed = await step(await call(app, 'POST', '/v1/authorize', { key: PBX, json: { identifiant: '1000102', callee: '0692 36 09 58', callId: 'asterisk-1.1' } }), 200, 'authorize');
    expect(allowed).toMatchObject({ decision: 'allow', callee: '+262692360958', destination: 'Réunion' });
    const ended = await step(
      await call(app, 'POST', `/v1/calls/${allowed.reservationId}/end`, { key: PBX, json: { durationSeconds: 95, disposition: 'answered' } }),
      200,
      'end of call',
    );
    expect(ended).toMatchObject({ callee: '+262692360958', destination: 'Réunion', cost: expect.stringMatching(/^0\.9500$/) });

    // 7. the PBX's Master.csv, with the PBX key as the README shows, and again through the CLI (nothing rated twice)
    const master = await step(
      await call(app, 'POST', '/v1/cdrs/import?format=asterisk', { key: PBX, body: await bytes('Master-unallocated.csv'), headers: csv }),
      200,
      'Master.csv',
    );
    expect(master).toMatchObject({ accepted: 3, rejectedCount: 0, unknownRangeCount: 1, unknownRange: [{ callee: '+33712345678' }] });
    const again = await forfait(['cdrs', 'import', file('Master-unallocated.csv'), '--tenant', tenantId, '--format', 'asterisk']);
    heard(again);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ accepted: 0, duplicates: 3, rejectedCount: 0 });

    //    every call rated, under its right number
    const calls = await step(await call(app, 'GET', '/v1/cdrs?from=2026-11-01&to=2026-12-01', { key: ADMIN }), 200, 'CDRs');
    expect(calls.items).toHaveLength(3);
    for (const c of calls.items) expect(c.rateId, JSON.stringify(c)).not.toBeNull();
    expect(Object.fromEntries(calls.items.map((c: { callee: string; destination: string }) => [c.callee, c.destination]))).toEqual({
      '+33712345678': 'France fixe',
      '+262692360958': 'Réunion',
      '+33612345678': 'France mobile',
    });
    const all = await step(await call(app, 'GET', '/v1/cdrs?limit=10', { key: ADMIN }), 200, 'CDRs');
    expect(all.items).toHaveLength(4);

    // 8. what finance opens: the Excel export, with its accents in UTF-8 and the decimal comma
    const exported = await call(app, 'GET', '/v1/cdrs/export.csv?from=2026-11-01&to=2026-12-01&excel=1', { key: ADMIN });
    expect(exported.status).toBe(200);
    expect(exported.text).toContain('Réunion');
    expect(exported.text).toMatch(/;0,\d{4}/);

    // no message a person cannot act on
    expect(messages.length).toBeGreaterThan(5);
    expect(messages.filter((m) => UNREADABLE.test(m))).toEqual([]);
  }, 180_000);
});

