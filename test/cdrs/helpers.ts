import { randomInt } from 'node:crypto';
import { expect } from 'vitest';
import type { App } from '../../api/app.js';
import { call, testDb } from '../support/app.js';
import { newTenant, resellerKey, type TenantFixture } from '../support/factory.js';
import { newUser } from '../support/accounts.js';

/**
 * Rates of the CDR tests. 336 is SPEC §4's first example (fee 0.4, 0.20 then
 * 0.10 per minute, 60/1: 20 s → 0.6000, 85 s → 0.6417, 120 s → 0.7000); 337 the
 * second (0.05 per minute, 30/6: 45 s bills 48 s, 0.0400). 33 (fixed) is the
 * only forfait-eligible rate.
 */
export const TARIFF_CSV = `prefix,destination,class,price_per_minute,connection_fee,first_increment,next_increment,forfait_eligible,next_price_per_minute,valid_from
33,France fixe,fixed,0.06,0,60,60,true,,
336,France mobile,mobile,0.20,0.40,60,1,false,0.10,
337,France mobile 7,mobile,0.05,0,30,6,false,,
44,Royaume-Uni,international,0.50,0,1,1,false,,
`;

export async function putTariff(app: App, csv: string, id?: string): Promise<{ id: string; resellerKey: string }> {
  const r = await resellerKey();
  const tariffId = id ?? `cdr-${Date.now()}-${randomInt(1e9)}`;
  const res = await call(app, 'PUT', `/v1/tariffs/${tariffId}`, { key: r.key, body: csv, headers: { 'content-type': 'text/csv' } });
  if (res.status !== 200) throw new Error(`tariff upload failed: ${res.status} ${res.text}`);
  return { id: tariffId, resellerKey: r.key };
}

/** A tenant in Paris with the test tariff. */
export async function cdrTenant(app: App, fields: Record<string, unknown> = {}): Promise<TenantFixture & { tariffId: string }> {
  const tariff = await putTariff(app, TARIFF_CSV);
  const t = await newTenant(app, { tariffId: tariff.id, country: 'FR', timezone: 'Europe/Paris', ...fields });
  return { ...t, tariffId: tariff.id };
}

/** A user inserted directly, its money given through the ledger (so balance = sum of ledger). */
export const cdrUser = newUser;

export interface Account {
  balance: string;
  ledgerSum: string;
  usedSeconds: number;
  totalCallSeconds: string;
}

/** The user's balance, the sum of its ledger, and its counters. */
export async function account(tenantId: string, userId: string): Promise<Account> {
  const { sql } = testDb();
  const [row] = await sql<Account[]>`
    SELECT u.balance::text AS balance, COALESCE((SELECT sum(amount) FROM ledger_entries l WHERE l.tenant_id = u.tenant_id AND l.user_id = u.id), 0)::numeric(20,4)::text AS "ledgerSum",
           u.used_seconds AS "usedSeconds", u.total_call_seconds::text AS "totalCallSeconds"
      FROM users u WHERE u.tenant_id = ${tenantId} AND u.id = ${userId}`;
  return row!;
}

/** Every ledger entry of a tenant whose balance_after does not follow from the previous entry. */
export async function brokenLedgerChains(tenantId: string): Promise<number> {
  const { sql } = testDb();
  const [row] = await sql<{ n: string }[]>`
    SELECT count(*)::text AS n FROM (
      SELECT balance_after, sum(amount) OVER (PARTITION BY user_id ORDER BY id) AS running FROM ledger_entries WHERE tenant_id = ${tenantId}
    ) x WHERE balance_after <> running`;
  return Number(row!.n);
}

export async function cdrCount(tenantId: string): Promise<number> {
  const { sql } = testDb();
  const [row] = await sql<{ n: string }[]>`SELECT count(*)::text AS n FROM cdrs WHERE tenant_id = ${tenantId}`;
  return Number(row!.n);
}

export function cdr(callId: string, identifiant: string, callee: string, durationSeconds: number, startedAt = '2026-11-03T10:00:00+01:00', extra: Record<string, unknown> = {}) {
  return { callId, identifiant, caller: '+33142000000', callee, direction: 'out', startedAt, durationSeconds, disposition: durationSeconds > 0 ? 'answered' : 'no_answer', ...extra };
}

/**
 * After concurrent batches: one `call` entry per CDR with a cost, and for each
 * user its balance = its ledger = `start` − the cost of its CDRs, its used
 * seconds = their forfait seconds, no broken balance chain. The accounts, for
 * further checks.
 */
export async function expectAccountsFollowCdrs(tenantId: string, userIds: readonly string[], start: string): Promise<Account[]> {
  const { sql } = testDb();
  const [calls] = await sql<{ n: string; cdrs: string }[]>`
    SELECT count(*)::text AS n, count(DISTINCT cdr_id)::text AS cdrs FROM ledger_entries WHERE tenant_id = ${tenantId} AND kind = 'call'`;
  expect(calls!.n).toBe(calls!.cdrs);
  const accounts: Account[] = [];
  for (const userId of userIds) {
    const a = await account(tenantId, userId);
    expect(a.ledgerSum).toBe(a.balance);
    const [sum] = await sql<{ forfait: string; ok: boolean }[]>`
      SELECT COALESCE(sum(forfait_seconds), 0)::text AS forfait, (${start}::numeric - COALESCE(sum(cost), 0)) = ${a.balance}::numeric AS ok
        FROM cdrs WHERE tenant_id = ${tenantId} AND user_id = ${userId}`;
    expect(Number(sum!.forfait)).toBe(a.usedSeconds);
    expect(sum!.ok).toBe(true);
    accounts.push(a);
  }
  expect(await brokenLedgerChains(tenantId)).toBe(0);
  return accounts;
}
