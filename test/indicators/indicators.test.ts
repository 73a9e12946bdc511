import { describe, expect, it } from 'vitest';
import { indicators } from '../../services/indicators/query.js';
import { call, testApp, testDb } from '../support/app.js';
import { keyWithRoles, powerlessKey } from '../support/factory.js';
import { TARIFF_CSV, cdrTenant, cdrUser, putTariff } from '../cdrs/helpers.js';
import { postCdrs, prng, randomCdrs } from './data.js';
import { cdrFacts, referenceIndicators, type RefQuery } from './reference.js';

const app = testApp();

/** Periods and filters chosen to hit every path: whole months, whole days, sub-day edges, the DST nights. */
const QUERIES: RefQuery[] = [
  { from: '2026-10-01', to: '2026-11-01', granularity: 'day' },
  { from: '2026-10-01', to: '2026-12-01', granularity: 'month' },
  { from: '2026-09-01', to: '2027-01-01', granularity: 'month', top: 3 },
  { from: '2026-10-24', to: '2026-10-27', granularity: 'hour' },
  { from: '2026-10-24T13:17:00', to: '2026-10-27T08:05:30', granularity: 'hour' },
  { from: '2026-10-25T02:30:00+01:00', to: '2026-10-25T04:00', granularity: 'hour' },
  { from: '2026-10-24T13:17:00', to: '2026-11-06T00:00:01', granularity: 'day', top: 4 },
  { from: '2026-10-19', to: '2026-11-04', granularity: 'day', site: 'Lyon' },
  { from: '2026-10-19', to: '2026-11-04', granularity: 'day', line: 'L03' },
  { from: '2026-10-24', to: '2026-10-26', granularity: 'hour', line: 'L05' },
  { from: '2026-10-01', to: '2026-12-01', granularity: 'day', class: 'mobile' },
  { from: '2026-10-01', to: '2026-11-01', granularity: 'month', line: '+33611111111' },
  { from: '2026-10-31T22:00:00Z', to: '2026-11-02', granularity: 'month', site: 'Paris', class: 'fixed' },
  { from: '2026-11-01', to: '2026-12-01', granularity: 'day', site: 'Nowhere' },
];

function search(q: RefQuery): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
  return p.toString();
}

/** Tenant A with random CDRs from 18 October to 8 November 2026 (Paris falls back on 25 October). */
async function seeded(seed: number, zone = 'Europe/Paris') {
  const t = await cdrTenant(app, { timezone: zone });
  const users = await Promise.all([0, 1, 2, 3].map(() => cdrUser(t.id, { balance: '100000', forfaitMinutes: 30 })));
  const cdrs = randomCdrs(prng(seed), 1500, users.map((u) => u.identifiant), { start: '2026-10-18T00:00:00', days: 21, zone }, `s${seed}`);
  const accepted = await postCdrs(app, t.adminKey, cdrs);
  expect(accepted).toBe(1500);
  return t;
}

async function expectEqualToReference(t: { id: string; adminKey: string }, queries = QUERIES) {
  const { sql } = testDb();
  const [tenant] = await sql<{ id: string; timezone: string; currency: string; locale: string }[]>`
    SELECT id, timezone, currency, locale FROM tenants WHERE id = ${t.id}`;
  const facts = await cdrFacts(t.id);
  for (const q of queries) {
    const res = await call(app, 'GET', `/v1/indicators?${search(q)}`, { key: t.adminKey });
    expect(res.status, res.text).toBe(200);
    const expected = referenceIndicators(facts, tenant!, q);
    expect(res.json, JSON.stringify(q)).toEqual(expected);
    // the text too: the series PostgreSQL writes is what serializing the object would give
    expect(res.text, JSON.stringify(q)).toBe(JSON.stringify(expected));
    // and the raw GROUP BY path of the service gives the same
    expect(await indicators(sql, tenant!, q, { source: 'raw' }), JSON.stringify(q)).toEqual(expected);
  }
}

describe('GET /v1/indicators', () => {
  it('equals a plain recomputation over the CDRs, across the DST change, with sub-day edges and filters', async () => {
    const t = await seeded(1);
    const month = await call(app, 'GET', '/v1/indicators?from=2026-10-01&to=2026-11-01&granularity=hour', { key: t.adminKey });
    expect(month.status).toBe(200);
    // October 2026 in Paris: 31 days, one of them 25 hours long
    expect(month.json.series).toHaveLength(31 * 24 + 1);
    const twoAm = month.json.series.filter((p: { start: string }) => p.start.startsWith('2026-10-25T02:00'));
    expect(twoAm.map((p: { start: string }) => p.start)).toEqual(['2026-10-25T02:00:00+02:00', '2026-10-25T02:00:00+01:00']);
    expect(month.json.outgoing.calls).toBeGreaterThan(100);
    expect(month.json.incoming.missed).toBeGreaterThan(0);
    await expectEqualToReference(t);
  });

  it('follows a rerate: new costs, and a rate whose class and destination changed, move in the rollups', async () => {
    const t = await seeded(2);
    const before = (await call(app, 'GET', '/v1/indicators?from=2026-10-01&to=2026-12-01', { key: t.adminKey })).json;
    const changed = TARIFF_CSV.replace('336,France mobile,mobile,0.20,0.40', '336,France mobile,mobile,0.30,0.10').replace(
      '44,Royaume-Uni,international,0.50',
      '44,UK premium,special,0.70',
    );
    await putTariff(app, changed, t.tariffId);
    const rerate = await call(app, 'POST', '/v1/rerate', { key: t.adminKey, json: { from: '2026-10-01', to: '2026-12-01' } });
    expect(rerate.status, rerate.text).toBe(200);
    expect(rerate.json.changed).toBeGreaterThan(0);
    const after = (await call(app, 'GET', '/v1/indicators?from=2026-10-01&to=2026-12-01', { key: t.adminKey })).json;
    expect(after.outgoing.cost).not.toBe(before.outgoing.cost);
    expect(after.outgoing.byDestination.some((d: { destination: string }) => d.destination === 'UK premium')).toBe(true);
    expect(after.outgoing.byDestination.some((d: { destination: string }) => d.destination === 'Royaume-Uni')).toBe(false);
    await expectEqualToReference(t);
    // a second rerate changes nothing
    await call(app, 'POST', '/v1/rerate', { key: t.adminKey, json: { from: '2026-10-01', to: '2026-12-01' } });
    expect((await call(app, 'GET', '/v1/indicators?from=2026-10-01&to=2026-12-01', { key: t.adminKey })).json).toEqual(after);
  });

  it('stays exact in half- and quarter-hour zones, and when the tenant changes its timezone', async () => {
    const t = await seeded(3, 'Asia/Kolkata');
    // every query but the one written with Paris's winter offset
    const anyZone = QUERIES.filter((q) => !q.from.includes('+01:00'));
    await expectEqualToReference(t, anyZone);
    for (const zone of ['Asia/Kathmandu', 'America/New_York']) {
      const patch = await call(app, 'PATCH', `/v1/tenants/${t.id}`, { key: t.resellerKey, json: { timezone: zone } });
      expect(patch.status, patch.text).toBe(200);
      await expectEqualToReference(t, anyZone);
    }
    // New York falls back on 1 November: its 02:00 is not doubled, its 01:00 is
    const ny = await call(app, 'GET', '/v1/indicators?from=2026-11-01&to=2026-11-02&granularity=hour', { key: t.adminKey });
    expect(ny.json.series).toHaveLength(25);
    expect(ny.json.series[1].start).toBe('2026-11-01T01:00:00-04:00');
    expect(ny.json.series[2].start).toBe('2026-11-01T01:00:00-05:00');
  });

  it('never counts another tenant’s CDRs', async () => {
    const a = await seeded(4);
    const b = await cdrTenant(app);
    const empty = await call(app, 'GET', '/v1/indicators?from=2026-10-01&to=2026-12-01', { key: b.adminKey });
    expect(empty.status).toBe(200);
    expect(empty.json.outgoing).toMatchObject({ calls: 0, answered: 0, talkSeconds: 0, cost: '0.0000', byDestination: [], topLines: [] });
    expect(empty.json.incoming).toMatchObject({ calls: 0, missed: 0, topLines: [] });
    // B's own calls on the same lines and days
    const bu = await cdrUser(b.id, { balance: '1000' });
    await postCdrs(app, b.adminKey, randomCdrs(prng(99), 200, [bu.identifiant], { start: '2026-10-18T00:00:00', days: 21, zone: 'Europe/Paris' }, 'b'));
    const bView = (await call(app, 'GET', '/v1/indicators?from=2026-10-01&to=2026-12-01', { key: b.adminKey })).json;
    expect(bView.outgoing.calls + bView.incoming.calls).toBe(200);
    await expectEqualToReference(a, QUERIES.slice(0, 3));
  });

  it('asks for indicators:read, and checks its parameters', async () => {
    const t = await cdrTenant(app);
    expect((await call(app, 'GET', '/v1/indicators')).status).toBe(401);
    expect((await call(app, 'GET', '/v1/indicators', { key: await powerlessKey(app, t) })).status).toBe(403);
    const comptable = await keyWithRoles(app, t, ['comptable']);
    const ok = await call(app, 'GET', '/v1/indicators', { key: comptable.key });
    expect(ok.status).toBe(200);
    expect(ok.json.period.timezone).toBe('Europe/Paris');
    expect(ok.json.series.length).toBeGreaterThanOrEqual(28); // the current month, by day
    const bad = [
      'from=2026-11-01&to=2026-10-01',
      'from=yesterday',
      'granularity=week',
      'from=2020-01-01&to=2026-01-01&granularity=hour',
      'class=premium',
    ];
    for (const q of bad) {
      const res = await call(app, 'GET', `/v1/indicators?${q}`, { key: comptable.key });
      expect(res.status, q).toBe(400);
      expect(res.json.error.code).toBe('VALIDATION_FAILED');
    }
  });
});
