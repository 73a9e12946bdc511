import { afterEach, describe, expect, it } from 'vitest';
import { appendLedgerEntry } from '../../services/ledger/ledger.js';
import { call, testApp, testDb } from '../support/app.js';
import { keyWithRoles, type TenantFixture } from '../support/factory.js';
import { createUser, directory, expectLedgerInvariant } from './helpers.js';

const app = testApp();
const touched: string[] = [];
afterEach(async () => {
  for (const id of touched.splice(0)) await expectLedgerInvariant(id);
});

async function tenant(): Promise<TenantFixture> {
  const t = await directory(app);
  touched.push(t.id);
  return t;
}

const post = (t: TenantFixture, userId: string, json: unknown, key = t.adminKey) => call(app, 'POST', `/v1/users/${userId}/ledger`, { key, json });

describe('ledger', () => {
  it('top-ups, adjustments and refunds move the balance, each entry with its balanceAfter', async () => {
    const t = await tenant();
    const u = await createUser(app, t);
    const topup = await post(t, u.id, { kind: 'topup', amount: '10', reason: 'welcome', idempotencyKey: 'a' });
    expect(topup.status).toBe(201);
    expect(topup.json.entry).toMatchObject({ kind: 'topup', amount: '10.0000', balanceAfter: '10.0000', reason: 'welcome', idempotencyKey: 'a' });
    expect(topup.json.balance).toBe('10.0000');
    const adjust = await post(t, u.id, { kind: 'adjustment', amount: '-2.5', idempotencyKey: 'b' });
    expect(adjust.json.entry.balanceAfter).toBe('7.5000');
    const refund = await post(t, u.id, { kind: 'refund', amount: '0.0001', idempotencyKey: 'c' });
    expect(refund.json.balance).toBe('7.5001');
    const user = await call(app, 'GET', `/v1/users/${u.id}`, { key: t.adminKey });
    expect(user.json.balance).toBe('7.5001');
    // 0.1 + 0.2 in binary floating point is 0.30000000000000004: the ledger is exact
    await post(t, u.id, { kind: 'topup', amount: '0.1', idempotencyKey: 'd' });
    const exact = await post(t, u.id, { kind: 'topup', amount: '0.2', idempotencyKey: 'e' });
    expect(exact.json.balance).toBe('7.8001');
  });

  it('the same key again is the same entry (200, no double credit); another amount is 409', async () => {
    const t = await tenant();
    const u = await createUser(app, t);
    const first = await post(t, u.id, { kind: 'topup', amount: '5.00', idempotencyKey: 'k' });
    const again = await post(t, u.id, { kind: 'topup', amount: '5', idempotencyKey: 'k' });
    expect(again.status).toBe(200);
    expect(again.json.entry).toEqual(first.json.entry);
    expect(again.json.balance).toBe('5.0000');
    const other = await post(t, u.id, { kind: 'topup', amount: '6', idempotencyKey: 'k' });
    expect(other.status).toBe(409);
    expect(other.json.error.code).toBe('IDEMPOTENCY_CONFLICT');
    const otherKind = await post(t, u.id, { kind: 'refund', amount: '5', idempotencyKey: 'k' });
    expect(otherKind.status).toBe(409);
    const list = await call(app, 'GET', `/v1/users/${u.id}/ledger`, { key: t.adminKey });
    expect(list.json.items).toHaveLength(1);
  });

  it('concurrent requests with one key credit once', async () => {
    const t = await tenant();
    const u = await createUser(app, t);
    const answers = await Promise.all(Array.from({ length: 10 }, () => post(t, u.id, { kind: 'topup', amount: '3', idempotencyKey: 'same' })));
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 200)).toHaveLength(9);
    expect(new Set(answers.map((a) => a.json.entry.id)).size).toBe(1);
    const user = await call(app, 'GET', `/v1/users/${u.id}`, { key: t.adminKey });
    expect(user.json.balance).toBe('3.0000');
  });

  it('concurrent movements with different keys all count', async () => {
    const t = await tenant();
    const u = await createUser(app, t);
    await Promise.all(Array.from({ length: 20 }, (_, i) => post(t, u.id, { kind: 'topup', amount: '0.05', idempotencyKey: `k${i}` })));
    const user = await call(app, 'GET', `/v1/users/${u.id}`, { key: t.adminKey });
    expect(user.json.balance).toBe('1.0000');
  });

  it('refuses bad amounts: zero or negative top-up and refund, zero adjustment, 5 decimals, no key', async () => {
    const t = await tenant();
    const u = await createUser(app, t);
    for (const body of [
      { kind: 'topup', amount: '0', idempotencyKey: 'x1' },
      { kind: 'topup', amount: '-1', idempotencyKey: 'x2' },
      { kind: 'refund', amount: '-1', idempotencyKey: 'x3' },
      { kind: 'adjustment', amount: '0.0000', idempotencyKey: 'x4' },
      { kind: 'topup', amount: '1.00001', idempotencyKey: 'x5' },
      { kind: 'topup', amount: '1e3', idempotencyKey: 'x6' },
      { kind: 'call', amount: '-1', idempotencyKey: 'x7' },
      { kind: 'topup', amount: '1' },
    ]) {
      const res = await post(t, u.id, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    const list = await call(app, 'GET', `/v1/users/${u.id}/ledger`, { key: t.adminKey });
    expect(list.json.items).toEqual([]);
  });

  it('history is newest first and paged; comptable reads it, cannot post; a deleted user’s history stays', async () => {
    const t = await tenant();
    const u = await createUser(app, t);
    for (let i = 1; i <= 5; i++) await post(t, u.id, { kind: 'topup', amount: String(i), idempotencyKey: `p${i}` });
    const comptable = await keyWithRoles(app, t, ['comptable']);
    const page1 = await call(app, 'GET', `/v1/users/${u.id}/ledger?limit=2`, { key: comptable.key });
    expect(page1.status).toBe(200);
    expect(page1.json.items.map((e: { amount: string }) => e.amount)).toEqual(['5.0000', '4.0000']);
    const page2 = await call(app, 'GET', `/v1/users/${u.id}/ledger?limit=2&cursor=${page1.json.nextCursor}`, { key: comptable.key });
    expect(page2.json.items.map((e: { amount: string }) => e.amount)).toEqual(['3.0000', '2.0000']);
    const page3 = await call(app, 'GET', `/v1/users/${u.id}/ledger?limit=2&cursor=${page2.json.nextCursor}`, { key: comptable.key });
    expect(page3.json.items.map((e: { balanceAfter: string }) => e.balanceAfter)).toEqual(['1.0000']);
    expect(page3.json.nextCursor).toBeNull();
    expect((await post(t, u.id, { kind: 'topup', amount: '1', idempotencyKey: 'c' }, comptable.key)).status).toBe(403);

    await call(app, 'DELETE', `/v1/users/${u.id}`, { key: t.adminKey });
    const after = await call(app, 'GET', `/v1/users/${u.id}/ledger`, { key: t.adminKey });
    expect(after.json.items).toHaveLength(5);
    expect((await post(t, u.id, { kind: 'topup', amount: '1', idempotencyKey: 'late' })).status).toBe(404);
    const unknown = await call(app, 'GET', '/v1/users/00000000-0000-4000-8000-000000000000/ledger', { key: t.adminKey });
    expect(unknown.status).toBe(404);
  });

  it('appendLedgerEntry is the one verb: a call debit may take the balance below zero', async () => {
    const t = await tenant();
    const u = await createUser(app, t);
    const { db } = testDb();
    const r = await db.transaction().execute((trx) =>
      appendLedgerEntry(trx, { tenantId: t.id, userId: u.id, kind: 'call', amount: '-0.0417', reason: 'call', idempotencyKey: 'cdr-1', createdBy: 'rating' }),
    );
    expect(r.created).toBe(true);
    expect(r.balance).toBe('-0.0417');
    const again = await db.transaction().execute((trx) =>
      appendLedgerEntry(trx, { tenantId: t.id, userId: u.id, kind: 'call', amount: '-0.0417', idempotencyKey: 'cdr-1' }),
    );
    expect(again.created).toBe(false);
    expect(again.entry.id).toBe(r.entry.id);
    // the ledger is append-only in the database too
    await expect(db.updateTable('ledgerEntries').set({ amount: '0' }).where('tenantId', '=', t.id).execute()).rejects.toThrow(/immutable/);
  });
});
