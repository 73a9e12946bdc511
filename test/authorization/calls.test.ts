import { Decimal } from 'decimal.js';
import { describe, expect, it } from 'vitest';
import { call, testApp, testDb } from '../support/app.js';
import { newTenant, resellerKey } from '../support/factory.js';
import { newTariff, newUser, pbxKey } from '../support/accounts.js';

const app = testApp();
const MOBILE = '+33612345678';

async function setup(maxCallSeconds = 14400) {
  const r = await resellerKey();
  // SPEC §5's example rate: connection fee 0.2, 6 per minute, increments 1/1
  const tariffId = await newTariff(app, r.key, ['336,France mobile,mobile,6,0.2,1,1,true,,']);
  const t = await newTenant(app, { tariffId, maxCallSeconds });
  return { t, pbx: await pbxKey(app, t) };
}

/** The independent reference: §4 with decimal.js, for 1/1 increments and no forfait. */
function referenceCost(seconds: number): Decimal {
  if (seconds === 0) return new Decimal(0);
  return new Decimal('0.2').plus(new Decimal(6).times(seconds).div(60)).toDecimalPlaces(4, Decimal.ROUND_HALF_UP);
}

async function balanceOf(tenantId: string, userId: string) {
  const { db } = testDb();
  const u = await db.selectFrom('users').select(['balance']).where('tenantId', '=', tenantId).where('id', '=', userId).executeTakeFirstOrThrow();
  const sum = await db
    .selectFrom('ledgerEntries')
    .select((eb) => eb.fn.sum<string>('amount').as('s'))
    .where('tenantId', '=', tenantId)
    .where('userId', '=', userId)
    .executeTakeFirstOrThrow();
  return { balance: new Decimal(u.balance), ledger: new Decimal(sum.s ?? 0) };
}

describe('POST /v1/calls/{reservationId}/end', () => {
  it('rates the call, debits the balance, releases the hold; repeating it answers the same CDR', async () => {
    const { t, pbx } = await setup();
    const u = await newUser(t.id, { balance: '10', numbers: { 1: MOBILE } }, app);
    const auth = await call(app, 'POST', '/v1/authorize', { key: pbx, json: { identifiant: u.identifiant, callee: MOBILE, callId: 'pbx-call-1' } });
    expect(auth.json).toMatchObject({ decision: 'allow', maxSeconds: 98 });
    const end = await call(app, 'POST', `/v1/calls/${auth.json.reservationId}/end`, {
      key: pbx,
      json: { durationSeconds: 30, disposition: 'answered', answeredAt: '2026-11-20T10:00:05+01:00' },
    });
    expect(end.status).toBe(200);
    expect(end.json).toMatchObject({
      callId: 'pbx-call-1',
      identifiant: u.identifiant,
      callee: MOBILE,
      direction: 'out',
      durationSeconds: 30,
      disposition: 'answered',
      billableSeconds: 30,
      forfaitSeconds: 0,
      chargedSeconds: 30,
      cost: '3.2000',
      destination: 'France mobile',
      class: 'mobile',
    });
    const again = await call(app, 'POST', `/v1/calls/${auth.json.reservationId}/end`, { key: pbx, json: { durationSeconds: 45, disposition: 'answered' } });
    expect(again.status).toBe(200);
    expect(again.json).toEqual(end.json);
    // the PBX's own CDR for the same call later is a duplicate
    const cdr = await call(app, 'POST', '/v1/cdrs', {
      key: pbx,
      json: [{ callId: 'pbx-call-1', identifiant: u.identifiant, callee: MOBILE, direction: 'out', startedAt: '2026-11-20T10:00:00+01:00', durationSeconds: 30, disposition: 'answered' }],
    });
    expect(cdr.json).toMatchObject({ accepted: 0, duplicates: 1 });
    const { balance, ledger } = await balanceOf(t.id, u.id);
    expect(balance.toFixed(4)).toBe('6.8000');
    expect(ledger.equals(balance)).toBe(true);
    const { db } = testDb();
    const res = await db.selectFrom('reservations').select('status').where('tenantId', '=', t.id).where('id', '=', auth.json.reservationId).executeTakeFirstOrThrow();
    expect(res.status).toBe('rated');
    // the hold is gone and the debit is in: (6.8 − 0.2) / 6 × 60 = 66 s
    const next = await call(app, 'POST', '/v1/authorize', { key: pbx, json: { identifiant: u.identifiant, callee: MOBILE } });
    expect(next.json).toMatchObject({ decision: 'allow', maxSeconds: 66 });
  });

  it('a callId of a call that is over is a 409, and the other reservations of its group commit are kept', async () => {
    const { t, pbx } = await setup();
    const users = await Promise.all([0, 1, 2, 3].map(() => newUser(t.id, { balance: '10', numbers: { 1: MOBILE } }, app)));
    const [first, ...others] = users as [(typeof users)[0], ...typeof users];
    const auth = await call(app, 'POST', '/v1/authorize', { key: pbx, json: { identifiant: first.identifiant, callee: MOBILE, callId: 'over-1' } });
    expect(auth.json).toMatchObject({ decision: 'allow' });
    const end = await call(app, 'POST', `/v1/calls/${auth.json.reservationId}/end`, { key: pbx, json: { durationSeconds: 10, disposition: 'answered' } });
    expect(end.status).toBe(200);

    // the reused callId goes in the same group commit as new ones: its conflict must not cost them theirs
    // (the first of a burst goes alone, the next ones wait for its commit and go together)
    const attempt = (u: { identifiant: string }, callId: string) =>
      call(app, 'POST', '/v1/authorize', { key: pbx, json: { identifiant: u.identifiant, callee: MOBILE, callId } });
    const [new0, reused, new1, new2] = await Promise.all([
      attempt(others[0]!, 'new-0'),
      attempt(first, 'over-1'),
      attempt(others[1]!, 'new-1'),
      attempt(others[2]!, 'new-2'),
    ]);
    expect(reused!.status).toBe(409);
    expect(reused!.json).toMatchObject({ error: { code: 'CONFLICT' } });
    for (const res of [new0, new1, new2]) expect(res!.json).toMatchObject({ decision: 'allow', maxSeconds: 98 });
    const { db } = testDb();
    const stored = await db.selectFrom('reservations').select(['callId', 'status']).where('tenantId', '=', t.id).orderBy('callId').execute();
    expect(stored).toEqual([
      { callId: 'new-0', status: 'open' },
      { callId: 'new-1', status: 'open' },
      { callId: 'new-2', status: 'open' },
      { callId: 'over-1', status: 'rated' },
    ]);
    // the refused attempt holds nothing: 10 - 1.20 for the call leaves 8.80, i.e. 86 s at 0.2 + 6/min
    const again = await call(app, 'POST', '/v1/authorize', { key: pbx, json: { identifiant: first.identifiant, callee: MOBILE, callId: 'over-2' } });
    expect(again.json).toMatchObject({ decision: 'allow', maxSeconds: 86 });
  });

  it('answers 404 for an unknown reservation and 400 for a bad body', async () => {
    const { pbx } = await setup();
    expect((await call(app, 'POST', '/v1/calls/00000000-0000-4000-8000-000000000000/end', { key: pbx, json: { durationSeconds: 1, disposition: 'answered' } })).status).toBe(404);
    expect((await call(app, 'POST', '/v1/calls/not-a-uuid/end', { key: pbx, json: { durationSeconds: 1, disposition: 'answered' } })).status).toBe(404);
    const bad = await call(app, 'POST', '/v1/calls/00000000-0000-4000-8000-000000000000/end', { key: pbx, json: { durationSeconds: -1, disposition: 'hung' } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.details.map((d: { field: string }) => d.field).sort()).toEqual(['disposition', 'durationSeconds']);
  });
});

describe('concurrency: hundreds of simultaneous authorizations over a few users', () => {
  it('never hold more than each user has, and ending the calls leaves the reference balances', async () => {
    const { t, pbx } = await setup(30); // a 30 s call holds 0.2 + 6 × 30 / 60 = 3.2
    const { db } = testDb();
    const users = await Promise.all(['5', '7.3', '11', '0.5'].map((balance) => newUser(t.id, { balance, numbers: { 1: MOBILE } }, app)));
    const initial = new Map(users.map((u, i) => [u.id, new Decimal(['5', '7.3', '11', '0.5'][i]!)]));

    const answers = await Promise.all(
      Array.from({ length: 400 }, (_, i) => {
        const u = users[i % users.length]!;
        return call(app, 'POST', '/v1/authorize', { key: pbx, json: { identifiant: u.identifiant, callee: MOBILE, callId: `burst-${i}` } }).then((r) => ({ u, r }));
      }),
    );
    for (const { r } of answers) expect(r.status).toBe(200);
    const allowed = answers.filter((a) => a.r.json.decision === 'allow');
    expect(allowed.length).toBeGreaterThan(4);
    expect(answers.some((a) => a.r.json.reason === 'INSUFFICIENT_BALANCE')).toBe(true);

    // what the open reservations hold never exceeds what each user has
    const holds = await db
      .selectFrom('reservations')
      .select(['userId', (eb) => eb.fn.sum<string>('holdMoney').as('held'), (eb) => eb.fn.countAll<string>().as('n')])
      .where('tenantId', '=', t.id)
      .where('status', '=', 'open')
      .groupBy('userId')
      .execute();
    for (const h of holds) expect(new Decimal(h.held).lessThanOrEqualTo(initial.get(h.userId)!), `user ${h.userId} holds ${h.held}`).toBe(true);
    expect(holds.reduce((n, h) => n + Number(h.n), 0)).toBe(allowed.length);
    // and the book's own view agrees with the database
    const tb = await app.authorization.book.tenant(t.id);
    for (const h of holds) expect(tb.byUserId.get(h.userId)!.heldMoney).toBe(Math.round(Number(h.held) * 10_000));

    // every call ends, at once, after a random time within its allowance
    let seed = 7;
    const durations = allowed.map((a) => {
      seed = (seed * 48271) % 2147483647;
      return seed % (a.r.json.maxSeconds + 1);
    });
    const ends = await Promise.all(
      allowed.map((a, i) => call(app, 'POST', `/v1/calls/${a.r.json.reservationId}/end`, { key: pbx, json: { durationSeconds: durations[i], disposition: 'answered' } })),
    );
    for (const e of ends) expect(e.status).toBe(200);

    const expected = new Map(initial);
    for (const [i, a] of allowed.entries()) expected.set(a.u.id, expected.get(a.u.id)!.minus(referenceCost(durations[i]!)));
    for (const u of users) {
      const { balance, ledger } = await balanceOf(t.id, u.id);
      expect(balance.toFixed(4), `balance of ${u.identifiant}`).toBe(expected.get(u.id)!.toFixed(4));
      expect(ledger.equals(balance)).toBe(true);
      expect(balance.isNegative()).toBe(false);
      const a = tb.byUserId.get(u.id)!;
      expect(a.heldMoney).toBe(0);
      expect(a.balance).toBe(balance.times(10_000).toNumber());
    }
    const open = await db.selectFrom('reservations').select('id').where('tenantId', '=', t.id).where('status', '=', 'open').execute();
    expect(open).toHaveLength(0);
  });
});

describe('an authorized call whose records start in two months (issue 22)', () => {
  it('sent at the same time with starts months apart: rated once, through its reservation', async () => {
    const { t, pbx } = await setup();
    const u = await newUser(t.id, { balance: '10', numbers: { 1: MOBILE } }, app);
    const auth = await call(app, 'POST', '/v1/authorize', { key: pbx, json: { identifiant: u.identifiant, callee: MOBILE, callId: 'two-months' } });
    expect(auth.json.decision).toBe('allow');
    // two records of the call, far from any month's edge: their partitions' keys cannot meet, the reservation's row does
    const record = (startedAt: string) => [{ callId: 'two-months', identifiant: u.identifiant, callee: MOBILE, direction: 'out', startedAt, durationSeconds: 30, disposition: 'answered' }];
    const both = await Promise.all([
      call(app, 'POST', '/v1/cdrs', { key: pbx, json: record('2026-08-14T10:00:00+02:00') }),
      call(app, 'POST', '/v1/cdrs', { key: pbx, json: record('2026-11-14T10:00:00+01:00') }),
    ]);
    for (const b of both) expect(b.status, b.text).toBe(200);
    expect(both.map((b) => b.json.accepted).sort()).toEqual([0, 1]);
    expect(both.map((b) => b.json.duplicates).sort()).toEqual([0, 1]);
    const { sql } = testDb();
    const [n] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM cdrs WHERE tenant_id = ${t.id} AND call_id = 'two-months'`;
    expect(n!.n).toBe(1);
    const { balance, ledger } = await balanceOf(t.id, u.id);
    expect(balance.toFixed(4)).toBe(new Decimal(10).minus(referenceCost(30)).toFixed(4));
    expect(ledger.equals(balance)).toBe(true);
  });
});
