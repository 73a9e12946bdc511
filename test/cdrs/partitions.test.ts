import { describe, expect, it } from 'vitest';
import { call, testApp, testDb } from '../support/app.js';
import { account, cdr, cdrCount, cdrTenant, cdrUser, expectAccountsFollowCdrs } from './helpers.js';

/**
 * Monthly partitions of cdrs (migration 0050): exactly once by call id within
 * the month of its start, a database guarantee under concurrent batches that
 * write several months at once, one of them a late month no partition existed
 * for; a user's month read through cdrs_user_idx in that month's partition only.
 */
const app = testApp();

async function partitionsOf(): Promise<string[]> {
  const { sql } = testDb();
  const rows = await sql<{ name: string }[]>`
    SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'cdrs'::regclass`;
  return rows.map((r) => r.name);
}

describe('partitions', () => {
  it('every partition has its call id key, and a resend whose start moved within its month is a duplicate', async () => {
    const { sql } = testDb();
    const missing = await sql<{ name: string }[]>`
      SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = 'cdrs'::regclass AND to_regclass(c.relname || '_call_id_uq') IS NULL`;
    expect(missing).toEqual([]);

    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '10' });
    const first = await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json: [cdr('moved-1', u.identifiant, '0612345678', 20, '2026-11-03T10:00:00+01:00')] });
    expect(first.json).toMatchObject({ accepted: 1, duplicates: 0 });
    // written without looking first: the partition's unique key refuses it, the batch is redone and finds it
    const again = await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json: [cdr('moved-1', u.identifiant, '0612345678', 20, '2026-11-20T08:00:00+01:00')] });
    expect(again.status, again.text).toBe(200);
    expect(again.json).toMatchObject({ accepted: 0, duplicates: 1 });
    expect(await cdrCount(t.id)).toBe(1);
  });

  it('a call whose two records start on either side of a month edge is rated once, even sent at the same time', async () => {
    const { sql } = testDb();
    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '10' });
    // ended through the API at its authorization (30 November, 23:59:59.8 UTC), then in the PBX's file 1.2 s later: December
    const first = await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json: [cdr('edge-1', u.identifiant, '0612345678', 20, '2026-11-30T23:59:59.800Z')] });
    expect(first.json).toMatchObject({ accepted: 1 });
    const again = await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json: [cdr('edge-1', u.identifiant, '0612345678', 20, '2026-12-01T00:00:01Z')] });
    expect(again.json).toMatchObject({ accepted: 0, duplicates: 1 });
    // both records at once, from two senders: one is rated, the other waits on the key and is a duplicate
    const pair = await Promise.all([
      call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json: [cdr('edge-2', u.identifiant, '0612345678', 20, '2026-11-30T23:59:59Z')] }),
      call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json: [cdr('edge-2', u.identifiant, '0612345678', 20, '2026-12-01T00:00:02Z')] }),
    ]);
    expect(pair.map((a) => a.json.accepted).sort()).toEqual([0, 1]);
    expect(await cdrCount(t.id)).toBe(2);
    const [keys] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM cdr_boundary_keys WHERE tenant_id = ${t.id}`;
    expect(keys!.n).toBe(2);
    const a = await account(t.id, u.id);
    expect(a.ledgerSum).toBe(a.balance);
    expect(a.balance).toBe('8.8000'); // two calls of 20 s at 0.6000 (SPEC §4's first example)
  });

  it('concurrent overlapping batches over two months and a late month made on demand: every call id once', async () => {
    const { sql } = testDb();
    // a month no job made ahead: 1999-03 (the migration makes the current months, tests never depend on today)
    await sql`DROP TABLE IF EXISTS cdrs_y1999m03`;
    expect(await partitionsOf()).not.toContain('cdrs_y1999m03');
    const t = await cdrTenant(app);
    const users = await Promise.all([0, 1, 2].map(() => cdrUser(t.id, { balance: '100', forfaitMinutes: 1 })));
    // 90 calls: a third late, from 1999; a third on 31 October (UTC), a third on 1 November (UTC)
    const day = ['1999-03-15', '2026-10-31', '2026-11-01'];
    const all = Array.from({ length: 90 }, (_, i) =>
      cdr(`pm-${i}`, users[i % 3]!.identifiant, i % 2 ? '0612345678' : '0142000000', 20 + i, `${day[i % 3]}T${i % 3 === 1 ? '23' : '00'}:${String(i % 60).padStart(2, '0')}:00Z`),
    );
    const batches = [0, 15, 30, 45, 60, 0, 20].map((start) => all.slice(start, start + 45));
    const answers = await Promise.all(batches.map((json) => call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json })));
    for (const a of answers) expect(a.status, a.text).toBe(200);
    const sent = batches.reduce((s, b) => s + b.length, 0);
    expect(answers.reduce((s, a) => s + a.json.accepted, 0)).toBe(90);
    expect(answers.reduce((s, a) => s + a.json.duplicates, 0)).toBe(sent - 90);
    expect(await cdrCount(t.id)).toBe(90);
    expect(await partitionsOf()).toEqual(expect.arrayContaining(['cdrs_y1999m03', 'cdrs_y2026m10', 'cdrs_y2026m11']));
    const perMonth = await sql<{ part: string; n: number }[]>`
      SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM cdrs WHERE tenant_id = ${t.id} GROUP BY 1 ORDER BY 1`;
    expect(perMonth.map((r) => r.part)).toEqual(['cdrs_y1999m03', 'cdrs_y2026m10', 'cdrs_y2026m11']);
    expect(perMonth.reduce((s, r) => s + r.n, 0)).toBe(90);
    await expectAccountsFollowCdrs(t.id, users.map((u) => u.id), '100');
  });
});

describe("a user's history", () => {
  it('GET /v1/cdrs?userId= lists that user only; another tenant\'s user id finds nothing; not a uuid is a 400', async () => {
    const t = await cdrTenant(app);
    const other = await cdrTenant(app);
    const [a, b] = await Promise.all([cdrUser(t.id, { balance: '10' }), cdrUser(t.id, { balance: '10' })]);
    const stranger = await cdrUser(other.id, { balance: '10' });
    await call(app, 'POST', '/v1/cdrs', {
      key: t.adminKey,
      json: [cdr('h-1', a!.identifiant, '0612345678', 20), cdr('h-2', b!.identifiant, '0612345678', 20), cdr('h-3', a!.identifiant, '0142000000', 30, '2026-11-04T09:00:00+01:00')],
    });
    await call(app, 'POST', '/v1/cdrs', { key: other.adminKey, json: [cdr('h-1', stranger.identifiant, '0612345678', 20)] });
    const mine = await call(app, 'GET', `/v1/cdrs?userId=${a!.id}&from=2026-11-01&to=2026-12-01`, { key: t.adminKey });
    expect(mine.status, mine.text).toBe(200);
    expect(mine.json.items.map((c: { callId: string }) => c.callId)).toEqual(['h-3', 'h-1']);
    const theirs = await call(app, 'GET', `/v1/cdrs?userId=${stranger.id}`, { key: t.adminKey });
    expect(theirs.json.items).toEqual([]);
    expect((await call(app, 'GET', `/v1/users/${stranger.id}/calls.csv`, { key: t.adminKey })).status).toBe(404);
    const bad = await call(app, 'GET', '/v1/cdrs?userId=nope', { key: t.adminKey });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('userId');
  });

  it("reads a user's month through cdrs_user_idx in that month's partition only", async () => {
    const { sql } = testDb();
    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '10' });
    await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json: [cdr('ix-1', u.identifiant, '0612345678', 20), cdr('ix-2', u.identifiant, '0612345678', 20, '2026-10-03T10:00:00+02:00')] });
    await sql.begin(async (tx) => {
      await tx`SET LOCAL enable_seqscan = off`;
      const plan = await tx<{ 'QUERY PLAN': string }[]>`
        EXPLAIN SELECT * FROM cdrs WHERE tenant_id = ${t.id} AND user_id = ${u.id}
          AND started_at >= '2026-11-01T00:00:00Z' AND started_at < '2026-12-01T00:00:00Z' ORDER BY started_at`;
      const text = plan.map((r) => r['QUERY PLAN']).join('\n');
      expect(text).toMatch(/cdrs_y2026m11_tenant_id_user_id_started_at_idx/);
      expect(text).not.toMatch(/cdrs_y2026m10/);
    });
  });
});
