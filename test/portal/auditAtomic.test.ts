import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../api/app.js';
import { call, testApp, testDb } from '../support/app.js';
import { resellerKey, uniqueName } from '../support/factory.js';
import { TARIFF_CSV, cdr } from '../cdrs/helpers.js';
import { freshMac } from '../devices/helpers.js';

/**
 * Issue 20: each audit row is written in the transaction of the change it
 * records. An audit insert that fails (a trigger of this test refuses the
 * rows of its own reseller) rolls the change back; a change that fails leaves
 * no audit row.
 */

const { db } = testDb();
const tag = randomBytes(4).toString('hex');
const fn = `audit_refused_${tag}`;
let app: App;
let reseller: { key: string; resellerId: string };
let tenantId: string;
let admin: string;
let pbx: string;
let user: { id: string; identifiant: string };

const csv = (key: string, method: string, path: string, body: string) => call(app, method, path, { key, body, headers: { 'content-type': 'text/csv' } });

async function auditRows(): Promise<number> {
  const r = await db.selectFrom('auditEvents').select((eb) => eb.fn.countAll<string>().as('n')).where('resellerId', '=', reseller.resellerId).executeTakeFirstOrThrow();
  return Number(r.n);
}

/** While it runs, every audit insert of this test's reseller fails. */
async function withAuditRefused<T>(fn2: () => Promise<T>): Promise<T> {
  await sql
    .raw(
      `CREATE TRIGGER ${fn} BEFORE INSERT ON audit_events FOR EACH ROW WHEN (NEW.reseller_id = '${reseller.resellerId}') EXECUTE FUNCTION ${fn}()`,
    )
    .execute(db);
  try {
    return await fn2();
  } finally {
    await sql.raw(`DROP TRIGGER ${fn} ON audit_events`).execute(db);
  }
}

beforeAll(async () => {
  app = testApp();
  reseller = await resellerKey({ newReseller: true });
  await sql.raw(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit refused by the test'; END $$`).execute(db);
  const tariff = await csv(reseller.key, 'PUT', `/v1/tariffs/atomic-${tag}`, TARIFF_CSV);
  expect(tariff.status, tariff.text).toBe(200);
  const t = await call(app, 'POST', '/v1/tenants', { key: reseller.key, json: { name: uniqueName('atomic'), productType: 'pro', tariffId: `atomic-${tag}`, timezone: 'Europe/Paris' } });
  tenantId = t.json.tenant.id;
  admin = t.json.adminKey;
  pbx = (await call(app, 'POST', '/v1/keys', { key: admin, json: { name: 'pbx', principal: 'pbx' } })).json.key;
  const u = await call(app, 'POST', '/v1/users', {
    key: admin,
    json: { fullName: 'Ana Lima', identifiant: '7100001', matricule: '71000017100001', authorizedNumbers: { '1': '+33612345678' } },
  });
  expect(u.status, u.text).toBe(201);
  user = { id: u.json.id, identifiant: '7100001' };
  await call(app, 'POST', `/v1/users/${user.id}/ledger`, { key: admin, json: { kind: 'topup', amount: '50', idempotencyKey: 'start' } });
});
afterAll(async () => {
  await app?.close();
  await sql.raw(`DROP FUNCTION IF EXISTS ${fn}()`).execute(db);
});

/** What the changes below could move, read whole. */
async function state() {
  const [u] = await db.selectFrom('users').select(['fullName', 'balance']).where('id', '=', user.id).execute();
  const count = async (table: 'cdrs' | 'ledgerEntries' | 'devices' | 'apiKeys' | 'sites', col: 'tenantId' = 'tenantId') =>
    Number((await db.selectFrom(table).select((eb) => eb.fn.countAll<string>().as('n')).where(col, '=', tenantId).executeTakeFirstOrThrow()).n);
  const rates = await db.selectFrom('rates').select(['prefix', 'pricePerMinute']).where('tariffId', '=', `atomic-${tag}`).orderBy('prefix').execute();
  const reservations = await db.selectFrom('reservations').select(['id', 'status']).where('tenantId', '=', tenantId).orderBy('id').execute();
  const tenant = await db.selectFrom('tenants').select(['notes']).where('id', '=', tenantId).executeTakeFirstOrThrow();
  return {
    user: u,
    tenant,
    cdrs: await count('cdrs'),
    ledger: await count('ledgerEntries'),
    devices: await count('devices'),
    keys: await count('apiKeys'),
    sites: await count('sites'),
    rates,
    reservations,
  };
}

describe('an audit row and its change commit together', () => {
  it('an audit insert that fails rolls the change back: a 500, and the database as it was', async () => {
    const allowed = await call(app, 'POST', '/v1/authorize', { key: pbx, json: { identifiant: user.identifiant, callee: '+33612345678', callId: `r-${tag}` } });
    expect(allowed.json, allowed.text).toMatchObject({ decision: 'allow' });
    const site = await call(app, 'POST', '/v1/sites', { key: admin, json: { name: 'Paris' } });
    expect(site.status, site.text).toBe(201);
    const spare = await call(app, 'POST', '/v1/keys', { key: admin, json: { name: 'spare', roles: ['comptable'] } });
    const before = await state();
    const rows = await auditRows();
    const changes: [string, () => Promise<unknown>][] = [
      ['user update', () => call(app, 'PATCH', `/v1/users/${user.id}`, { key: admin, json: { fullName: 'Changed' } })],
      ['top-up', () => call(app, 'POST', `/v1/users/${user.id}/ledger`, { key: admin, json: { kind: 'topup', amount: '5', idempotencyKey: 'refused' } })],
      ['CDRs', () => call(app, 'POST', '/v1/cdrs', { key: admin, json: [cdr(`c-${tag}`, user.identifiant, '+33612345678', 60, '2026-01-12T10:00:00+01:00')] })],
      ['tariff replace', () => csv(reseller.key, 'PUT', `/v1/tariffs/atomic-${tag}`, TARIFF_CSV.replace('0.20', '0.30'))],
      ['tenant update', () => call(app, 'PATCH', `/v1/tenants/${tenantId}`, { key: reseller.key, json: { notes: 'changed' } })],
      ['key create', () => call(app, 'POST', '/v1/keys', { key: admin, json: { name: 'refused', roles: ['comptable'] } })],
      ['key revoke', () => call(app, 'DELETE', `/v1/keys/${spare.json.id}`, { key: admin })],
      ['reservation release', () => call(app, 'DELETE', `/v1/reservations/${allowed.json.reservationId}`, { key: admin })],
      ['site create', () => call(app, 'POST', '/v1/sites', { key: admin, json: { name: 'Lyon' } })],
      ['device create', () => call(app, 'POST', '/v1/devices', { key: admin, json: { mac: freshMac(), deviceType: 'none', site: 'Paris' } })],
    ];
    await withAuditRefused(async () => {
      for (const [what, change] of changes) {
        const res = (await change()) as { status: number; json: { error?: { code: string } } };
        // the device has no type: refused before its audit row (a 400), like any change that fails
        expect(res.status, what).toBeGreaterThanOrEqual(what === 'device create' ? 400 : 500);
        expect(res.json.error, what).toBeDefined();
      }
    });
    expect(await state()).toEqual(before);
    expect(await auditRows()).toBe(rows);
    // and once the audit table takes rows again, the same change goes through with its row
    const ok = await call(app, 'PATCH', `/v1/users/${user.id}`, { key: admin, json: { fullName: 'Changed' } });
    expect(ok.status, ok.text).toBe(200);
    expect(await auditRows()).toBe(rows + 1);
  });

  it('a change that fails leaves no audit row, even one written before the failure in its transaction', async () => {
    const rows = await auditRows();
    // the users import writes its audit row before its users: a user refused by the database takes the row with it
    const refuse = `users_refused_${tag}`;
    await sql.raw(`CREATE FUNCTION ${refuse}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'user refused by the test'; END $$`).execute(db);
    await sql.raw(`CREATE TRIGGER ${refuse} BEFORE INSERT ON users FOR EACH ROW WHEN (NEW.tenant_id = '${tenantId}') EXECUTE FUNCTION ${refuse}()`).execute(db);
    try {
      const line = ['Imported', '71000027100002', '7100002', ...Array(10).fill('')].join(';');
      const res = await csv(admin, 'POST', '/v1/users/import?mode=append', line);
      expect(res.status, res.text).toBe(500);
    } finally {
      await sql.raw(`DROP TRIGGER ${refuse} ON users`).execute(db);
      await sql.raw(`DROP FUNCTION ${refuse}()`).execute(db);
    }
    // refused by the API before any write: no row either
    const bad = await call(app, 'PATCH', `/v1/users/${user.id}`, { key: admin, json: { identifiant: '12' } });
    expect(bad.status).toBe(400);
    const conflict = await call(app, 'POST', '/v1/roles', { key: admin, json: { name: 'comptable', inherits: 'comptable' } });
    expect(conflict.status).toBe(409);
    expect(await auditRows()).toBe(rows);
  });
});
