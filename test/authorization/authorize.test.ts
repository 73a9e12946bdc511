import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { createApp } from '../../api/app.js';
import { defaultConfig } from '../../api/context.js';
import { appendLedgerEntry } from '../../services/ledger/ledger.js';
import { call, testApp, testDb } from '../support/app.js';
import { newTenant, resellerKey } from '../support/factory.js';
import { newTariff, newUser, pbxKey } from '../support/accounts.js';

const app = testApp();

const MOBILE = '+33612345678';
const FIXED = '+33123456789';
const UK = '+442079460000';

/** A tenant rated with a small tariff, and its pbx key. */
async function setup(tenantFields: Record<string, unknown> = {}) {
  const r = await resellerKey();
  const tariffId = await newTariff(app, r.key, [
    '336,France mobile,mobile,6,0.2,1,1,true,,', // the SPEC §5 example: fee 0.2, 6 per minute, 1/1
    '331,France fixe,fixed,0.02,0,60,60,false,,',
  ]);
  const t = await newTenant(app, { tariffId, ...tenantFields });
  return { t, pbx: await pbxKey(app, t) };
}

const authorize = (key: string, json: Record<string, unknown>) => call(app, 'POST', '/v1/authorize', { key, json });

describe('POST /v1/authorize: the checks of SPEC §5, in order', () => {
  it('1. UNKNOWN_USER', async () => {
    const { pbx } = await setup();
    const res = await authorize(pbx, { identifiant: '0000001', callee: '0612345678' });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ decision: 'deny', reason: 'UNKNOWN_USER', maxSeconds: 0, callee: MOBILE });
  });

  it('2. TENANT_SUSPENDED before ACCOUNT_DISABLED, which comes before everything after it', async () => {
    const { t, pbx } = await setup();
    const disabled = await newUser(t.id, { accountStatus: 'disabled', balance: '10' }, app);
    expect((await authorize(pbx, { identifiant: disabled.identifiant, callee: '0612345678' })).json.reason).toBe('ACCOUNT_DISABLED');
    expect((await call(app, 'PATCH', `/v1/tenants/${t.id}`, { key: t.resellerKey, json: { status: 'suspended' } })).status).toBe(200);
    expect((await authorize(pbx, { identifiant: disabled.identifiant, callee: '0612345678' })).json.reason).toBe('TENANT_SUSPENDED');
  });

  it('3. a free number is allowed for maxCallSeconds with nothing reserved, before any number check', async () => {
    const { t, pbx } = await setup({ maxCallSeconds: 3600 });
    const broke = await newUser(t.id, {}, app); // no balance, no forfait, no authorized number
    const res = await authorize(pbx, { identifiant: broke.identifiant, callee: '112' });
    expect(res.json).toEqual({ decision: 'allow', maxSeconds: 3600, callee: '112' });
    const { db } = testDb();
    const held = await db.selectFrom('reservations').select('id').where('tenantId', '=', t.id).execute();
    expect(held).toHaveLength(0);
  });

  it('4. EMPTY_KEY for an empty speed-dial slot; a filled slot dials its number', async () => {
    const { t, pbx } = await setup();
    const u = await newUser(t.id, { balance: '10', numbers: { 2: MOBILE } }, app);
    const empty = await authorize(pbx, { identifiant: u.identifiant, key: 3 });
    expect(empty.json).toMatchObject({ decision: 'deny', reason: 'EMPTY_KEY' });
    const res = await authorize(pbx, { identifiant: u.identifiant, key: 2 });
    expect(res.json).toMatchObject({ decision: 'allow', callee: MOBILE, destination: 'France mobile', class: 'mobile', pricePerMinute: '6.0000' });
  });

  it('5. NUMBER_NOT_AUTHORIZED compares in E.164 whatever the input form', async () => {
    const { t, pbx } = await setup({ maxCallSeconds: 60 });
    const u = await newUser(t.id, { balance: '1000', numbers: { 1: MOBILE } }, app);
    expect((await authorize(pbx, { identifiant: u.identifiant, callee: '0612345679' })).json.reason).toBe('NUMBER_NOT_AUTHORIZED');
    for (const form of ['06 12 34 56 78', '+33 6 12 34 56 78', '0033612345678', '33612345678']) {
      const res = await authorize(pbx, { identifiant: u.identifiant, callee: form });
      expect(res.json.decision, form).toBe('allow');
      expect(res.json.callee).toBe(MOBILE);
    }
  });

  it('6. NO_RATE when no prefix matches, or the tenant has no tariff', async () => {
    const { t, pbx } = await setup();
    const u = await newUser(t.id, { balance: '10', numbers: { 1: UK } }, app);
    expect((await authorize(pbx, { identifiant: u.identifiant, callee: UK })).json.reason).toBe('NO_RATE');
    const bare = await newTenant(app);
    const key = await pbxKey(app, bare);
    const v = await newUser(bare.id, { balance: '10', numbers: { 1: MOBILE } }, app);
    expect((await authorize(key, { identifiant: v.identifiant, callee: MOBILE })).json.reason).toBe('NO_RATE');
  });

  it('7. DESTINATION_NOT_COVERED, FORFAIT_EXHAUSTED, INSUFFICIENT_BALANCE', async () => {
    const { t, pbx } = await setup();
    const off = await newUser(t.id, { billingEnabled: false, forfaitMinutes: 10, numbers: { 1: FIXED, 2: MOBILE } }, app);
    expect((await authorize(pbx, { identifiant: off.identifiant, callee: FIXED })).json).toMatchObject({
      decision: 'deny',
      reason: 'DESTINATION_NOT_COVERED',
      maxSeconds: 0,
    });
    const exhausted = await newUser(t.id, { billingEnabled: false, forfaitMinutes: 1, usedSeconds: 60, numbers: { 1: MOBILE } }, app);
    expect((await authorize(pbx, { identifiant: exhausted.identifiant, callee: MOBILE })).json.reason).toBe('FORFAIT_EXHAUSTED');
    const poor = await newUser(t.id, { balance: '0.2', numbers: { 1: MOBILE } }, app);
    expect((await authorize(pbx, { identifiant: poor.identifiant, callee: MOBILE })).json.reason).toBe('INSUFFICIENT_BALANCE');
    // billing off with forfait left: allowed for the forfait only
    const forfait = await newUser(t.id, { billingEnabled: false, forfaitMinutes: 2, usedSeconds: 30, numbers: { 1: MOBILE } }, app);
    expect((await authorize(pbx, { identifiant: forfait.identifiant, callee: MOBILE })).json).toMatchObject({ decision: 'allow', maxSeconds: 90 });
  });
});

describe('maxSeconds and reservations', () => {
  it('balance 10, fee 0.2, 6 per minute, 1/1 → 98 s, and the hold is durable before the answer', async () => {
    const { t, pbx } = await setup();
    const u = await newUser(t.id, { balance: '10', numbers: { 1: MOBILE } }, app);
    const sent = Date.now();
    const res = await authorize(pbx, { identifiant: u.identifiant, callee: MOBILE, callId: 'call-98' });
    const answered = Date.now();
    expect(res.json).toMatchObject({ decision: 'allow', maxSeconds: 98, lowBalance: true });
    const { db } = testDb();
    const row = await db
      .selectFrom('reservations')
      .selectAll()
      .where('tenantId', '=', t.id)
      .where('id', '=', res.json.reservationId)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ callId: 'call-98', status: 'open', maxSeconds: 98, holdForfaitSeconds: 0, userId: u.id });
    expect(row.holdMoney).toBe('10.0000'); // 0.2 + 6 × 98 / 60; 99 s would cost 10.10
    // it expires maxSeconds + 60 s after the allow, to the millisecond the book holds it until
    const hold = app.authorization.book.loaded(t.id)?.holds.get(res.json.reservationId);
    expect(hold?.expiresAt).toBeDefined();
    expect(row.expiresAt.getTime()).toBe(hold!.expiresAt);
    // decided between the request and its answer (the row's created_at is the commit's, later under load)
    expect(row.expiresAt.getTime()).toBeGreaterThanOrEqual(sent + (98 + 60) * 1000);
    expect(row.expiresAt.getTime()).toBeLessThanOrEqual(answered + (98 + 60) * 1000);
    // what is held is not available to the next call: nothing is left
    expect((await authorize(pbx, { identifiant: u.identifiant, callee: MOBILE })).json.reason).toBe('INSUFFICIENT_BALANCE');
  });

  it('the forfait pays first; lowBalance is false when enough money is left', async () => {
    const { t, pbx } = await setup({ maxCallSeconds: 600 });
    const u = await newUser(t.id, { balance: '100', forfaitMinutes: 5, numbers: { 1: MOBILE } }, app);
    const res = await authorize(pbx, { identifiant: u.identifiant, callee: MOBILE });
    // 600 s: 300 s of forfait, 300 s charged: 0.2 + 6 × 300 / 60 = 30.2
    expect(res.json).toMatchObject({ decision: 'allow', maxSeconds: 600, lowBalance: false });
    const { db } = testDb();
    const row = await db.selectFrom('reservations').selectAll().where('tenantId', '=', t.id).where('id', '=', res.json.reservationId).executeTakeFirstOrThrow();
    expect(row.holdForfaitSeconds).toBe(300);
    expect(row.holdMoney).toBe('30.2000');
  });

  it('a retried callId gets the same answer and holds once', async () => {
    const { t, pbx } = await setup();
    const u = await newUser(t.id, { balance: '100', numbers: { 1: MOBILE } }, app);
    const first = await authorize(pbx, { identifiant: u.identifiant, callee: MOBILE, callId: 'retry-1' });
    const again = await authorize(pbx, { identifiant: u.identifiant, callee: MOBILE, callId: 'retry-1' });
    expect(again.json).toEqual(first.json);
    const { db } = testDb();
    const rows = await db.selectFrom('reservations').select('id').where('tenantId', '=', t.id).execute();
    expect(rows).toHaveLength(1);
  });

  it('a retried callId gets the same answer from another server after the first one stopped', async () => {
    const { t, pbx } = await setup();
    const u = await newUser(t.id, { balance: '100', numbers: { 1: MOBILE } }, app);
    const first = testApp(); // owns the tenant's book, then stops
    const answer = await call(first, 'POST', '/v1/authorize', { key: pbx, json: { identifiant: u.identifiant, callee: MOBILE, callId: 'replay-1' } });
    expect(answer.json).toMatchObject({ decision: 'allow' });
    await first.close();
    // the next owner loads the open reservation, with the answer stored with it
    const again = await authorize(pbx, { identifiant: u.identifiant, callee: MOBILE, callId: 'replay-1' });
    expect(again.json).toEqual(answer.json);
    const { db } = testDb();
    const rows = await db.selectFrom('reservations').select(['id', 'answer']).where('tenantId', '=', t.id).execute();
    expect(rows).toHaveLength(1);
    expect(JSON.parse(rows[0]!.answer!)).toEqual(answer.json);
  });

  it('sees money given by another transaction (NOTIFY) and expires reservations after maxSeconds + 60 s', async () => {
    const { t, pbx } = await setup();
    const u = await newUser(t.id, { balance: '0', numbers: { 1: MOBILE } }, app);
    expect((await authorize(pbx, { identifiant: u.identifiant, callee: MOBILE })).json.reason).toBe('INSUFFICIENT_BALANCE');
    const { db } = testDb();
    await db.transaction().execute((trx) => appendLedgerEntry(trx, { tenantId: t.id, userId: u.id, kind: 'topup', amount: '10', idempotencyKey: 'later' }));
    let answer: { decision: string; maxSeconds: number; reservationId?: string } = { decision: 'deny', maxSeconds: 0 };
    for (let i = 0; i < 100 && answer.decision !== 'allow'; i++) {
      await new Promise((r) => setTimeout(r, 20));
      answer = (await authorize(pbx, { identifiant: u.identifiant, callee: MOBILE })).json;
    }
    expect(answer).toMatchObject({ decision: 'allow', maxSeconds: 98 });
    const released = await app.authorization.book.expire(Date.now() + 98_000 + 60_000 + 1);
    expect(released).toBeGreaterThanOrEqual(1);
    const row = await db.selectFrom('reservations').select('status').where('tenantId', '=', t.id).where('id', '=', answer.reservationId!).executeTakeFirstOrThrow();
    expect(row.status).toBe('expired');
    expect((await authorize(pbx, { identifiant: u.identifiant, callee: MOBILE })).json).toMatchObject({ decision: 'allow', maxSeconds: 98 });
  });

  it('a second server cannot take a tenant another one owns (503), so holds have one writer', async () => {
    const { t, pbx } = await setup();
    const u = await newUser(t.id, { balance: '10', numbers: { 1: MOBILE } }, app);
    expect((await authorize(pbx, { identifiant: u.identifiant, callee: MOBILE })).json.decision).toBe('allow');
    const { db, sql } = testDb();
    const second = createApp({ db, sql, logger: pino({ level: 'silent' }), config: defaultConfig });
    try {
      const res = await call(second, 'POST', '/v1/authorize', { key: pbx, json: { identifiant: u.identifiant, callee: MOBILE } });
      expect(res.status).toBe(503);
      expect(res.json.error.code).toBe('SERVICE_UNAVAILABLE');
    } finally {
      await second.close();
    }
  });

  it('answers 400 for malformed requests, naming the field', async () => {
    const { t, pbx } = await setup();
    const u = await newUser(t.id, { balance: '10', numbers: { 1: MOBILE } }, app);
    const cases: [Record<string, unknown>, string][] = [
      [{ identifiant: u.identifiant }, 'callee'],
      [{ identifiant: u.identifiant, callee: MOBILE, key: 1 }, 'callee'],
      [{ identifiant: '12345', callee: MOBILE }, 'identifiant'],
      [{ identifiant: u.identifiant, key: 11 }, 'key'],
      [{ identifiant: u.identifiant, callee: 'not a number' }, 'callee'],
    ];
    for (const [json, field] of cases) {
      const res = await authorize(pbx, json);
      expect(res.status, JSON.stringify(json)).toBe(400);
      expect(res.json.error.details.map((d: { field: string }) => d.field)).toContain(field);
    }
  });

  it('counts decisions by reason in /metrics', async () => {
    const { pbx } = await setup();
    await authorize(pbx, { identifiant: '0000002', callee: MOBILE });
    const metrics = await call(app, 'GET', '/metrics');
    expect(metrics.text).toMatch(/forfait_authorizations_total\{decision="deny",reason="UNKNOWN_USER"\} \d+/);
    expect(metrics.text).toContain('forfait_authorization_duration_seconds_bucket');
  });
});
