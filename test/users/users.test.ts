import { describe, expect, it } from 'vitest';
import { call, testApp, testDb } from '../support/app.js';
import { keyWithRoles, resellerKey, uniqueName, type TenantFixture } from '../support/factory.js';
import { checkedTenants, createUser, directory, ids, userCount } from './helpers.js';

const app = testApp();
const tenant = checkedTenants(app);

describe('users: create, read, change, delete', () => {
  it('creates a user with numbers in any form, shown in the tenant’s display format', async () => {
    const t = await tenant({ defaultForfaitMinutes: 120 });
    const u = await createUser(app, t, {
      fullName: '  Zoë O’Brien ',
      authorizedNumbers: ['0612345678', '06 12 34 56 79', '+33 6 12 34 56 80', '0033612345681', '33612345682', null, '', '112'],
    });
    expect(u.fullName).toBe('Zoë O’Brien');
    expect(u.authorizedNumbers).toEqual(['+33612345678', '+33612345679', '+33612345680', '+33612345681', '+33612345682', null, null, '112', null, null]);
    expect(u.forfaitMinutes).toBe(120);
    expect(u.balance).toBe('0.0000');
    expect(u.forfaitPeriod).toMatch(/^\d{4}-\d{2}$/);
    expect(u.accountStatus).toBe('enabled');
    expect(u.billingEnabled).toBe(true);
    const { db } = testDb();
    const row = await db.selectFrom('users').select('authorizedNumbers').where('id', '=', u.id).executeTakeFirstOrThrow();
    expect(row.authorizedNumbers[0]).toBe('+33612345678');

    const national = await tenant({ numberDisplay: 'national' });
    const v = await createUser(app, national, { authorizedNumbers: { '2': '+33612345678', '10': '+44 20 7946 0958' } });
    expect(v.authorizedNumbers[1]).toBe('06 12 34 56 78');
    expect(v.authorizedNumbers[9]).toBe('+44 20 7946 0958');
    expect(v.authorizedNumbers.filter((n: string | null) => n === null)).toHaveLength(8);
  });

  it('refuses bad matricules, identifiants, numbers and a balance field with 400 naming each field', async () => {
    const t = await tenant();
    const bad = await call(app, 'POST', '/v1/users', {
      key: t.adminKey,
      json: { fullName: 'A', matricule: '123', identifiant: '12345678' },
    });
    expect(bad.status).toBe(400);
    const fields = bad.json.error.details.map((d: { field: string }) => d.field);
    expect(fields).toEqual(expect.arrayContaining(['matricule', 'identifiant']));
    const number = await call(app, 'POST', '/v1/users', { key: t.adminKey, json: { fullName: 'A', ...ids(), authorizedNumbers: { '3': 'not a number' } } });
    expect(number.status).toBe(400);
    expect(number.json.error.details[0].field).toBe('authorizedNumbers.3');
    const withBalance = await call(app, 'POST', '/v1/users', { key: t.adminKey, json: { fullName: 'A', ...ids(), balance: '100' } });
    expect(withBalance.status).toBe(400);
    const eleven = await call(app, 'POST', '/v1/users', { key: t.adminKey, json: { fullName: 'A', ...ids(), authorizedNumbers: Array(11).fill(null) } });
    expect(eleven.status).toBe(400);
    expect(await userCount(t.id)).toBe(0);
  });

  it('keeps matricule and identifiant unique in the tenant (409), not across tenants', async () => {
    const t = await tenant();
    const first = await createUser(app, t);
    const dupMatricule = await call(app, 'POST', '/v1/users', { key: t.adminKey, json: { fullName: 'B', matricule: first.matricule, identifiant: ids().identifiant } });
    expect(dupMatricule.status).toBe(409);
    expect(dupMatricule.json.error.details[0].field).toBe('matricule');
    const dupIdentifiant = await call(app, 'POST', '/v1/users', { key: t.adminKey, json: { fullName: 'B', matricule: ids().matricule, identifiant: first.identifiant } });
    expect(dupIdentifiant.status).toBe(409);
    expect(dupIdentifiant.json.error.details[0].field).toBe('identifiant');
    const other = await tenant();
    await createUser(app, other, { matricule: first.matricule, identifiant: first.identifiant });
  });

  it('reads, changes (slots by object or array) and deletes; balance cannot be patched', async () => {
    const t = await tenant();
    const u = await createUser(app, t, { authorizedNumbers: ['0612345678', '0612345679'] });
    const read = await call(app, 'GET', `/v1/users/${u.id}`, { key: t.adminKey });
    expect(read.status).toBe(200);
    expect(read.json).toEqual(u);

    const patched = await call(app, 'PATCH', `/v1/users/${u.id}`, {
      key: t.adminKey,
      json: { generalState: 'présent', accountStatus: 'disabled', authorizedNumbers: { '2': null, '5': '01 23 45 67 89' } },
    });
    expect(patched.status).toBe(200);
    expect(patched.json.authorizedNumbers.slice(0, 5)).toEqual(['+33612345678', null, null, null, '+33123456789']);
    expect(patched.json.accountStatus).toBe('disabled');
    expect(new Date(patched.json.updatedAt).getTime()).toBeGreaterThanOrEqual(new Date(u.updatedAt).getTime());
    const replaced = await call(app, 'PATCH', `/v1/users/${u.id}`, { key: t.adminKey, json: { authorizedNumbers: ['0712345678'] } });
    expect(replaced.status).toBe(400); // 07 12… is not an allocated range
    const array = await call(app, 'PATCH', `/v1/users/${u.id}`, { key: t.adminKey, json: { authorizedNumbers: ['0699999999'] } });
    expect(array.json.authorizedNumbers).toEqual(['+33699999999', null, null, null, null, null, null, null, null, null]);
    const balance = await call(app, 'PATCH', `/v1/users/${u.id}`, { key: t.adminKey, json: { balance: '50' } });
    expect(balance.status).toBe(400);

    const other = await createUser(app, t);
    const taken = await call(app, 'PATCH', `/v1/users/${u.id}`, { key: t.adminKey, json: { identifiant: other.identifiant } });
    expect(taken.status).toBe(409);

    const removed = await call(app, 'DELETE', `/v1/users/${u.id}`, { key: t.adminKey });
    expect(removed.status).toBe(200);
    expect((await call(app, 'GET', `/v1/users/${u.id}`, { key: t.adminKey })).status).toBe(404);
    expect((await call(app, 'DELETE', `/v1/users/${u.id}`, { key: t.adminKey })).status).toBe(404);
    for (const [method, path, json] of [
      ['GET', '/v1/users/not-a-uuid'],
      ['GET', '/v1/users/not-a-uuid.pdf'],
      ['PATCH', '/v1/users/not-a-uuid', { fullName: 'X' }],
      ['DELETE', '/v1/users/not-a-uuid'],
      ['GET', '/v1/users/not-a-uuid/calls.csv'],
      ['GET', '/v1/users/not-a-uuid/ledger'],
      ['POST', '/v1/users/not-a-uuid/ledger', { kind: 'topup', amount: '1', idempotencyKey: 'k' }],
    ] as const) {
      const res = await call(app, method, path, { key: t.adminKey, ...(json ? { json } : {}) });
      expect([path, res.status, res.json?.error?.message]).toEqual([path, 404, 'user not found']);
    }
  });

  it('lists with search by a part of the name, or the start of a matricule or identifiant, and pages', async () => {
    const t = await tenant();
    const zoe = await createUser(app, t, { fullName: 'Zoë Lefèvre' });
    const jean = await createUser(app, t, { fullName: 'Jean Dupont' });
    await createUser(app, t, { fullName: 'Anne 100%_sure' });
    const byName = await call(app, 'GET', `/v1/users?q=${encodeURIComponent('LEFèvre')}`, { key: t.adminKey });
    expect(byName.json.items.map((u: { id: string }) => u.id)).toEqual([zoe.id]);
    const byMatricule = await call(app, 'GET', `/v1/users?q=${jean.matricule.slice(0, 13)}`, { key: t.adminKey });
    expect(byMatricule.json.items.map((u: { id: string }) => u.id)).toContain(jean.id);
    const byIdentifiant = await call(app, 'GET', `/v1/users?q=${jean.identifiant}`, { key: t.adminKey });
    expect(byIdentifiant.json.items.map((u: { id: string }) => u.id)).toEqual([jean.id]);
    const wildcard = await call(app, 'GET', `/v1/users?q=${encodeURIComponent('%_')}`, { key: t.adminKey });
    expect(wildcard.json.items).toHaveLength(1);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { json: { items: { id: string }[]; nextCursor: string | null } } = await call(app, 'GET', `/v1/users?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { key: t.adminKey });
      seen.push(...page.json.items.map((u) => u.id));
      cursor = page.json.nextCursor;
    } while (cursor);
    expect(seen.sort()).toEqual([zoe.id, jean.id, (await call(app, 'GET', '/v1/users?q=Anne', { key: t.adminKey })).json.items[0].id].sort());
  });

  it('needs directory:manage; a comptable key is refused', async () => {
    const t = await tenant();
    const comptable = await keyWithRoles(app, t, ['comptable']);
    expect((await call(app, 'GET', '/v1/users', { key: comptable.key })).status).toBe(403);
    const technicien = await keyWithRoles(app, t, ['technicien']);
    expect((await call(app, 'POST', '/v1/users', { key: technicien.key, json: { fullName: 'T', ...ids() } })).status).toBe(201);
  });
});

describe('licence limit', () => {
  async function smallTenant(maxUsers: number): Promise<TenantFixture> {
    const r = await resellerKey();
    const code = uniqueName('pt').toLowerCase();
    const pt = await call(app, 'POST', '/v1/product-types', { key: r.key, json: { code, name: code, maxUsers, monthlyFeePerUser: '1.00' } });
    expect(pt.status).toBe(201);
    return tenant({ productType: code });
  }

  it('refuses the user beyond maxUsers with 409 LICENCE_LIMIT', async () => {
    const t = await smallTenant(2);
    await createUser(app, t);
    await createUser(app, t);
    const third = await call(app, 'POST', '/v1/users', { key: t.adminKey, json: { fullName: 'C', ...ids() } });
    expect(third.status).toBe(409);
    expect(third.json.error.code).toBe('LICENCE_LIMIT');
    expect(await userCount(t.id)).toBe(2);
  });

  it('holds under concurrent creations', async () => {
    const t = await smallTenant(3);
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => call(app, 'POST', '/v1/users', { key: t.adminKey, json: { fullName: `U${i}`, ...ids() } })),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(3);
    expect(results.filter((r) => r.status === 409).every((r) => r.json.error.code === 'LICENCE_LIMIT')).toBe(true);
    expect(await userCount(t.id)).toBe(3);
  });
});

describe('user sheet', () => {
  it('GET /v1/users/{id}.pdf answers a one-page PDF; another id is 404', async () => {
    const t = await tenant();
    const u = await createUser(app, t, { fullName: 'Éloïse Garçon', authorizedNumbers: ['0612345678'] });
    const res = await app.app.request(`/v1/users/${u.id}.pdf`, { headers: { authorization: `Bearer ${t.adminKey}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/pdf');
    const pdf = Buffer.from(await res.arrayBuffer());
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    expect(pdf.toString('latin1').match(/\/Type \/Page\b/g)).toHaveLength(1);
    const missing = await call(app, 'GET', '/v1/users/00000000-0000-4000-8000-000000000000.pdf', { key: t.adminKey });
    expect(missing.status).toBe(404);
    const doc = await call(app, 'GET', '/openapi.json');
    expect(Object.keys(doc.json.paths)).toContain('/v1/users/{id}.pdf');
  });
});
