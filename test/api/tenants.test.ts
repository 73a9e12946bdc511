import { describe, expect, it } from 'vitest';
import { call, testApp } from '../support/app.js';
import { newTenant, resellerKey, uniqueName } from '../support/factory.js';

const app = testApp();

describe('tenants (reseller)', () => {
  it('creates a tenant with the §2 defaults and returns its first administrateur key once', async () => {
    const { key } = await resellerKey();
    const name = uniqueName('Acme');
    const res = await call(app, 'POST', '/v1/tenants', { key, json: { name, productType: 'pro' } });
    expect(res.status).toBe(201);
    const t = res.json.tenant;
    expect(t).toMatchObject({
      name,
      productType: 'pro',
      country: 'FR',
      currency: 'EUR',
      timezone: 'Europe/Paris',
      locale: 'fr',
      numberDisplay: 'international',
      status: 'active',
      internal: false,
      maxCallSeconds: 14400,
      freeNumbers: ['112', '15', '17', '18', '114', '115', '119'],
      trialEndsAt: null,
      cdrRetentionMonths: 12,
    });
    expect(t.vatRate).toMatch(/^0\.20*$/);
    expect(t.lowBalanceThreshold).toMatch(/^1\.00*$/);
    expect(res.json.adminKey).toMatch(/^ffk_[0-9a-f]{16}_/);
    // the key works and is an administrateur of that tenant
    const keys = await call(app, 'GET', '/v1/keys', { key: res.json.adminKey });
    expect(keys.status).toBe(200);
    expect(keys.json.items).toHaveLength(1);
    expect(keys.json.items[0]).toMatchObject({ roles: ['administrateur'], principal: 'user' });
    expect(JSON.stringify(keys.json)).not.toContain(res.json.adminKey.split('_').slice(2).join('_'));
    const read = await call(app, 'GET', `/v1/tenants/${t.id}`, { key });
    expect(read.status).toBe(200);
    expect(read.json).toEqual(t);
  });

  it('takes the zone of single-zone countries and asks for one elsewhere', async () => {
    const { key } = await resellerKey();
    const be = await call(app, 'POST', '/v1/tenants', { key, json: { name: uniqueName(), productType: 'pro', country: 'BE' } });
    expect(be.status).toBe(201);
    expect(be.json.tenant).toMatchObject({ timezone: 'Europe/Brussels', locale: 'fr', freeNumbers: ['112', '100', '101'] });
    const us = await call(app, 'POST', '/v1/tenants', { key, json: { name: uniqueName(), productType: 'pro', country: 'US' } });
    expect(us.status).toBe(400);
    expect(us.json.error.details[0].field).toBe('timezone');
    const ok = await call(app, 'POST', '/v1/tenants', {
      key,
      json: { name: uniqueName(), productType: 'pro', country: 'US', timezone: 'America/Chicago', locale: 'en', currency: 'USD' },
    });
    expect(ok.status).toBe(201);
    expect(ok.json.tenant.freeNumbers).toEqual(['911']);
  });

  it('answers 400 naming each field at fault, and writes nothing', async () => {
    const { key } = await resellerKey();
    const name = uniqueName();
    const res = await call(app, 'POST', '/v1/tenants', {
      key,
      json: { name, productType: 'pro', country: 'France', vatRate: '1.5', maxCallSeconds: -1, cdrRetentionMonths: 0 },
    });
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('VALIDATION_FAILED');
    const fields = res.json.error.details.map((d: { field: string }) => d.field).sort();
    expect(fields).toEqual(['cdrRetentionMonths', 'country', 'maxCallSeconds', 'vatRate']);
    expect(res.json.error.requestId).toBeTruthy();
    const unknownType = await call(app, 'POST', '/v1/tenants', { key, json: { name, productType: 'gold' } });
    expect(unknownType.status).toBe(400);
    expect(unknownType.json.error.details[0]).toMatchObject({ field: 'productType', value: 'gold' });
    const list = await call(app, 'GET', '/v1/tenants?limit=1000', { key });
    expect(list.json.items.some((t: { name: string }) => t.name === name)).toBe(false);
    const badJson = await call(app, 'POST', '/v1/tenants', { key, body: '{"name":', headers: { 'content-type': 'application/json' } });
    expect(badJson.status).toBe(400);
    expect(badJson.json.error).toBeDefined();
  });

  it('refuses a second tenant of the same name with 409', async () => {
    const { key } = await resellerKey();
    const name = uniqueName();
    expect((await call(app, 'POST', '/v1/tenants', { key, json: { name, productType: 'pro' } })).status).toBe(201);
    const again = await call(app, 'POST', '/v1/tenants', { key, json: { name, productType: 'pro' } });
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe('CONFLICT');
  });

  it('changes a tenant, but never away from a locked product type', async () => {
    const t = await newTenant(app, { productType: 'entreprise' });
    const suspend = await call(app, 'PATCH', `/v1/tenants/${t.id}`, { key: t.resellerKey, json: { status: 'suspended', reference: 'CLI-42', cdrRetentionMonths: 36 } });
    expect(suspend.status).toBe(200);
    expect(suspend.json).toMatchObject({ status: 'suspended', reference: 'CLI-42', cdrRetentionMonths: 36 });
    const change = await call(app, 'PATCH', `/v1/tenants/${t.id}`, { key: t.resellerKey, json: { productType: 'pro' } });
    expect(change.status).toBe(409);
    expect(change.json.error.code).toBe('PRODUCT_TYPE_LOCKED');
    const unlocked = await newTenant(app, { productType: 'essentiel' });
    const up = await call(app, 'PATCH', `/v1/tenants/${unlocked.id}`, { key: t.resellerKey, json: { productType: 'entreprise' } });
    expect(up.status).toBe(200);
    expect(up.json.productType).toBe('entreprise');
    const back = await call(app, 'PATCH', `/v1/tenants/${unlocked.id}`, { key: t.resellerKey, json: { productType: 'essentiel' } });
    expect(back.status).toBe(409);
  });

  it('lists tenants page by page with a cursor', async () => {
    const { key } = await resellerKey({ newReseller: true });
    const names = [];
    for (let i = 0; i < 5; i++) {
      const name = uniqueName();
      names.push(name);
      expect((await call(app, 'POST', '/v1/tenants', { key, json: { name, productType: 'pro' } })).status).toBe(201);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { json: { items: { name: string }[]; nextCursor: string | null } } = await call(
        app,
        'GET',
        `/v1/tenants?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        { key },
      );
      expect(res.json.items.length).toBeLessThanOrEqual(2);
      seen.push(...res.json.items.map((t) => t.name));
      cursor = res.json.nextCursor;
    } while (cursor);
    expect(seen.sort()).toEqual(names.sort());
  });
});

describe('product types', () => {
  it('has the seeded catalog and takes new types', async () => {
    const { key } = await resellerKey();
    const list = await call(app, 'GET', '/v1/product-types', { key });
    expect(list.status).toBe(200);
    const byCode = Object.fromEntries(list.json.items.map((p: { code: string }) => [p.code, p]));
    expect(byCode.essentiel).toMatchObject({ maxUsers: 25, locked: false });
    expect(byCode.pro).toMatchObject({ maxUsers: 250, locked: false });
    expect(byCode.entreprise).toMatchObject({ maxUsers: 10000, locked: true });
    expect(Number(byCode.essentiel.monthlyFeePerUser)).toBe(5);
    expect(byCode.pro.monthlyFeePerUser).toMatch(/^4\.00/);
    expect(byCode.entreprise.monthlyFeePerUser).toMatch(/^3\.00/);
    const code = uniqueName('pt').toLowerCase();
    const created = await call(app, 'POST', '/v1/product-types', { key, json: { code, name: 'Test', maxUsers: 3, monthlyFeePerUser: '2.50' } });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ code, maxUsers: 3, locked: false });
    const dup = await call(app, 'POST', '/v1/product-types', { key, json: { code, name: 'Test', maxUsers: 3, monthlyFeePerUser: '2.50' } });
    expect(dup.status).toBe(409);
  });
});
