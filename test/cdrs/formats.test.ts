import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { call, testApp, testDb } from '../support/app.js';
import { account, cdrCount, cdrTenant, cdrUser } from './helpers.js';

const app = testApp();
const fixture = (name: string) => readFile(path.join(import.meta.dirname, '../fixtures/cdrs', name), 'utf8');

async function importCsv(key: string, format: string, body: string) {
  return call(app, 'POST', `/v1/cdrs/import?format=${format}`, { key, body, headers: { 'content-type': 'text/csv' } });
}

async function byCallId(key: string): Promise<Record<string, Record<string, unknown>>> {
  const items = (await call(app, 'GET', '/v1/cdrs?limit=100', { key })).json.items as { callId: string }[];
  return Object.fromEntries(items.map((c) => [c.callId, c]));
}

describe('CDR CSV formats (SPEC §6)', () => {
  it('Asterisk Master.csv: cdr_csv columns, local times, dispositions, a row hash when uniqueid is not logged', async () => {
    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '10', identifiant: '5550001' });
    const csv = await fixture('asterisk-Master.csv');
    const res = await importCsv(t.adminKey, 'asterisk', csv);
    expect(res.status, res.text).toBe(200);
    expect(res.json.accepted).toBe(5);
    expect(res.json.rejected).toEqual([
      { line: 5, callId: '1762169400.9', reason: 'UNKNOWN_USER', field: 'identifiant', message: expect.any(String) },
      { line: 6, callId: '1762171200.11', reason: 'MALFORMED', field: 'startedAt', message: expect.any(String) },
    ]);
    const cdrs = await byCallId(t.adminKey);
    expect(cdrs['1762161300.1']).toMatchObject({
      identifiant: '5550001', caller: '1001', callee: '+33612345678', startedAt: '2026-11-03T10:15:00+01:00',
      answeredAt: '2026-11-03T10:15:04+01:00', durationSeconds: 85, disposition: 'answered', cost: '0.6417', userId: u.id,
    });
    expect(cdrs['1762164000.3']).toMatchObject({ disposition: 'no_answer', answeredAt: null, cost: '0.0000' });
    expect(cdrs['1762164300.5']).toMatchObject({ disposition: 'busy', cost: '0.0000' });
    expect(cdrs['1762174800.13']).toMatchObject({ disposition: 'failed' });
    const hashed = Object.keys(cdrs).filter((id) => id.startsWith('ast-'));
    expect(hashed).toHaveLength(1);
    expect(cdrs[hashed[0]!]).toMatchObject({ cost: '0.6000', durationSeconds: 20 });
    expect((await account(t.id, u.id)).balance).toBe('8.7583');

    // the same file again: nothing rated twice (the hashed row too), rejects not stored twice
    const again = await importCsv(t.adminKey, 'asterisk', csv);
    expect(again.json).toMatchObject({ accepted: 0, duplicates: 5, rejectedCount: 2 });
    expect(await cdrCount(t.id)).toBe(5);
    expect((await account(t.id, u.id)).balance).toBe('8.7583');
    const { sql } = testDb();
    const rejects = await sql<{ reason: string; raw: string; source: string }[]>`SELECT reason, raw, source FROM rejected_cdrs WHERE tenant_id = ${t.id} ORDER BY id`;
    // two lanes write concurrently: the rows' order is not the file's
    expect(rejects.map((r) => r.reason).sort()).toEqual(['MALFORMED', 'UNKNOWN_USER']);
    const unknown = rejects.find((r) => r.reason === 'UNKNOWN_USER')!;
    expect(unknown.raw).toBe(csv.split('\n')[4]);
    expect(unknown.source).toBe('import:asterisk');
  });

  it('FreeSWITCH mod_cdr_csv default template: dispositions from the hangup cause', async () => {
    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '10', identifiant: '5550001' });
    const res = await importCsv(t.adminKey, 'freeswitch', await fixture('freeswitch-Master.csv'));
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ accepted: 7, duplicates: 0, rejectedCount: 1, rejected: [{ line: 8, reason: 'MALFORMED', field: 'row' }] });
    const cdrs = await byCallId(t.adminKey);
    const id = (n: number) => `0b8c6c2e-6e7e-4a8b-9f4e-1f1d0c9a000${n}`;
    expect(cdrs[id(1)]).toMatchObject({ disposition: 'answered', cost: '0.6417', caller: '1001', startedAt: '2026-11-03T10:15:00+01:00' });
    expect(cdrs[id(2)]!.disposition).toBe('no_answer');
    expect(cdrs[id(3)]!.disposition).toBe('busy');
    expect(cdrs[id(4)]!.disposition).toBe('no_answer');
    expect(cdrs[id(5)]!.disposition).toBe('failed'); // NORMAL_CLEARING with billsec 0
    expect(cdrs[id(6)]).toMatchObject({ disposition: 'answered', cost: '0.6000' });
    expect(cdrs[id(7)]!.disposition).toBe('failed');
    expect((await account(t.id, u.id)).balance).toBe('8.7583');
  });

  it('native: BOM, `;` separator, CRLF, quoted cells, local times; bad lines are rejected by line number', async () => {
    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '10', identifiant: '5550001' });
    const res = await importCsv(t.adminKey, 'native', await fixture('native.csv'));
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({
      accepted: 3,
      rejected: [
        { line: 5, callId: 'n-4', reason: 'MALFORMED', field: 'durationSeconds' },
        { line: 7, callId: null, reason: 'MALFORMED', field: 'row' },
      ],
    });
    const cdrs = await byCallId(t.adminKey);
    expect(cdrs['n-1']).toMatchObject({ site: 'Paris; siège', line: 'L1', cost: '0.6417' });
    expect(cdrs['n-2']).toMatchObject({ startedAt: '2026-11-03T11:00:00+01:00', billableSeconds: 48, cost: '0.0400' });
    expect(cdrs['n-3']).toMatchObject({ direction: 'in', identifiant: null, cost: '0.0000', startedAt: '2026-11-03T13:00:00+01:00' });
    expect((await account(t.id, u.id)).balance).toBe('9.3183');
  });

  it('refuses a native file with a wrong header (400, line 1) and writes nothing', async () => {
    const t = await cdrTenant(app);
    await cdrUser(t.id, { balance: '10', identifiant: '5550001' });
    const res = await importCsv(t.adminKey, 'native', 'id,who,callee\nx,5550001,0612345678\n');
    expect(res.status).toBe(400);
    expect(res.json.error.details[0]).toMatchObject({ line: 1, field: 'header' });
    expect(await cdrCount(t.id)).toBe(0);
    expect((await importCsv(t.adminKey, 'csv', 'x')).status).toBe(400);
  });
});
