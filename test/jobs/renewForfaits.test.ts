import { describe, expect, it } from 'vitest';
import { periodOf } from '../../engine/periods.js';
import { renewForfaits } from '../../jobs/renewForfaits.js';
import { testApp, testDb } from '../support/app.js';
import { newTenant } from '../support/factory.js';

const app = testApp();

describe('forfait renewal at each tenant’s month start', () => {
  it('computes the period in the tenant’s zone', () => {
    const instant = new Date('2026-10-31T23:30:00Z');
    expect(periodOf(instant, 'Europe/Paris')).toBe('2026-11');
    expect(periodOf(instant, 'America/New_York')).toBe('2026-10');
  });

  it('resets usedSeconds once per period, per tenant zone', async () => {
    const { db } = testDb();
    const paris = await newTenant(app);
    const ny = await newTenant(app, { country: 'US', timezone: 'America/New_York' });
    const mk = (tenantId: string, n: string) =>
      db
        .insertInto('users')
        .values({ tenantId, fullName: `U ${n}`, matricule: `0000000000000${n}`, identifiant: `000000${n}`, forfaitMinutes: 60, usedSeconds: 1200, forfaitPeriod: '2026-10', balance: '0' })
        .returning('id')
        .executeTakeFirstOrThrow();
    const u1 = await mk(paris.id, '1');
    const u2 = await mk(ny.id, '2');
    // 23:30 UTC on Oct 31: already November in Paris, still October in New York
    await renewForfaits(db, new Date('2026-10-31T23:30:00Z'));
    const used = async (tenantId: string, id: string) =>
      (await db.selectFrom('users').select(['usedSeconds', 'forfaitPeriod']).where('tenantId', '=', tenantId).where('id', '=', id).executeTakeFirstOrThrow());
    expect(await used(paris.id, u1.id)).toEqual({ usedSeconds: 0, forfaitPeriod: '2026-11' });
    expect(await used(ny.id, u2.id)).toEqual({ usedSeconds: 1200, forfaitPeriod: '2026-10' });
    // seconds used after the renewal are not reset again in the same period
    await db.updateTable('users').set({ usedSeconds: 300 }).where('tenantId', '=', paris.id).execute();
    await renewForfaits(db, new Date('2026-11-15T12:00:00Z'));
    expect(await used(paris.id, u1.id)).toEqual({ usedSeconds: 300, forfaitPeriod: '2026-11' });
    expect(await used(ny.id, u2.id)).toEqual({ usedSeconds: 0, forfaitPeriod: '2026-11' });
  });
});
