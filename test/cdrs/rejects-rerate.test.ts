import { describe, expect, it } from 'vitest';
import { call, testApp, testDb } from '../support/app.js';
import { keyWithRoles, resellerKey } from '../support/factory.js';
import { account, brokenLedgerChains, cdr, cdrCount, cdrTenant, cdrUser, putTariff, TARIFF_CSV } from './helpers.js';

const app = testApp();

describe('rejected CDRs and reprocess', () => {
  it('stores each reject with its reason and raw record, and rates it once the user or the rate exists', async () => {
    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '10' });
    const json = [
      cdr('r-unknown', '9999999', '0612345678', 20),
      cdr('r-norate', u.identifiant, '+8613800138000', 60),
      cdr('r-bad', u.identifiant, '0612345678', 20, 'next tuesday'),
      cdr('r-ok', u.identifiant, '0612345678', 20),
    ];
    const res = await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json });
    expect(res.json).toMatchObject({
      accepted: 1,
      rejected: [
        { index: 0, callId: 'r-unknown', reason: 'UNKNOWN_USER', field: 'identifiant' },
        { index: 1, callId: 'r-norate', reason: 'NO_RATE', field: 'callee' },
        { index: 2, callId: 'r-bad', reason: 'MALFORMED', field: 'startedAt' },
      ],
    });
    const { sql } = testDb();
    const stored = await sql<{ callId: string; reason: string; raw: string; source: string }[]>`
      SELECT call_id AS "callId", reason, raw, source FROM rejected_cdrs WHERE tenant_id = ${t.id} ORDER BY id`;
    expect(stored.map((r) => [r.callId, r.reason, r.source])).toEqual([
      ['r-unknown', 'UNKNOWN_USER', 'api'],
      ['r-norate', 'NO_RATE', 'api'],
      ['r-bad', 'MALFORMED', 'api'],
    ]);
    expect(JSON.parse(stored[0]!.raw)).toEqual(json[0]);

    // sent again: not stored twice
    await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json });
    expect((await sql`SELECT 1 FROM rejected_cdrs WHERE tenant_id = ${t.id}`).length).toBe(3);

    const nothingYet = await call(app, 'POST', '/v1/cdrs/rejects/reprocess', { key: t.adminKey });
    expect(nothingYet.json).toEqual({ examined: 2, accepted: 0, duplicates: 0, stillRejected: 2 });

    const late = await cdrUser(t.id, { balance: '5', identifiant: '9999999' });
    expect((await call(app, 'POST', '/v1/cdrs/rejects/reprocess', { key: t.adminKey })).json).toEqual({ examined: 2, accepted: 1, duplicates: 0, stillRejected: 1 });
    expect((await account(t.id, late.id)).balance).toBe('4.4000');

    await putTariff(app, TARIFF_CSV + '86,Chine,international,0.90,0,60,60,false,,\n', t.tariffId);
    expect((await call(app, 'POST', '/v1/cdrs/rejects/reprocess', { key: t.adminKey })).json).toEqual({ examined: 1, accepted: 1, duplicates: 0, stillRejected: 0 });
    expect((await call(app, 'POST', '/v1/cdrs/rejects/reprocess', { key: t.adminKey })).json).toEqual({ examined: 0, accepted: 0, duplicates: 0, stillRejected: 0 });

    expect(await cdrCount(t.id)).toBe(3);
    const a = await account(t.id, u.id);
    expect(a.balance).toBe('8.5000'); // 0.60 (r-ok) + 0.90 (r-norate, rated after the rate was added)
    expect(a.ledgerSum).toBe(a.balance);
    const pending = await sql<{ callId: string }[]>`SELECT call_id AS "callId" FROM rejected_cdrs WHERE tenant_id = ${t.id} AND reprocessed_at IS NULL`;
    expect(pending.map((r) => r.callId)).toEqual(['r-bad']);
  });
});

describe('POST /v1/rerate', () => {
  it('appends rerate entries for the differences only; a second run changes nothing', async () => {
    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '10' });
    await call(app, 'POST', '/v1/cdrs', {
      key: t.adminKey,
      json: [
        cdr('rr-1', u.identifiant, '0612345678', 85, '2026-11-03T10:00:00+01:00'),
        cdr('rr-2', u.identifiant, '0142000000', 60, '2026-11-04T10:00:00+01:00'),
        cdr('rr-old', u.identifiant, '0612345678', 85, '2026-10-15T10:00:00+02:00'),
      ],
    });
    expect((await account(t.id, u.id)).balance).toBe('8.6566'); // 10 − 0.6417 × 2 − 0.06

    // mobile gets cheaper: 0.30 per minute, no fee, 60/1 → 85 s costs 0.4250
    await putTariff(app, TARIFF_CSV.replace('336,France mobile,mobile,0.20,0.40,60,1,false,0.10,', '336,France mobile,mobile,0.30,0,60,1,false,0.30,'), t.tariffId);
    const first = await call(app, 'POST', '/v1/rerate', { key: t.adminKey, json: { from: '2026-11-01', to: '2026-12-01' } });
    expect(first.status, first.text).toBe(200);
    expect(first.json).toMatchObject({ examined: 2, adjusted: 1, amount: '0.2167', skipped: 0 });
    const a1 = await account(t.id, u.id);
    expect(a1.balance).toBe('8.8733');
    expect(a1.ledgerSum).toBe(a1.balance);

    const second = await call(app, 'POST', '/v1/rerate', { key: t.adminKey, json: { from: '2026-11-01', to: '2026-12-01' } });
    expect(second.json).toEqual({ examined: 2, changed: 0, adjusted: 0, amount: '0.0000', skipped: 0 });
    expect((await account(t.id, u.id)).balance).toBe('8.8733');

    const { sql } = testDb();
    const entries = await sql<{ kind: string; amount: string }[]>`SELECT kind, amount::text FROM ledger_entries WHERE tenant_id = ${t.id} AND kind = 'rerate'`;
    expect(entries).toEqual([{ kind: 'rerate', amount: '0.2167' }]);
    const items = (await call(app, 'GET', '/v1/cdrs', { key: t.adminKey })).json.items;
    expect(items.find((c: { callId: string }) => c.callId === 'rr-1')).toMatchObject({ cost: '0.4250', originalCost: '0.6417' });
    expect(items.find((c: { callId: string }) => c.callId === 'rr-old')).toMatchObject({ cost: '0.6417', originalCost: null });
    expect(await brokenLedgerChains(t.id)).toBe(0);
  });

  it('is for resellers (naming their own tenant) and tenant keys with tariffs:manage', async () => {
    const t = await cdrTenant(app);
    const body = { from: '2026-11-01', to: '2026-12-01' };
    expect((await call(app, 'POST', '/v1/rerate', { key: t.resellerKey, json: { ...body, tenantId: t.id } })).status).toBe(200);
    expect((await call(app, 'POST', '/v1/rerate', { key: t.resellerKey, json: body })).status).toBe(400);
    const other = await resellerKey({ newReseller: true });
    expect((await call(app, 'POST', '/v1/rerate', { key: other.key, json: { ...body, tenantId: t.id } })).status).toBe(404);
    const comptable = await keyWithRoles(app, t, ['comptable']);
    expect((await call(app, 'POST', '/v1/rerate', { key: comptable.key, json: body })).status).toBe(403);
    expect((await call(app, 'POST', '/v1/rerate', { key: t.adminKey, json: { from: '2026-12-01', to: '2026-11-01' } })).status).toBe(400);
  });
});
