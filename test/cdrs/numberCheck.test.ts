import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { call, testApp, testDb } from '../support/app.js';
import { newTenant, resellerKey } from '../support/factory.js';
import { newTariff, newUser, pbxKey } from '../support/accounts.js';
import { account } from './helpers.js';

const app = testApp();
const fixture = (name: string) => readFile(path.join(import.meta.dirname, '../fixtures/files', name), 'utf8');

/** A French tenant rating metropolitan mobiles (33 6, 33 7) and Réunion (262). */
async function setup() {
  const r = await resellerKey();
  const tariffId = await newTariff(app, r.key, [
    '336,France mobile,mobile,0.20,0,60,1,false,,',
    '337,France mobile 7,mobile,0.30,0,60,1,false,,',
    '262,Réunion,international,0.60,0,60,1,false,,',
  ]);
  const t = await newTenant(app, { tariffId, country: 'FR', timezone: 'Europe/Paris' });
  return { t };
}

async function unknownRangeMetric(): Promise<Record<string, number>> {
  const res = await call(app, 'GET', '/metrics');
  const out: Record<string, number> = {};
  for (const m of res.text.matchAll(/^forfait_unknown_range_numbers_total\{path="(\w+)"\} (\d+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

describe('calls outside the ranges the metadata knows are rated, flagged, counted (issue 18)', () => {
  it('a Master.csv whose callee is in an unallocated range: rated by longest prefix, numberCheck on the CDR, a line in the answer, a metric', async () => {
    const { t } = await setup();
    const u = await newUser(t.id, { balance: '10', identifiant: '5550001' });
    const before = (await unknownRangeMetric()).cdrs ?? 0;
    const res = await call(app, 'POST', '/v1/cdrs/import?format=asterisk', { key: t.adminKey, body: await fixture('Master-unallocated.csv'), headers: { 'content-type': 'text/csv' } });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ accepted: 3, rejectedCount: 0, unknownRangeCount: 1 });
    expect(res.json.unknownRange).toEqual([
      { line: 1, callId: '1762161300.21', callee: '+33712345678', message: expect.stringContaining('outside the number ranges known') },
    ]);
    const items = (await call(app, 'GET', '/v1/cdrs?limit=10', { key: t.adminKey })).json.items as Record<string, unknown>[];
    const byId = Object.fromEntries(items.map((c) => [c.callId, c]));
    // 85 s at 0.30 per minute, 60/1 → 0.4250
    expect(byId['1762161300.21']).toMatchObject({ callee: '+33712345678', destination: 'France mobile 7', cost: '0.4250', numberCheck: 'unknown_range' });
    // Réunion, from its national form: 28 s → a 60 s first increment at 0.60; 20 s at 0.20 → 0.2000
    expect(byId['1762164000.23']).toMatchObject({ callee: '+262692360958', destination: 'Réunion', cost: '0.6000', numberCheck: null });
    expect(byId['1762167600.25']).toMatchObject({ callee: '+33612345678', numberCheck: null });
    expect((await account(t.id, u.id)).balance).toBe('8.7750');
    const { sql } = testDb();
    const [row] = await sql<{ n: string }[]>`SELECT count(*)::text AS n FROM cdrs WHERE tenant_id = ${t.id} AND number_check = 'unknown_range'`;
    expect(row!.n).toBe('1');
    expect((await unknownRangeMetric()).cdrs).toBe(before + 1);
  });

  it('the JSON API lists it by index; a number of an impossible length is still MALFORMED', async () => {
    const { t } = await setup();
    await newUser(t.id, { balance: '10', identifiant: '5550002' });
    const cdrs = [
      { callId: 'nc-1', identifiant: '5550002', callee: '07 12 34 56 78', startedAt: '2026-11-03T10:00:00+01:00', durationSeconds: 60 },
      { callId: 'nc-2', identifiant: '5550002', callee: '07 12 34', startedAt: '2026-11-03T10:00:00+01:00', durationSeconds: 60 },
    ];
    const res = await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json: cdrs });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ accepted: 1, unknownRangeCount: 1, unknownRange: [{ index: 0, callId: 'nc-1', callee: '+33712345678' }] });
    expect(res.json.rejected).toEqual([{ index: 1, callId: 'nc-2', reason: 'MALFORMED', field: 'callee', message: expect.any(String) }]);
  });

  it('an authorization to an unallocated range is decided like any other, and counted', async () => {
    const { t } = await setup();
    const pbx = await pbxKey(app, t);
    // written straight to the database (the directory refuses an unallocated range): a number stored before the metadata changed
    const u = await newUser(t.id, { balance: '10', numbers: { 1: '+33712345678', 2: '+262692360958' } }, app);
    const before = (await unknownRangeMetric()).authorize ?? 0;
    const res = await call(app, 'POST', '/v1/authorize', { key: pbx, json: { identifiant: u.identifiant, callee: '07 12 34 56 78' } });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ decision: 'allow', callee: '+33712345678', destination: 'France mobile 7' });
    // another user: the first call holds the first one's whole balance
    const v = await newUser(t.id, { balance: '10', numbers: { 1: '+262692360958' } }, app);
    const reunion = await call(app, 'POST', '/v1/authorize', { key: pbx, json: { identifiant: v.identifiant, callee: '0692 36 09 58' } });
    expect(reunion.json).toMatchObject({ decision: 'allow', callee: '+262692360958', destination: 'Réunion' });
    expect((await unknownRangeMetric()).authorize).toBe(before + 1);
  });
});

describe('Saint-Pierre-et-Miquelon, dialled 05 08 + its 6 digits, is +508 in calls as in the directory (issue 18)', () => {
  it('a French tenant’s CDR and authorization to 05 08 41 12 34 are +508 41 12 34, rated on 508; a tenant in SPM reaches Paris as +33', async () => {
    const r = await resellerKey();
    const tariffId = await newTariff(app, r.key, ['33,France,fixed,0.02,0,60,60,false,,', '508,Saint-Pierre-et-Miquelon,international,0.90,0,60,60,false,,']);
    const fr = await newTenant(app, { tariffId, country: 'FR', timezone: 'Europe/Paris' });
    const u = await newUser(fr.id, { balance: '10', numbers: { 1: '+508411234' } }, app);
    const cdr = await call(app, 'POST', '/v1/cdrs', {
      key: fr.adminKey,
      json: [{ callId: 'spm-1', identifiant: u.identifiant, callee: '05 08 41 12 34', startedAt: '2026-11-03T10:00:00+01:00', durationSeconds: 60 }],
    });
    expect(cdr.json).toMatchObject({ accepted: 1, rejectedCount: 0, unknownRangeCount: 0 });
    const items = (await call(app, 'GET', `/v1/cdrs?userId=${u.id}&from=2026-11-01&to=2026-12-01`, { key: fr.adminKey })).json.items;
    expect(items).toEqual([expect.objectContaining({ callee: '+508411234', destination: 'Saint-Pierre-et-Miquelon', cost: '0.9000' })]);
    const pbx = await pbxKey(app, fr);
    const auth = await call(app, 'POST', '/v1/authorize', { key: pbx, json: { identifiant: u.identifiant, callee: '0508411234' } });
    // the user's authorized number, stored +508411234, is the number dialled
    expect(auth.json).toMatchObject({ decision: 'allow', callee: '+508411234', destination: 'Saint-Pierre-et-Miquelon' });

    const pm = await newTenant(app, { tariffId, country: 'PM', timezone: 'America/Miquelon' });
    const v = await newUser(pm.id, { balance: '10', numbers: { 1: '+33123456789' } }, app);
    const paris = await call(app, 'POST', '/v1/authorize', { key: await pbxKey(app, pm), json: { identifiant: v.identifiant, callee: '01 23 45 67 89' } });
    expect(paris.json).toMatchObject({ decision: 'allow', callee: '+33123456789', destination: 'France' });
  });
});
