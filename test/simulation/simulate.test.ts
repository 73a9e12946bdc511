import { describe, expect, it } from 'vitest';
import { call, testApp, testDb } from '../support/app.js';
import { keyWithRoles, newTenant, resellerKey } from '../support/factory.js';
import { cdrTenant, putTariff, TARIFF_CSV } from '../cdrs/helpers.js';
import { DRAFT, seedCalls } from './helpers.js';

const app = testApp();
const PERIOD = { from: '2026-10-01', to: '2026-12-01' };

/** A fingerprint of everything a simulation could touch of a tenant. */
async function fingerprint(tenantId: string) {
  const { sql } = testDb();
  const [row] = await sql<{ f: string }[]>`
    SELECT md5(concat_ws('|',
      (SELECT count(*) || ':' || md5(string_agg(c::text, ',' ORDER BY c.id)) FROM cdrs c WHERE c.tenant_id = ${tenantId}),
      (SELECT count(*) || ':' || md5(string_agg(l::text, ',' ORDER BY l.id)) FROM ledger_entries l WHERE l.tenant_id = ${tenantId}),
      (SELECT count(*) || ':' || md5(string_agg(f::text, ',' ORDER BY f.user_id, f.period)) FROM forfait_usage f WHERE f.tenant_id = ${tenantId}),
      (SELECT count(*) || ':' || md5(string_agg(u::text, ',' ORDER BY u.id)) FROM users u WHERE u.tenant_id = ${tenantId}),
      (SELECT md5(string_agg(d::text, ',' ORDER BY d::text)) FROM indicator_days d WHERE d.tenant_id = ${tenantId}))) AS f`;
  return row!.f;
}

/** Each user's cost and billable seconds of the period as stored. */
async function storedByUser(tenantId: string) {
  const { sql } = testDb();
  const rows = await sql<{ userId: string; cost: string; billable: string }[]>`
    SELECT user_id AS "userId", sum(cost)::numeric(20,4)::text AS cost, sum(billable_seconds)::text AS billable
      FROM cdrs WHERE tenant_id = ${tenantId} AND direction = 'out' AND started_at >= '2026-09-30T22:00:00Z' AND started_at < '2026-11-30T23:00:00Z'
     GROUP BY user_id`;
  return new Map(rows.map((r) => [r.userId, r]));
}

function csvLines(text: string): string[][] {
  return text.trim().split('\n').map((l) => l.split(','));
}

describe('POST /v1/tariffs/{id}/simulate', () => {
  it('the current tariff changes nothing on any tenant, and nothing is written', async () => {
    const tariff = await putTariff(app, TARIFF_CSV);
    const a = await newTenant(app, { tariffId: tariff.id, country: 'FR', timezone: 'Europe/Paris' });
    const b = await newTenant(app, { tariffId: tariff.id, country: 'FR', timezone: 'America/Martinique' });
    await seedCalls(app, a);
    await seedCalls(app, b);
    const before = [await fingerprint(a.id), await fingerprint(b.id)];
    const res = await call(app, 'POST', `/v1/tariffs/${tariff.id}/simulate`, { key: tariff.resellerKey, json: PERIOD });
    expect(res.status, res.text).toBe(200);
    const r = res.json.result;
    expect(r.tenants.map((t: { tenantId: string }) => t.tenantId).sort()).toEqual([a.id, b.id].sort());
    for (const t of r.tenants) {
      expect(t).toMatchObject({ calls: 13, difference: '0.0000', differencePercent: '0.00', changed: 0, skipped: 0, topUsers: [], destinations: { gains: [], losses: [] } });
      expect(t.simulatedCost).toBe(t.currentCost);
    }
    expect(r.total).toMatchObject({ calls: 26, difference: '0.0000', changed: 0 });
    expect([await fingerprint(a.id), await fingerprint(b.id)]).toEqual(before);
  });

  it('a changed tariff gives, to the cent, what a rerate then writes', async () => {
    const t = await cdrTenant(app);
    const { u1, u2, u3 } = await seedCalls(app, t);
    const before = await fingerprint(t.id);
    const current = await storedByUser(t.id);

    const sim = await call(app, 'POST', `/v1/tariffs/${t.tariffId}/simulate`, { key: t.resellerKey, json: { ...PERIOD, tariffCsv: DRAFT } });
    expect(sim.status, sim.text).toBe(200);
    expect(await fingerprint(t.id)).toBe(before); // the draft was not saved, nothing was written
    const result = sim.json.result;
    expect(result).toMatchObject({ tariffId: t.tariffId, draft: true });
    const [tenant] = result.tenants;
    expect(tenant.skipped).toBe(1); // the call to the United Kingdom: no rate under the draft
    expect(tenant.changed).toBeGreaterThan(5);
    const byUser = csvLines((await call(app, 'POST', `/v1/tariffs/${t.tariffId}/simulate?format=csv&by=user`, { key: t.resellerKey, json: { ...PERIOD, tariffCsv: DRAFT } })).text);
    expect(byUser[0]).toEqual(['tenant_id', 'tenant_name', 'user_id', 'identifiant', 'full_name', 'calls', 'current_billable_minutes', 'simulated_billable_minutes', 'current_cost', 'simulated_cost', 'difference', 'difference_percent']);
    const simulated = new Map(byUser.slice(1).map((cells) => [cells[2]!, { current: cells[8]!, simulated: cells[9]!, minutes: cells[7]! }]));

    // the same draft published and rerated: what the simulation said, user by user
    await putTariff(app, DRAFT, t.tariffId);
    const rerate = await call(app, 'POST', '/v1/rerate', { key: t.adminKey, json: PERIOD });
    expect(rerate.status, rerate.text).toBe(200);
    expect(rerate.json.skipped).toBe(1);
    const after = await storedByUser(t.id);
    for (const u of [u1, u2, u3]) {
      expect(simulated.get(u.id)?.current).toBe(current.get(u.id)!.cost);
      expect(simulated.get(u.id)?.simulated).toBe(after.get(u.id)!.cost);
      expect(simulated.get(u.id)?.minutes).toBe((Number(after.get(u.id)!.billable) / 60).toFixed(2));
    }
    // the rerate's entries are the opposite of the simulated difference
    expect(rerate.json.amount).toBe(`${tenant.difference.startsWith('-') ? '' : '-'}${tenant.difference.replace('-', '')}`);
    expect(tenant.difference).not.toBe('0.0000');

    // and now the stored tariff is the draft: simulating it changes nothing
    const again = await call(app, 'POST', `/v1/tariffs/${t.tariffId}/simulate`, { key: t.adminKey, json: PERIOD });
    expect(again.json.result.tenants[0]).toMatchObject({ difference: '0.0000', changed: 0, simulatedCost: tenant.simulatedCost });
  });

  it('names the users and destinations that change most, and gives a CSV per tenant', async () => {
    const t = await cdrTenant(app);
    const { u1, u2 } = await seedCalls(app, t);
    const res = await call(app, 'POST', `/v1/tariffs/${t.tariffId}/simulate`, { key: t.resellerKey, json: { ...PERIOD, tariffCsv: DRAFT } });
    const [tenant] = res.json.result.tenants;
    const top = tenant.topUsers.map((u: { userId: string }) => u.userId);
    expect(top).toContain(u1.id);
    expect(top).toContain(u2.id);
    const abs = tenant.topUsers.map((u: { difference: string }) => Math.abs(Number(u.difference)));
    expect(abs).toEqual([...abs].sort((x, y) => y - x));
    expect(tenant.destinations.gains.map((d: { destination: string }) => d.destination)).toEqual(['France fixe']);
    expect(tenant.destinations.losses.map((d: { destination: string }) => d.destination)).toEqual(['France mobile']);
    // the destinations' differences add up to the tenant's
    const sum = [...tenant.destinations.gains, ...tenant.destinations.losses].reduce((s: number, d: { difference: string }) => s + Math.round(Number(d.difference) * 10000), 0);
    expect(sum).toBe(Math.round(Number(tenant.difference) * 10000));

    const csv = await call(app, 'POST', `/v1/tariffs/${t.tariffId}/simulate?format=csv`, { key: t.resellerKey, json: { ...PERIOD, tariffCsv: DRAFT } });
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toContain('text/csv');
    const lines = csvLines(csv.text);
    expect(lines[0]).toEqual(['tenant_id', 'tenant_name', 'calls', 'current_billable_minutes', 'simulated_billable_minutes', 'current_cost', 'simulated_cost', 'difference', 'difference_percent', 'changed', 'skipped']);
    expect(lines).toHaveLength(2);
    expect(lines[1]!.slice(0, 3)).toEqual([t.id, tenant.name, '13']);
    expect(lines[1]!.slice(5, 9)).toEqual([tenant.currentCost, tenant.simulatedCost, tenant.difference, tenant.differencePercent]);
  });

  it('refuses a draft with a bad line as the upload does, naming the line', async () => {
    const t = await cdrTenant(app);
    const bad = `${TARIFF_CSV}39,Italie,international,abc,0,60,60,false,,\n`;
    const sim = await call(app, 'POST', `/v1/tariffs/${t.tariffId}/simulate`, { key: t.resellerKey, json: { ...PERIOD, tariffCsv: bad } });
    expect(sim.status).toBe(400);
    const upload = await call(app, 'PUT', `/v1/tariffs/${t.tariffId}`, { key: t.resellerKey, body: bad, headers: { 'content-type': 'text/csv' } });
    expect(upload.status).toBe(400);
    expect(sim.json.error.message).toBe(upload.json.error.message);
    expect(sim.json.error.details).toEqual(upload.json.error.details);
    expect(sim.json.error.details[0]).toMatchObject({ line: 6 });
    const period = await call(app, 'POST', `/v1/tariffs/${t.tariffId}/simulate`, { key: t.resellerKey, json: { from: '2026-12-01', to: '2026-11-01' } });
    expect(period.status).toBe(400);
  });

  it('runs as a job whose progress can be polled', async () => {
    const t = await cdrTenant(app);
    await seedCalls(app, t);
    const started = await call(app, 'POST', `/v1/tariffs/${t.tariffId}/simulate?wait=0`, { key: t.adminKey, json: PERIOD });
    expect(started.status, started.text).toBe(202);
    expect(started.headers.get('location')).toBe(`/v1/simulations/${started.json.jobId}`);
    expect(['queued', 'running']).toContain(started.json.status);
    let job = started.json;
    for (let i = 0; i < 600 && job.status !== 'done'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const polled = await call(app, 'GET', `/v1/simulations/${started.json.jobId}`, { key: t.adminKey });
      expect([200, 202]).toContain(polled.status);
      job = polled.json;
    }
    expect(job).toMatchObject({ status: 'done', progress: { tenants: 1, tenantsDone: 1, cdrs: 13 } });
    expect(job.result.tenants[0].calls).toBe(13);
    const csv = await call(app, 'GET', `/v1/simulations/${started.json.jobId}?format=csv`, { key: t.adminKey });
    expect(csvLines(csv.text)[1]![0]).toBe(t.id);
    // another tenant's key, or the reseller's, does not see it
    const other = await cdrTenant(app);
    expect((await call(app, 'GET', `/v1/simulations/${started.json.jobId}`, { key: other.adminKey })).status).toBe(404);
    expect((await call(app, 'GET', `/v1/simulations/${started.json.jobId}`, { key: t.resellerKey })).status).toBe(404);
  });

  it('keeps tenants apart: a tenant sees only its own CDRs, another tenant’s id or tariff is a 404', async () => {
    const tariff = await putTariff(app, TARIFF_CSV);
    const a = await newTenant(app, { tariffId: tariff.id, country: 'FR', timezone: 'Europe/Paris' });
    const b = await newTenant(app, { tariffId: tariff.id, country: 'FR', timezone: 'Europe/Paris' });
    await seedCalls(app, a);
    await seedCalls(app, b);
    await seedCalls(app, b, 'b');
    const mine = await call(app, 'POST', `/v1/tariffs/${tariff.id}/simulate`, { key: a.adminKey, json: { ...PERIOD, tariffCsv: DRAFT } });
    expect(mine.status, mine.text).toBe(200);
    expect(mine.json.result.tenants.map((t: { tenantId: string }) => t.tenantId)).toEqual([a.id]);
    expect(mine.json.result.total.calls).toBe(13); // b has 26
    expect((await call(app, 'POST', `/v1/tariffs/${tariff.id}/simulate`, { key: a.adminKey, json: { ...PERIOD, tenantIds: [b.id] } })).status).toBe(404);
    // a tariff the tenant is not rated with
    const c = await cdrTenant(app);
    expect((await call(app, 'POST', `/v1/tariffs/${c.tariffId}/simulate`, { key: a.adminKey, json: PERIOD })).status).toBe(404);
    expect((await call(app, 'POST', `/v1/tariffs/${c.tariffId}/quote`, { key: a.adminKey, json: { callee: '0612345678', durationSeconds: 20 } })).status).toBe(404);
    // another reseller: neither the tariff nor the tenants
    const other = await resellerKey({ newReseller: true });
    expect((await call(app, 'POST', `/v1/tariffs/${tariff.id}/simulate`, { key: other.key, json: PERIOD })).status).toBe(404);
    const own = await putTariff(app, TARIFF_CSV);
    const foreign = await call(app, 'POST', `/v1/tariffs/${own.id}/simulate`, { key: tariff.resellerKey, json: { ...PERIOD, tenantIds: [a.id] } });
    expect(foreign.status).toBe(200); // the default reseller's own tariff over its own tenant
    const otherTariff = `other-${a.id}`;
    expect((await call(app, 'PUT', `/v1/tariffs/${otherTariff}`, { key: other.key, body: TARIFF_CSV, headers: { 'content-type': 'text/csv' } })).status).toBe(200);
    expect((await call(app, 'POST', `/v1/tariffs/${otherTariff}/simulate`, { key: other.key, json: { ...PERIOD, tenantIds: [a.id] } })).status).toBe(404);
    // without tariffs:manage
    const comptable = await keyWithRoles(app, a, ['comptable']);
    expect((await call(app, 'POST', `/v1/tariffs/${tariff.id}/simulate`, { key: comptable.key, json: PERIOD })).status).toBe(403);
  });
});

describe('POST /v1/tariffs/{id}/quote', () => {
  it('prices SPEC §4’s examples', async () => {
    const t = await cdrTenant(app);
    const quote = async (callee: string, durationSeconds: number) => {
      const res = await call(app, 'POST', `/v1/tariffs/${t.tariffId}/quote`, { key: t.adminKey, json: { callee, durationSeconds, at: '2026-11-03T10:00:00Z' } });
      expect(res.status, res.text).toBe(200);
      return res.json;
    };
    expect(await quote('0612345678', 20)).toMatchObject({ callee: '+33612345678', billableSeconds: 60, cost: '0.6000', rate: { prefix: '336', destination: 'France mobile' } });
    expect((await quote('06 12 34 56 78', 85)).cost).toBe('0.6417');
    expect((await quote('+33612345678', 120)).cost).toBe('0.7000');
    expect(await quote('0712345678', 45)).toMatchObject({ billableSeconds: 48, chargedSeconds: 48, cost: '0.0400', rate: { prefix: '337' } });
    expect(await quote('0612345678', 0)).toMatchObject({ billableSeconds: 0, cost: '0.0000' });
    // the forfait left pays the first seconds of a forfait-eligible rate
    const withForfait = await call(app, 'POST', `/v1/tariffs/${t.tariffId}/quote`, { key: t.adminKey, json: { callee: '0142000000', durationSeconds: 150, forfaitSeconds: 60 } });
    expect(withForfait.json).toMatchObject({ billableSeconds: 180, forfaitSeconds: 60, chargedSeconds: 120, cost: '0.1200' });
    // a reseller names the tenant whose dialling it reads; without one, France
    expect((await call(app, 'POST', `/v1/tariffs/${t.tariffId}/quote`, { key: t.resellerKey, json: { callee: '0612345678', durationSeconds: 85 } })).json.cost).toBe('0.6417');
  });

  it('says which callee has no rate, and which instant is not one', async () => {
    const t = await cdrTenant(app);
    const none = await call(app, 'POST', `/v1/tariffs/${t.tariffId}/quote`, { key: t.adminKey, json: { callee: '+8613800138000', durationSeconds: 60 } });
    expect(none.status).toBe(400);
    expect(none.json.error.details[0]).toMatchObject({ field: 'callee', value: '+8613800138000' });
    const at = await call(app, 'POST', `/v1/tariffs/${t.tariffId}/quote`, { key: t.adminKey, json: { callee: '0612345678', durationSeconds: 60, at: 'yesterday' } });
    expect(at.status).toBe(400);
    expect(at.json.error.details[0]).toMatchObject({ field: 'at', value: 'yesterday' });
  });
});
