import { describe, expect, it } from 'vitest';
import { call, testApp, testDb } from '../support/app.js';
import { keyWithRoles } from '../support/factory.js';
import { account, brokenLedgerChains, cdr, cdrCount, cdrTenant, cdrUser, expectAccountsFollowCdrs } from './helpers.js';

const app = testApp();

describe('POST /v1/cdrs (JSON)', () => {
  it('rates by SPEC §4, charges the ledger once per CDR and keeps balance = sum of ledger', async () => {
    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '10' });
    const res = await call(app, 'POST', '/v1/cdrs', {
      key: t.adminKey,
      json: [
        cdr('spec-20', u.identifiant, '0612345678', 20),
        cdr('spec-85', u.identifiant, '06 12 34 56 78', 85, '2026-11-03T10:05:00+01:00'),
        cdr('spec-120', u.identifiant, '+33612345678', 120, '2026-11-03T10:10:00+01:00'),
        cdr('spec-45', u.identifiant, '0755123456', 45, '2026-11-03T10:15:00+01:00'),
        cdr('unanswered', u.identifiant, '0612345678', 0, '2026-11-03T10:20:00+01:00'),
      ],
    });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toEqual({ accepted: 5, duplicates: 0, rejected: [], rejectedCount: 0, unknownRange: [], unknownRangeCount: 0 });

    const list = await call(app, 'GET', '/v1/cdrs?limit=10', { key: t.adminKey });
    expect(list.status).toBe(200);
    const byId = Object.fromEntries(list.json.items.map((c: { callId: string }) => [c.callId, c]));
    expect(byId['spec-20']).toMatchObject({ cost: '0.6000', billableSeconds: 60, chargedSeconds: 60, forfaitSeconds: 0, class: 'mobile', destination: 'France mobile', callee: '+33612345678' });
    expect(byId['spec-85'].cost).toBe('0.6417');
    expect(byId['spec-120'].cost).toBe('0.7000');
    expect(byId['spec-45']).toMatchObject({ cost: '0.0400', billableSeconds: 48 });
    expect(byId.unanswered).toMatchObject({ cost: '0.0000', billableSeconds: 0, disposition: 'no_answer' });
    expect(byId['spec-85'].startedAt).toBe('2026-11-03T10:05:00+01:00');

    const a = await account(t.id, u.id);
    expect(a.balance).toBe('8.0183'); // 10 − 0.6 − 0.6417 − 0.7 − 0.04
    expect(a.ledgerSum).toBe(a.balance);
    expect(a.totalCallSeconds).toBe(String(60 + 85 + 120 + 48));
    expect(await brokenLedgerChains(t.id)).toBe(0);
    const { sql } = testDb();
    const entries = await sql<{ kind: string; amount: string; cdrId: string | null }[]>`
      SELECT kind, amount::text, cdr_id::text AS "cdrId" FROM ledger_entries WHERE tenant_id = ${t.id} AND kind = 'call' ORDER BY id`;
    expect(entries.map((e) => e.amount).sort()).toEqual(['-0.0400', '-0.6000', '-0.6417', '-0.7000']);
    expect(entries.every((e) => e.cdrId !== null)).toBe(true);
  });

  it('spends the forfait on the earliest calls first, whatever the order of the batch', async () => {
    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '5', forfaitMinutes: 2 });
    // 0.06 per minute, 60/60, forfait-eligible; 2 minutes of forfait
    const res = await call(app, 'POST', '/v1/cdrs', {
      key: t.adminKey,
      json: [
        cdr('late', u.identifiant, '0142000000', 60, '2026-11-03T12:00:00+01:00'),
        cdr('early', u.identifiant, '0142000000', 90, '2026-11-03T09:00:00+01:00'),
      ],
    });
    expect(res.status).toBe(200);
    const items = (await call(app, 'GET', '/v1/cdrs', { key: t.adminKey })).json.items;
    const early = items.find((c: { callId: string }) => c.callId === 'early');
    const late = items.find((c: { callId: string }) => c.callId === 'late');
    expect(early).toMatchObject({ billableSeconds: 120, forfaitSeconds: 120, chargedSeconds: 0, cost: '0.0000' });
    expect(late).toMatchObject({ billableSeconds: 60, forfaitSeconds: 0, chargedSeconds: 60, cost: '0.0600' });
    const a = await account(t.id, u.id);
    expect(a.usedSeconds).toBe(120);
    expect(a.balance).toBe('4.9400');
    expect(a.ledgerSum).toBe(a.balance);
  });

  it('counts duplicates inside a batch and across batches, and rates each call id once', async () => {
    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '10' });
    const first = await call(app, 'POST', '/v1/cdrs', {
      key: t.adminKey,
      json: [cdr('d1', u.identifiant, '0612345678', 20), cdr('d1', u.identifiant, '0612345678', 85), cdr('d2', u.identifiant, '0612345678', 20)],
    });
    expect(first.json).toMatchObject({ accepted: 2, duplicates: 1 });
    const second = await call(app, 'POST', '/v1/cdrs', {
      key: t.adminKey,
      json: [cdr('d2', u.identifiant, '0612345678', 120), cdr('d3', u.identifiant, '0612345678', 20)],
    });
    expect(second.json).toMatchObject({ accepted: 1, duplicates: 1 });
    expect(await cdrCount(t.id)).toBe(3);
    const a = await account(t.id, u.id);
    expect(a.balance).toBe('8.2000'); // three 20 s calls at 0.60, the first occurrence of d1 won
    expect(a.ledgerSum).toBe(a.balance);
  });

  it('refuses a CDR without callId with 400 naming its index, and writes nothing', async () => {
    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '10' });
    const res = await call(app, 'POST', '/v1/cdrs', {
      key: t.adminKey,
      json: [cdr('ok-1', u.identifiant, '0612345678', 20), { identifiant: u.identifiant, callee: '0612345678', startedAt: '2026-11-03T10:00:00Z' }],
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.json.error.details)).toContain('1.callId');
    expect(await cdrCount(t.id)).toBe(0);
    expect((await account(t.id, u.id)).balance).toBe('10.0000');
    const notArray = await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, body: '{"callId":', headers: { 'content-type': 'application/json' } });
    expect(notArray.status).toBe(400);
  });

  it('stores incoming calls without charging, free numbers at no cost, and releases the reservation of a call', async () => {
    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '10', forfaitMinutes: 10 });
    const { sql } = testDb();
    const [resv] = await sql<{ id: string }[]>`
      INSERT INTO reservations (tenant_id, id, user_id, call_id, callee, max_seconds, hold_money, expires_at)
      VALUES (${t.id}, gen_random_uuid(), ${u.id}, 'with-resv', '+33612345678', 300, '3.0000', now() + interval '1 hour') RETURNING id`;
    const res = await call(app, 'POST', '/v1/cdrs', {
      key: t.adminKey,
      json: [
        { callId: 'in-1', callee: '1001', caller: '0612345678', direction: 'in', startedAt: '2026-11-03T10:00:00+01:00', durationSeconds: 300, disposition: 'answered' },
        cdr('free-112', u.identifiant, '112', 600),
        cdr('with-resv', u.identifiant, '0612345678', 85),
      ],
    });
    expect(res.json).toMatchObject({ accepted: 3, rejectedCount: 0 });
    const items = (await call(app, 'GET', '/v1/cdrs', { key: t.adminKey })).json.items;
    expect(items.find((c: { callId: string }) => c.callId === 'in-1')).toMatchObject({ direction: 'in', cost: '0.0000', userId: null, callee: '1001' });
    expect(items.find((c: { callId: string }) => c.callId === 'free-112')).toMatchObject({ cost: '0.0000', forfaitSeconds: 0, class: 'free' });
    expect(items.find((c: { callId: string }) => c.callId === 'with-resv')).toMatchObject({ cost: '0.6417', reservationId: resv!.id });
    const [r] = await sql<{ status: string; releasedAt: Date | null }[]>`SELECT status, released_at AS "releasedAt" FROM reservations WHERE tenant_id = ${t.id} AND id = ${resv!.id}`;
    expect(r!.status).toBe('rated');
    expect(r!.releasedAt).not.toBeNull();
    const a = await account(t.id, u.id);
    expect(a.usedSeconds).toBe(0);
    expect(a.balance).toBe('9.3583');
  });

  it('streams NDJSON and rejects a line that is not JSON by its index', async () => {
    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '10' });
    const body = [JSON.stringify(cdr('nd-1', u.identifiant, '0612345678', 20)), '{not json', JSON.stringify(cdr('nd-2', u.identifiant, '0612345678', 20))].join('\n');
    const res = await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, body, headers: { 'content-type': 'application/x-ndjson' } });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ accepted: 2, rejectedCount: 1, rejected: [{ index: 1, reason: 'MALFORMED' }] });
  });

  it('filters GET /v1/cdrs and pages with a cursor; a pbx key may write, not read', async () => {
    const t = await cdrTenant(app, { numberDisplay: 'national' });
    const u = await cdrUser(t.id, { balance: '10' });
    const v = await cdrUser(t.id, { balance: '10' });
    const json = [
      cdr('f1', u.identifiant, '0612345678', 20, '2026-10-31T23:30:00+01:00', { site: 'Paris', line: 'L1' }),
      cdr('f2', u.identifiant, '0142000000', 20, '2026-11-01T00:30:00+01:00', { site: 'Lyon' }),
      cdr('f3', v.identifiant, '0612345678', 20, '2026-11-02T10:00:00+01:00', { site: 'Paris' }),
    ];
    const { key: pbx } = await call(app, 'POST', '/v1/keys', { key: t.adminKey, json: { name: 'pbx', principal: 'pbx' } }).then((r) => r.json);
    expect((await call(app, 'POST', '/v1/cdrs', { key: pbx, json })).status).toBe(200);
    expect((await call(app, 'GET', '/v1/cdrs', { key: pbx })).status).toBe(403);
    const comptable = await keyWithRoles(app, t, ['comptable']);
    const q = async (query: string) => (await call(app, 'GET', `/v1/cdrs?${query}`, { key: comptable.key })).json.items.map((c: { callId: string }) => c.callId);
    expect(await q('from=2026-11-01')).toEqual(['f3', 'f2']);
    expect(await q('to=2026-11-01')).toEqual(['f1']);
    expect(await q(`identifiant=${u.identifiant}`)).toEqual(['f2', 'f1']);
    expect(await q('site=Paris')).toEqual(['f3', 'f1']);
    expect(await q('line=L1')).toEqual(['f1']);
    expect(await q('class=fixed')).toEqual(['f2']);
    expect(await q('direction=in')).toEqual([]);
    const page1 = (await call(app, 'GET', '/v1/cdrs?limit=2', { key: comptable.key })).json;
    expect(page1.items).toHaveLength(2);
    const page2 = (await call(app, 'GET', `/v1/cdrs?limit=2&cursor=${page1.nextCursor}`, { key: comptable.key })).json;
    expect(page2.items.map((c: { callId: string }) => c.callId)).toEqual(['f1']);
    expect(page2.nextCursor).toBeNull();
    expect(page1.items[0].callee).toBe('06 12 34 56 78');
    expect((await call(app, 'GET', '/v1/cdrs?from=yesterday', { key: comptable.key })).status).toBe(400);
  });
});

describe('concurrent overlapping batches', () => {
  it('rate every call id exactly once and keep every balance equal to its ledger', async () => {
    const t = await cdrTenant(app);
    const users = await Promise.all([0, 1, 2].map(() => cdrUser(t.id, { balance: '100', forfaitMinutes: 1 })));
    // 60 distinct calls; 6 batches, each a window of 30 that overlaps its neighbours
    const all = Array.from({ length: 60 }, (_, i) =>
      cdr(`cc-${i}`, users[i % 3]!.identifiant, i % 2 ? '0612345678' : '0142000000', 20 + i, `2026-11-03T10:${String(i).padStart(2, '0')}:00+01:00`),
    );
    const batches = [0, 10, 20, 30, 0, 15].map((start) => all.slice(start, start + 30));
    const answers = await Promise.all(batches.map((json) => call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json })));
    for (const a of answers) expect(a.status, a.text).toBe(200);
    const accepted = answers.reduce((s, a) => s + a.json.accepted, 0);
    const duplicates = answers.reduce((s, a) => s + a.json.duplicates, 0);
    expect(accepted).toBe(60);
    expect(duplicates).toBe(180 - 60);
    expect(await cdrCount(t.id)).toBe(60);
    const accounts = await expectAccountsFollowCdrs(t.id, users.map((u) => u.id), '100');
    for (const a of accounts) expect(a.usedSeconds).toBeLessThanOrEqual(60);
  });
});
