import { describe, expect, it } from 'vitest';
import { call, testApp, testDb } from '../support/app.js';
import { resellerKey, uniqueName, type TenantFixture } from '../support/factory.js';
import { checkedTenants, createUser, dumpDirectory, ids, importCsv, line } from './helpers.js';

const app = testApp();
const tenant = checkedTenants(app);

async function importCount(tenantId: string): Promise<number> {
  const { db } = testDb();
  return (await db.selectFrom('importSnapshots').select('id').where('tenantId', '=', tenantId).execute()).length;
}

async function exported(t: TenantFixture, query = ''): Promise<string> {
  const res = await call(app, 'GET', `/v1/users/export${query}`, { key: t.adminKey });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
  return res.text;
}

function person() {
  return ids();
}

describe('users import modes', () => {
  it('append adds new matricules; a known one is a line error and nothing is written', async () => {
    const t = await tenant({ defaultForfaitMinutes: 60 });
    const a = person();
    const b = person();
    const first = await importCsv(app, t, [line('Zoë Martin', a.matricule, a.identifiant, ['0612345678']), line('Jean Roux', b.matricule, b.identifiant)].join('\n'), 'mode=append');
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ created: 2, updated: 0, deleted: 0, unchanged: 0, dryRun: false });
    expect(first.json.importId).toMatch(/^[0-9a-f-]{36}$/);
    const before = await dumpDirectory(t.id);
    expect(before.map((u) => u.forfaitMinutes)).toEqual([60, 60]);
    expect(before.find((u) => u.matricule === a.matricule)!.authorizedNumbers[0]).toBe('+33612345678');

    const c = person();
    const again = await importCsv(app, t, [line('Ann', c.matricule, c.identifiant), line('Zoë Martin', a.matricule, a.identifiant)].join('\n'), 'mode=append');
    expect(again.status).toBe(400);
    expect(again.json.error.details).toEqual([{ line: 2, field: 'matricule', value: a.matricule, message: expect.stringMatching(/already in the directory/) }]);
    expect(await dumpDirectory(t.id)).toEqual(before);
  });

  it('upsert creates and updates by matricule, keeps what the file does not give, counts the unchanged', async () => {
    const t = await tenant();
    const kept = await createUser(app, t, { fullName: 'Kept', forfaitMinutes: 30, billingEnabled: false, generalState: 'présent' });
    const changed = await createUser(app, t, { fullName: 'Old name', authorizedNumbers: ['0612345678'] });
    const fresh = person();
    const csv = [
      line('Kept', kept.matricule, kept.identifiant),
      line('New name', changed.matricule, changed.identifiant, ['', '06 12 34 56 79'], ['90', 'disabled', '0']),
      line('Fresh', fresh.matricule, fresh.identifiant, [], ['15']),
    ].join('\r\n');
    const res = await importCsv(app, t, csv, 'mode=upsert');
    expect(res.json).toMatchObject({ created: 1, updated: 1, deleted: 0, unchanged: 1 });
    const after = await call(app, 'GET', `/v1/users/${changed.id}`, { key: t.adminKey });
    expect(after.json).toMatchObject({ fullName: 'New name', forfaitMinutes: 90, accountStatus: 'disabled', billingEnabled: false, id: changed.id });
    expect(after.json.authorizedNumbers.slice(0, 2)).toEqual([null, '+33612345679']);
    const keptAfter = await call(app, 'GET', `/v1/users/${kept.id}`, { key: t.adminKey });
    expect(keptAfter.json).toEqual(kept);
    const list = await call(app, 'GET', `/v1/users?q=Fresh`, { key: t.adminKey });
    expect(list.json.items[0]).toMatchObject({ forfaitMinutes: 15, accountStatus: 'enabled', billingEnabled: true, balance: '0.0000' });
  });

  it('sync deletes the users absent from the file; a file with no rows empties the directory', async () => {
    const t = await tenant();
    const stay = await createUser(app, t, { fullName: 'Stay' });
    const go = await createUser(app, t, { fullName: 'Go' });
    const res = await importCsv(app, t, line('Stay', stay.matricule, stay.identifiant) + '\n', 'mode=sync');
    expect(res.json).toMatchObject({ created: 0, updated: 0, deleted: 1, unchanged: 1 });
    expect((await call(app, 'GET', `/v1/users/${go.id}`, { key: t.adminKey })).status).toBe(404);
    const empty = await importCsv(app, t, '\r\n\r\n', 'mode=sync');
    expect(empty.json).toMatchObject({ deleted: 1, created: 0 });
    expect(await dumpDirectory(t.id)).toEqual([]);
  });

  it('dryRun answers the plan with matricules and writes nothing', async () => {
    const t = await tenant();
    const same = await createUser(app, t, { fullName: 'Same' });
    const edit = await createUser(app, t, { fullName: 'Edit' });
    const gone = await createUser(app, t, { fullName: 'Gone' });
    const add = person();
    const before = await dumpDirectory(t.id);
    const csv = [line('Same', same.matricule, same.identifiant), line('Edited', edit.matricule, edit.identifiant), line('Add', add.matricule, add.identifiant)].join('\n');
    const res = await importCsv(app, t, csv, 'mode=sync&dryRun=true');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      importId: null,
      dryRun: true,
      created: 1,
      updated: 1,
      deleted: 1,
      unchanged: 1,
      matricules: { created: [add.matricule], updated: [edit.matricule], deleted: [gone.matricule], unchanged: [same.matricule] },
      encoding: 'utf-8',
      notes: [],
    });
    expect(await dumpDirectory(t.id)).toEqual(before);
    expect(await importCount(t.id)).toBe(0);
  });

  it('lists every line error as { line, field, value, message } and writes nothing', async () => {
    const t = await tenant();
    const existing = await createUser(app, t);
    const before = await dumpDirectory(t.id);
    const ok = person();
    const csv = [
      line('Good', ok.matricule, ok.identifiant),
      line('', '1234', '12345678', ['not a number', '', '0612345678']),
      'Too,few,fields',
      line('Dup', ok.matricule, ok.identifiant),
      line('Takes identifiant', person().matricule, existing.identifiant),
      line('Options', person().matricule, person().identifiant, [], ['many', 'maybe', 'yes']),
      line('Extra', person().matricule, person().identifiant, [], ['1', 'enabled', '1', 'surplus']),
    ].join('\n');
    const res = await importCsv(app, t, csv, 'mode=upsert');
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('VALIDATION_FAILED');
    const details = res.json.error.details as { line: number; field: string; value?: string; message: string }[];
    const summary = details.map((d) => `${d.line}:${d.field}`);
    expect(summary).toEqual([
      '2:fullName',
      '2:matricule',
      '2:identifiant',
      '2:authorizedNumber1',
      '3:fieldCount',
      '4:matricule',
      '4:identifiant',
      '5:identifiant',
      '6:forfaitMinutes',
      '6:accountStatus',
      '6:billingEnabled',
      '7:fieldCount',
    ]);
    expect(details[3]).toMatchObject({ value: 'not a number', message: expect.any(String) });
    expect(details[5]!.message).toMatch(/line 1/);
    for (const d of details) expect(typeof d.message).toBe('string');
    expect(await dumpDirectory(t.id)).toEqual(before);
    expect(await importCount(t.id)).toBe(0);
  });

  it('reads ; files, a BOM, CRLF, quotes, accents and skips empty lines', async () => {
    const t = await tenant();
    const a = person();
    const b = person();
    const c = person();
    const csv =
      '\uFEFF' +
      [
        line('"Dupont; Jean ""le Grand"""', a.matricule, a.identifiant, ['06 12 34 56 78'], [], ';'),
        '',
        ';;;;;;;;;;;;',
        line('Éloïse Garçon-Müller', b.matricule, b.identifiant, ['+33 6 12 34 56 79'], ['5', 'DISABLED', '0'], ';'),
        line('"O\'Neill, Seán"', c.matricule, c.identifiant, [], [], ';'),
      ].join('\r\n') +
      '\r\n';
    const res = await importCsv(app, t, csv, 'mode=append');
    expect(res.status, res.text).toBe(200);
    expect(res.json.created).toBe(3);
    const names = (await dumpDirectory(t.id)).map((u) => u.fullName).sort();
    expect(names).toEqual(['Dupont; Jean "le Grand"', 'O\'Neill, Seán', 'Éloïse Garçon-Müller'].sort());
  });

  it('a file may swap identifiants between two users (checked as a final state)', async () => {
    const t = await tenant();
    const x = await createUser(app, t, { fullName: 'X' });
    const y = await createUser(app, t, { fullName: 'Y' });
    const res = await importCsv(app, t, [line('X', x.matricule, y.identifiant), line('Y', y.matricule, x.identifiant)].join('\n'), 'mode=upsert');
    expect(res.status, res.text).toBe(200);
    expect((await call(app, 'GET', `/v1/users/${x.id}`, { key: t.adminKey })).json.identifiant).toBe(y.identifiant);
    expect((await call(app, 'GET', `/v1/users/${y.id}`, { key: t.adminKey })).json.identifiant).toBe(x.identifiant);
  });

  it('LICENCE_LIMIT when the directory would exceed maxUsers; nothing written', async () => {
    const r = await resellerKey();
    const code = uniqueName('pt').toLowerCase();
    await call(app, 'POST', '/v1/product-types', { key: r.key, json: { code, name: code, maxUsers: 2, monthlyFeePerUser: '1.00' } });
    const t = await tenant({ productType: code });
    const u = await createUser(app, t);
    const before = await dumpDirectory(t.id);
    const res = await importCsv(app, t, [line('A', person().matricule, person().identifiant), line('B', person().matricule, person().identifiant)].join('\n'), 'mode=upsert');
    expect(res.status).toBe(409);
    expect(res.json.error.code).toBe('LICENCE_LIMIT');
    expect(await dumpDirectory(t.id)).toEqual(before);
    // a sync that replaces the one user by two stays within the limit
    const sync = await importCsv(app, t, [line('A', person().matricule, person().identifiant), line('B', person().matricule, person().identifiant)].join('\n'), 'mode=sync');
    expect(sync.status).toBe(200);
    expect((await call(app, 'GET', `/v1/users/${u.id}`, { key: t.adminKey })).status).toBe(404);
  });

  it('413 over the configured import size; 400 for a bad mode', async () => {
    const small = testApp({ importBodyLimit: 2000 });
    const t = await tenant();
    const big = Array.from({ length: 100 }, () => line('Someone', person().matricule, person().identifiant)).join('\n');
    const res = await call(small, 'POST', '/v1/users/import?mode=append', { key: t.adminKey, body: big, headers: { 'content-type': 'text/csv' } });
    expect(res.status).toBe(413);
    expect(res.json.error.code).toBe('PAYLOAD_TOO_LARGE');
    expect((await importCsv(app, t, '', 'mode=replace')).status).toBe(400);
    expect((await importCsv(app, t, '', '')).status).toBe(400);
    expect(await dumpDirectory(t.id)).toEqual([]);
  });
});

describe('comparison with the directory', () => {
  it('a line that only writes the same values differently is unchanged; a real change is found whatever the form', async () => {
    const t = await tenant();
    const a = await createUser(app, t, { fullName: 'Zoë Martin', authorizedNumbers: ['0612345678', null, '112'], forfaitMinutes: 30 });
    const b = await createUser(app, t, { fullName: 'Jean Roux', authorizedNumbers: ['+33612345679'], accountStatus: 'disabled' });
    const c = await createUser(app, t, { fullName: 'Léa Nguyen' });
    const before = await dumpDirectory(t.id);
    const same = [
      // national forms, spaces around cells, upper case, true/false: the same values
      line(' Zoë Martin ', a.matricule, ` ${a.identifiant}`, ['06 12 34 56 78', '', ' 112 '], [' 30 ', 'ENABLED', 'true'], ';'),
      line('Jean Roux', b.matricule, b.identifiant, ['0033612345679'], ['', 'Disabled'], ';'),
      line('Léa Nguyen', c.matricule, c.identifiant, [], [], ';'),
    ].join('\r\n');
    const unchanged = await importCsv(app, t, same, 'mode=sync&dryRun=true');
    expect(unchanged.json).toMatchObject({ created: 0, updated: 0, deleted: 0, unchanged: 3 });
    expect([...unchanged.json.matricules.unchanged].sort()).toEqual([a.matricule, b.matricule, c.matricule].sort());
    expect((await importCsv(app, t, same, 'mode=sync')).json).toMatchObject({ updated: 0, unchanged: 3 });
    expect(await dumpDirectory(t.id)).toEqual(before);

    const changed = [
      line('Zoë Martin', a.matricule, a.identifiant, ['0612345678', '07 81 23 45 67', '112'], ['30']),
      line('Jean Roux', b.matricule, b.identifiant, ['+33612345679'], ['', 'enabled']),
      line('Léa Nguyen', c.matricule, c.identifiant, [], ['7']),
    ].join('\n');
    const res = await importCsv(app, t, changed, 'mode=upsert&dryRun=true');
    expect(res.json).toMatchObject({ created: 0, updated: 3, unchanged: 0 });
    expect((await importCsv(app, t, changed, 'mode=upsert')).status).toBe(200);
    const after = await dumpDirectory(t.id);
    expect(after.find((u) => u.id === a.id)!.authorizedNumbers.slice(0, 3)).toEqual(['+33612345678', '+33781234567', '112']);
    expect(after.find((u) => u.id === b.id)!.accountStatus).toBe('enabled');
    expect(after.find((u) => u.id === c.id)!.forfaitMinutes).toBe(7);
  });

  it('lists the matricules of a plan with their leading zeros, and a bad number of a known user as a line error', async () => {
    const t = await tenant();
    const kept = await createUser(app, t, { fullName: 'Kept', matricule: `0000${person().matricule.slice(4)}` });
    const dry = await importCsv(app, t, line('Kept', kept.matricule, kept.identifiant), 'mode=sync&dryRun=true');
    expect(dry.json.matricules.unchanged).toEqual([kept.matricule]);
    const before = await dumpDirectory(t.id);
    const bad = await importCsv(app, t, line('Kept', kept.matricule, kept.identifiant, ['+33612345678', '07 12 34 56 78']), 'mode=sync');
    expect(bad.status).toBe(400);
    expect(bad.json.error.details).toEqual([{ line: 1, field: 'authorizedNumber2', value: '07 12 34 56 78', message: expect.any(String) }]);
    expect(await dumpDirectory(t.id)).toEqual(before);
  });
});

describe('users export', () => {
  it('export → sync import of that file changes nothing (national display, formula-like and quoted names)', async () => {
    const t = await tenant({ numberDisplay: 'national' });
    const names = ['=HYPERLINK("x")', '+Plus', '-Minus', '@At', 'Comma, Name', 'Quote "Q"', "Semi;colon O'Neill", 'Zoë Lefèvre'];
    for (const fullName of names) await createUser(app, t, { fullName, authorizedNumbers: ['0612345678', null, '+44 20 7946 0958', '112'], forfaitMinutes: 45 });
    await createUser(app, t, { fullName: 'Off', accountStatus: 'disabled', billingEnabled: false });
    const before = await dumpDirectory(t.id);
    const csv = await exported(t);
    expect(csv.split('\r\n').filter(Boolean)).toHaveLength(names.length + 1);
    expect(csv).toContain("'=HYPERLINK");
    expect(csv).toContain('06 12 34 56 78');
    const res = await importCsv(app, t, csv, 'mode=sync');
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ created: 0, updated: 0, deleted: 0, unchanged: names.length + 1 });
    expect(await dumpDirectory(t.id)).toEqual(before);

    const portal = await exported(t, '?format=portal');
    for (const l of portal.split('\r\n').filter(Boolean)) expect(l.startsWith('"') || l.split(',').length === 13).toBe(true);
    const again = await importCsv(app, t, portal, 'mode=sync');
    expect(again.json.unchanged).toBe(names.length + 1);
    expect(await dumpDirectory(t.id)).toEqual(before);
  });
});

describe('restore', () => {
  it('puts the directory back exactly as before the import: ids, fields and balances', async () => {
    const t = await tenant();
    const same = await createUser(app, t, { fullName: 'Same', authorizedNumbers: ['0612345678'] });
    const edit = await createUser(app, t, { fullName: 'Edit', generalState: 'absent', forfaitMinutes: 10 });
    const gone = await createUser(app, t, { fullName: 'Gone', authorizedNumbers: { '4': '0612345679' } });
    await call(app, 'POST', `/v1/users/${gone.id}/ledger`, { key: t.adminKey, json: { kind: 'topup', amount: '12.34', idempotencyKey: 'g' } });
    await call(app, 'POST', `/v1/users/${edit.id}/ledger`, { key: t.adminKey, json: { kind: 'topup', amount: '1', idempotencyKey: 'e' } });
    const before = await dumpDirectory(t.id);

    const add = person();
    const csv = [line('Same', same.matricule, same.identifiant, ['0612345678']), line('Edited', edit.matricule, gone.identifiant, [], ['99', 'disabled', '0']), line('Added', add.matricule, add.identifiant)].join('\n');
    const imported = await importCsv(app, t, csv, 'mode=sync');
    expect(imported.json).toMatchObject({ created: 1, updated: 1, deleted: 1, unchanged: 1 });
    // money moves after the import are kept by the restore
    const added = (await call(app, 'GET', '/v1/users?q=Added', { key: t.adminKey })).json.items[0];
    await call(app, 'POST', `/v1/users/${added.id}/ledger`, { key: t.adminKey, json: { kind: 'topup', amount: '5', idempotencyKey: 'a' } });
    await call(app, 'POST', `/v1/users/${edit.id}/ledger`, { key: t.adminKey, json: { kind: 'adjustment', amount: '-0.5', idempotencyKey: 'e2' } });

    const restored = await call(app, 'POST', `/v1/users/imports/${imported.json.importId}/restore`, { key: t.adminKey });
    expect(restored.status, restored.text).toBe(200);
    expect(restored.json).toMatchObject({ importId: imported.json.importId, deleted: 1, restored: 1, recreated: 1 });
    const after = await dumpDirectory(t.id);
    const editBefore = before.find((u) => u.id === edit.id)!;
    expect(after).toEqual(before.map((u) => (u.id === edit.id ? { ...editBefore, balance: '0.5000' } : u)));
    expect(after.find((u) => u.id === gone.id)!.balance).toBe('12.3400');
    const history = await call(app, 'GET', `/v1/users/${gone.id}/ledger`, { key: t.adminKey });
    expect(history.json.items).toHaveLength(1);

    const twice = await call(app, 'POST', `/v1/users/imports/${imported.json.importId}/restore`, { key: t.adminKey });
    expect(twice.status).toBe(409);
    const imports = await call(app, 'GET', '/v1/users/imports', { key: t.adminKey });
    expect(imports.json.items[0]).toMatchObject({ id: imported.json.importId, mode: 'sync', created: 1, updated: 1, deleted: 1, unchanged: 1 });
    expect(imports.json.items[0].restoredAt).not.toBeNull();
  });

  it('writes names exactly whatever their quotes, backslashes, braces or commas (created and updated)', async () => {
    const t = await tenant();
    const known = await createUser(app, t, { fullName: 'Known' });
    const fresh = person();
    const names = ['A "quoted" \\ back\\slash', 'NULL', '{brace}, comma'];
    const csvName = (n: string) => `"${n.replaceAll('"', '""')}"`;
    const csv = [
      [csvName(names[0]!), known.matricule, known.identifiant, '0612345678', ...Array<string>(9).fill('')].join(','),
      [csvName(names[1]!), fresh.matricule, fresh.identifiant, ...Array<string>(10).fill('')].join(','),
      [csvName(names[2]!), person().matricule, person().identifiant, ...Array<string>(10).fill('')].join(','),
    ].join('\n');
    const res = await importCsv(app, t, csv, 'mode=sync');
    expect(res.json).toMatchObject({ created: 2, updated: 1 });
    const after = await dumpDirectory(t.id);
    expect(after.map((u) => u.fullName).sort()).toEqual([...names].sort());
    expect(after.find((u) => u.id === known.id)!.authorizedNumbers[0]).toBe('+33612345678');
  });

  it('keeps before-images as one row of arrays per statement, and still restores imports stored one row per user', async () => {
    const { sql } = testDb();
    const t = await tenant();
    const edit = await createUser(app, t, { fullName: 'Édith "E"', generalState: 'absent', authorizedNumbers: { '2': '0612345678', '10': '0612345679' } });
    const _gone = await createUser(app, t, { fullName: 'Gone\\tab', forfaitMinutes: 7 });
    const before = await dumpDirectory(t.id);
    const csv = [line('Edited', edit.matricule, edit.identifiant, ['0612345670'])].join('\n');

    const batched = await importCsv(app, t, csv, 'mode=sync');
    expect(batched.json).toMatchObject({ updated: 1, deleted: 1 });
    const rows = await sql<{ n: number; users: number }[]>`
      SELECT count(*)::int AS n, sum(cardinality(ids))::int AS users FROM import_snapshot_batches
      WHERE tenant_id = ${t.id} AND import_id = ${batched.json.importId}`;
    expect(rows[0]).toEqual({ n: 2, users: 2 }); // the DELETE's and the UPDATE's
    expect((await call(app, 'POST', `/v1/users/imports/${batched.json.importId}/restore`, { key: t.adminKey })).status).toBe(200);
    expect(await dumpDirectory(t.id)).toEqual(before);

    // an import written before migration 0011: its before-images one row per user
    const legacy = await importCsv(app, t, csv, 'mode=sync');
    await sql`
      INSERT INTO import_snapshot_users (tenant_id, import_id, id, full_name, matricule, identifiant, general_state, account_status,
             forfait_minutes, forfait_period, used_seconds, total_call_seconds, billing_enabled, authorized_numbers, created_at)
      SELECT x.tenant_id, x.import_id, b.id, b.full_name, b.matricule, b.identifiant, b.general_state, b.account_status,
             b.forfait_minutes, b.forfait_period, b.used_seconds, b.total_call_seconds, b.billing_enabled, b.numbers::text[], b.created_at
      FROM import_snapshot_batches x
      CROSS JOIN LATERAL unnest(x.ids, x.full_names, x.matricules, x.identifiants, x.general_states, x.account_statuses, x.forfait_minutes,
                                x.forfait_periods, x.used_seconds, x.total_call_seconds, x.billing_enabled, x.authorized_numbers, x.created_ats)
           AS b(id, full_name, matricule, identifiant, general_state, account_status, forfait_minutes, forfait_period, used_seconds,
                total_call_seconds, billing_enabled, numbers, created_at)
      WHERE x.tenant_id = ${t.id} AND x.import_id = ${legacy.json.importId}`;
    await sql`DELETE FROM import_snapshot_batches WHERE tenant_id = ${t.id} AND import_id = ${legacy.json.importId}`;
    const restored = await call(app, 'POST', `/v1/users/imports/${legacy.json.importId}/restore`, { key: t.adminKey });
    expect(restored.json).toMatchObject({ restored: 1, recreated: 1 });
    expect(await dumpDirectory(t.id)).toEqual(before);
  });

  it('restores each mode; imports are undone newest first', async () => {
    const t = await tenant();
    const empty = await dumpDirectory(t.id);
    const a = person();
    const b = person();
    const first = await importCsv(app, t, line('A', a.matricule, a.identifiant), 'mode=append');
    const afterFirst = await dumpDirectory(t.id);
    const second = await importCsv(app, t, [line('A2', a.matricule, a.identifiant), line('B', b.matricule, b.identifiant)].join('\n'), 'mode=upsert');
    const afterSecond = await dumpDirectory(t.id);
    const third = await importCsv(app, t, line('B', b.matricule, b.identifiant), 'mode=sync');

    const early = await call(app, 'POST', `/v1/users/imports/${first.json.importId}/restore`, { key: t.adminKey });
    expect(early.status).toBe(409);
    expect(early.json.error.message).toMatch(/newest first/);

    expect((await call(app, 'POST', `/v1/users/imports/${third.json.importId}/restore`, { key: t.adminKey })).status).toBe(200);
    expect(await dumpDirectory(t.id)).toEqual(afterSecond);
    expect((await call(app, 'POST', `/v1/users/imports/${second.json.importId}/restore`, { key: t.adminKey })).status).toBe(200);
    expect(await dumpDirectory(t.id)).toEqual(afterFirst);
    expect((await call(app, 'POST', `/v1/users/imports/${first.json.importId}/restore`, { key: t.adminKey })).status).toBe(200);
    expect(await dumpDirectory(t.id)).toEqual(empty);
    expect((await call(app, 'POST', '/v1/users/imports/00000000-0000-4000-8000-000000000000/restore', { key: t.adminKey })).status).toBe(404);
    expect((await call(app, 'POST', '/v1/users/imports/nope/restore', { key: t.adminKey })).status).toBe(404);
  });

  it('refuses (409, nothing written) when a removed user’s matricule was taken since', async () => {
    const t = await tenant();
    const gone = await createUser(app, t, { fullName: 'Gone' });
    const imported = await importCsv(app, t, '', 'mode=sync');
    await createUser(app, t, { fullName: 'Newcomer', matricule: gone.matricule });
    const before = await dumpDirectory(t.id);
    const res = await call(app, 'POST', `/v1/users/imports/${imported.json.importId}/restore`, { key: t.adminKey });
    expect(res.status).toBe(409);
    expect(await dumpDirectory(t.id)).toEqual(before);
  });
});
