import { describe, expect, it } from 'vitest';
import { renewForfaits } from '../../jobs/renewForfaits.js';
import { rerate } from '../../services/cdrs/rerate.js';
import { TariffIndexCache } from '../../services/tariffs/tariffs.js';
import { call, testApp, testDb } from '../support/app.js';
import { account, cdr, cdrTenant, cdrUser, putTariff, TARIFF_CSV } from '../cdrs/helpers.js';

/**
 * Issue 17, point 1: a CDR spends the forfait of the tenant-local month its
 * call started in. The user's counter (usedSeconds) stays December's; the clock
 * is never read: every date is given.
 */
const app = testApp();
const { db } = testDb();
const FIXED = '0142000000'; // 0.06 per minute, 60/60, forfait-eligible

async function usage(tenantId: string, userId: string): Promise<Record<string, number>> {
  const rows = await db.selectFrom('forfaitUsage').select(['period', 'usedSeconds']).where('tenantId', '=', tenantId).where('userId', '=', userId).execute();
  return Object.fromEntries(rows.map((r) => [r.period, r.usedSeconds]));
}

async function rated(key: string, callId: string) {
  const items = (await call(app, 'GET', '/v1/cdrs?limit=100', { key })).json.items as { callId: string; forfaitSeconds: number; chargedSeconds: number; cost: string }[];
  return items.find((c) => c.callId === callId)!;
}

describe('forfait per period (issue 17)', () => {
  it('a late CDR uses what was left of its own month’s forfait, never the current month’s', async () => {
    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '10', forfaitMinutes: 2 });
    await db.updateTable('users').set({ forfaitPeriod: '2026-12' }).where('id', '=', u.id).execute();
    // October's forfait (2 min) is spent in October
    await db.insertInto('forfaitUsage').values({ tenantId: t.id, userId: u.id, period: '2026-10', usedSeconds: 120 }).execute();

    const res = await call(app, 'POST', '/v1/cdrs', {
      key: t.adminKey,
      json: [
        cdr('dec', u.identifiant, FIXED, 60, '2026-12-01T09:00:00+01:00'),
        // arrives in December, started on 31 October at 23:30 Paris time (22:30 UTC): October's
        cdr('oct-late', u.identifiant, FIXED, 60, '2026-10-31T23:30:00+01:00'),
        // November had nothing used: its whole forfait is there
        cdr('nov-late', u.identifiant, FIXED, 90, '2026-11-30T23:59:00+01:00'),
      ],
    });
    expect(res.status, res.text).toBe(200);
    expect(await rated(t.adminKey, 'dec')).toMatchObject({ forfaitSeconds: 60, chargedSeconds: 0, cost: '0.0000' });
    expect(await rated(t.adminKey, 'oct-late')).toMatchObject({ forfaitSeconds: 0, chargedSeconds: 60, cost: '0.0600' });
    expect(await rated(t.adminKey, 'nov-late')).toMatchObject({ forfaitSeconds: 120, chargedSeconds: 0, cost: '0.0000' });

    // the counter authorization reads is December's alone
    const a = await account(t.id, u.id);
    expect(a.usedSeconds).toBe(60);
    expect(a.balance).toBe('9.9400');
    expect(await usage(t.id, u.id)).toEqual({ '2026-10': 120, '2026-11': 120, '2026-12': 60 });

    // December closes: its figure is kept, January starts from what its early CDRs used
    await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json: [cdr('jan-early', u.identifiant, FIXED, 30, '2027-01-01T00:10:00+01:00')] });
    expect(await rated(t.adminKey, 'jan-early')).toMatchObject({ forfaitSeconds: 60, cost: '0.0000' });
    expect((await account(t.id, u.id)).usedSeconds).toBe(60); // still December's counter
    await renewForfaits(db, new Date('2027-01-01T05:00:00Z'));
    const renewed = await db.selectFrom('users').select(['usedSeconds', 'forfaitPeriod']).where('id', '=', u.id).executeTakeFirstOrThrow();
    expect(renewed).toEqual({ usedSeconds: 60, forfaitPeriod: '2027-01' });
    expect(await usage(t.id, u.id)).toEqual({ '2026-10': 120, '2026-11': 120, '2026-12': 60, '2027-01': 60 });

    // a late December CDR now spends what December left (60 s), not January's
    await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json: [cdr('dec-late', u.identifiant, FIXED, 120, '2026-12-31T22:00:00+01:00')] });
    expect(await rated(t.adminKey, 'dec-late')).toMatchObject({ forfaitSeconds: 60, chargedSeconds: 60, cost: '0.0600' });
    expect((await account(t.id, u.id)).usedSeconds).toBe(60);
    expect((await usage(t.id, u.id))['2026-12']).toBe(120);
  });

  it('rerating recomputes within each CDR’s own month', async () => {
    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '10', forfaitMinutes: 1 });
    await db.updateTable('users').set({ forfaitPeriod: '2026-12' }).where('id', '=', u.id).execute();
    // an October mobile call (not forfait-eligible), October's forfait untouched
    const res = await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json: [cdr('oct-mob', u.identifiant, '0612345678', 60, '2026-10-10T10:00:00+02:00')] });
    expect(res.status).toBe(200);
    expect(await rated(t.adminKey, 'oct-mob')).toMatchObject({ forfaitSeconds: 0, cost: '0.6000' });
    // the new tariff makes mobiles forfait-eligible: the October call takes October's unused minute
    await putTariff(app, TARIFF_CSV.replace('336,France mobile,mobile,0.20,0.40,60,1,false', '336,France mobile,mobile,0.20,0.40,60,1,true'), t.tariffId);
    const r = await rerate({ db, sql: testDb().sql, tariffs: new TariffIndexCache(db) }, t.id, { from: '2026-10', to: '2026-11' }, 'test', { now: new Date('2026-12-02T10:00:00Z') });
    expect(r.adjusted).toBe(1);
    expect(await rated(t.adminKey, 'oct-mob')).toMatchObject({ forfaitSeconds: 60, chargedSeconds: 0, cost: '0.0000' });
    expect(await usage(t.id, u.id)).toEqual({ '2026-10': 60 });
    expect((await account(t.id, u.id)).usedSeconds).toBe(0); // December's counter did not move
  });
});
