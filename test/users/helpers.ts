import { afterEach, expect } from 'vitest';
import type { App } from '../../api/app.js';
import { call, testDb } from '../support/app.js';
import { newTenant, type TenantFixture } from '../support/factory.js';
import { slotsFromDb } from '../../services/users/fields.js';

let counter = 0;
/** A fresh 14-digit matricule and 7-digit identifiant, unique in the run. */
export function ids(): { matricule: string; identifiant: string } {
  counter++;
  const base = (process.pid % 1000) * 100_000 + counter;
  return { matricule: String(20_000_000_000_000 + base).padStart(14, '0'), identifiant: String(1_000_000 + (base % 9_000_000)).padStart(7, '0') };
}

export async function directory(app: App, fields: Record<string, unknown> = {}): Promise<TenantFixture> {
  return newTenant(app, fields);
}

/** Fresh tenants, each checked against the ledger invariant after the test that made it. */
export function checkedTenants(app: App): (fields?: Record<string, unknown>) => Promise<TenantFixture> {
  const touched: string[] = [];
  afterEach(async () => {
    for (const id of touched.splice(0)) await expectLedgerInvariant(id);
  });
  return async (fields = {}) => {
    const t = await directory(app, fields);
    touched.push(t.id);
    return t;
  };
}

export async function createUser(app: App, t: TenantFixture, fields: Record<string, unknown> = {}) {
  const res = await call(app, 'POST', '/v1/users', { key: t.adminKey, json: { fullName: 'Zoë Martin', ...ids(), ...fields } });
  if (res.status !== 201) throw new Error(`user creation failed: ${res.status} ${res.text}`);
  return res.json;
}

/** One CSV line of the portal's format: name, matricule, identifiant, 10 numbers, then optional fields. */
export function line(name: string, matricule: string, identifiant: string, numbers: string[] = [], extra: string[] = [], sep = ','): string {
  const slots = Array.from({ length: 10 }, (_, i) => numbers[i] ?? '');
  return [name, matricule, identifiant, ...slots, ...extra].join(sep);
}

export async function importCsv(app: App, t: TenantFixture, csv: string, query: string) {
  return call(app, 'POST', `/v1/users/import?${query}`, { key: t.adminKey, body: csv, headers: { 'content-type': 'text/csv' } });
}

/** Every column of every user of the tenant (balance included), in matricule order. */
export async function dumpDirectory(tenantId: string) {
  const { db } = testDb();
  const rows = await db
    .selectFrom('users')
    .select(['id', 'fullName', 'matricule', 'identifiant', 'generalState', 'accountStatus', 'forfaitMinutes', 'forfaitPeriod', 'usedSeconds', 'totalCallSeconds', 'balance', 'billingEnabled', 'authorizedNumbers', 'createdAt'])
    .where('tenantId', '=', tenantId)
    .orderBy('matricule')
    .execute();
  return rows.map((r) => ({ ...r, authorizedNumbers: slotsFromDb(r.authorizedNumbers) }));
}

export async function userCount(tenantId: string): Promise<number> {
  return (await dumpDirectory(tenantId)).length;
}

/**
 * The ledger invariant: every user's balance is the sum of its entries, and
 * each entry's balanceAfter is the previous one plus its amount.
 */
export async function expectLedgerInvariant(tenantId: string): Promise<void> {
  const { sql } = testDb();
  const wrongBalances = await sql`
    SELECT u.id, u.balance, coalesce(sum(l.amount), 0) AS total
    FROM users u LEFT JOIN ledger_entries l ON l.tenant_id = u.tenant_id AND l.user_id = u.id
    WHERE u.tenant_id = ${tenantId}
    GROUP BY u.id, u.balance
    HAVING u.balance <> coalesce(sum(l.amount), 0)`;
  expect(wrongBalances, 'users whose balance is not the sum of their ledger').toEqual([]);
  const brokenChain = await sql`
    SELECT id FROM (
      SELECT id, balance_after, amount,
             coalesce(lag(balance_after) OVER (PARTITION BY user_id ORDER BY id), 0) AS previous
      FROM ledger_entries WHERE tenant_id = ${tenantId}) e
    WHERE balance_after <> previous + amount`;
  expect(brokenChain, 'entries whose balanceAfter is not the previous balance plus the amount').toEqual([]);
}
