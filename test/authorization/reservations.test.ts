import { describe, expect, it } from 'vitest';
import { call, testApp, testDb } from '../support/app.js';
import { newTenant, resellerKey } from '../support/factory.js';
import { newTariff, newUser, pbxKey } from '../support/accounts.js';

const app = testApp();
const MOBILE = '+33612345678';

async function setup() {
  const r = await resellerKey();
  const tariffId = await newTariff(app, r.key, ['336,France mobile,mobile,6,0.2,1,1,false,,']);
  const t = await newTenant(app, { tariffId });
  const pbx = await pbxKey(app, t);
  // 10.00 at 6 per minute: one call holds it all
  const u = await newUser(t.id, { balance: '10', numbers: { 1: MOBILE } }, app);
  return { t, pbx, u };
}

const authorize = (key: string, identifiant: string) => call(app, 'POST', '/v1/authorize', { key, json: { identifiant, callee: '0612345678' } });

describe('reservations a person can see and release (issue 18)', () => {
  it('lists the open hold of a call never ended, releases it: nothing charged, the credit free at once, a release in the ledger history', async () => {
    const { t, pbx, u } = await setup();
    const first = await authorize(pbx, u.identifiant);
    expect(first.json).toMatchObject({ decision: 'allow' });
    const id = first.json.reservationId as string;
    expect((await authorize(pbx, u.identifiant)).json).toMatchObject({ decision: 'deny', reason: 'INSUFFICIENT_BALANCE' });

    const open = await call(app, 'GET', `/v1/reservations?status=open&userId=${u.id}`, { key: t.adminKey });
    expect(open.status, open.text).toBe(200);
    expect(open.json).toEqual({
      items: [
        {
          id,
          userId: u.id,
          callId: id,
          callee: MOBILE,
          status: 'open',
          maxSeconds: first.json.maxSeconds,
          holdForfaitSeconds: 0,
          holdMoney: expect.stringMatching(/^\d+\.\d{4}$/),
          createdAt: expect.any(String),
          expiresAt: expect.any(String),
          releasedAt: null,
        },
      ],
      nextCursor: null,
    });

    const released = await call(app, 'DELETE', `/v1/reservations/${id}`, { key: t.adminKey });
    expect(released.status, released.text).toBe(200);
    expect(released.json).toMatchObject({ reservationId: id, entry: { kind: 'release', amount: '0.0000', balanceAfter: '10.0000', userId: u.id } });
    expect(released.json.entry.reason).toContain('nothing charged');

    // the credit is free at once: the next call is allowed
    expect((await authorize(pbx, u.identifiant)).json).toMatchObject({ decision: 'allow' });
    const { db } = testDb();
    const row = await db.selectFrom('reservations').select(['status', 'releasedAt']).where('tenantId', '=', t.id).where('id', '=', id).executeTakeFirstOrThrow();
    expect(row.status).toBe('released');
    expect(row.releasedAt).not.toBeNull();
    const ledger = await call(app, 'GET', `/v1/users/${u.id}/ledger`, { key: t.adminKey });
    expect(ledger.json.items.map((e: { kind: string; amount: string }) => [e.kind, e.amount])).toEqual([
      ['release', '0.0000'],
      ['topup', '10.0000'],
    ]);
    const user = await db.selectFrom('users').select('balance').where('id', '=', u.id).executeTakeFirstOrThrow();
    expect(user.balance).toBe('10.0000');

    // once released, never twice; the list by status shows it
    const again = await call(app, 'DELETE', `/v1/reservations/${id}`, { key: t.adminKey });
    expect(again.status).toBe(409);
    expect(again.json.error.message).toContain('is released, not open');
    const closed = await call(app, 'GET', '/v1/reservations?status=released', { key: t.adminKey });
    expect(closed.json.items.map((r: { id: string }) => r.id)).toEqual([id]);
  });

  it('another tenant’s reservation is a 404, never a read or a release', async () => {
    const a = await setup();
    const b = await setup();
    const held = await authorize(a.pbx, a.u.identifiant);
    const id = held.json.reservationId as string;
    const listed = await call(app, 'GET', `/v1/reservations?userId=${a.u.id}`, { key: b.t.adminKey });
    expect(listed.status).toBe(200);
    expect(listed.json.items).toEqual([]);
    const release = await call(app, 'DELETE', `/v1/reservations/${id}`, { key: b.t.adminKey });
    expect(release.status).toBe(404);
    expect((await call(app, 'DELETE', '/v1/reservations/00000000-0000-7000-8000-000000000000', { key: a.t.adminKey })).status).toBe(404);
    expect((await call(app, 'DELETE', '/v1/reservations/not-an-id', { key: a.t.adminKey })).status).toBe(404);
    // still held for its own tenant
    expect((await authorize(a.pbx, a.u.identifiant)).json).toMatchObject({ decision: 'deny', reason: 'INSUFFICIENT_BALANCE' });
  });

  it('pages newest first, and says what is wrong with a bad filter', async () => {
    const { t, pbx } = await setup();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const v = await newUser(t.id, { balance: '10', numbers: { 1: MOBILE } }, app);
      ids.push((await authorize(pbx, v.identifiant)).json.reservationId);
    }
    const p1 = await call(app, 'GET', '/v1/reservations?status=open&limit=2', { key: t.adminKey });
    expect(p1.json.items.map((r: { id: string }) => r.id)).toEqual([ids[2], ids[1]]);
    const p2 = await call(app, 'GET', `/v1/reservations?status=open&limit=2&cursor=${p1.json.nextCursor}`, { key: t.adminKey });
    expect(p2.json).toEqual({ items: [expect.objectContaining({ id: ids[0] })], nextCursor: null });
    const bad = await call(app, 'GET', '/v1/reservations?userId=42', { key: t.adminKey });
    expect(bad.status).toBe(400);
    expect(bad.json.error.details).toEqual([{ field: 'userId', value: '42', message: "`userId` must be a user's id (a UUID): got `42`" }]);
    const noAccess = await call(app, 'GET', '/v1/reservations', { key: t.resellerKey });
    expect(noAccess.status).toBe(403);
  });
});
