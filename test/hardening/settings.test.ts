/**
 * Issue #24 (done when): a tenant's numeric settings out of their range are a
 * 400 naming the field, and nothing is written. Wave 1 stored a negative
 * lowBalanceThreshold (every authorization then answered lowBalance: false).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { call, testApp, testDb, type Answer } from '../support/app.js';
import { newTenant, resellerKey, uniqueName, type TenantFixture } from '../support/factory.js';

const app = testApp();
let t: TenantFixture;
let reseller: string;

beforeAll(async () => {
  t = await newTenant(app);
  reseller = (await resellerKey()).key;
});

function expectFieldRefused(res: Answer, field: string): void {
  expect(res.status, res.text).toBe(400);
  expect(res.json.error.code).toBe('VALIDATION_FAILED');
  expect(res.json.error.requestId).toEqual(expect.any(String));
  expect(res.json.error.details.map((d: { field?: string }) => d.field)).toContain(field);
}

const outOfRange: [string, unknown][] = [
  ['lowBalanceThreshold', '-1'],
  ['lowBalanceThreshold', '-0.0001'],
  ['lowBalanceThreshold', 5],
  ['maxCallSeconds', 0],
  ['maxCallSeconds', -60],
  ['maxCallSeconds', 1.5],
  ['defaultForfaitMinutes', -1],
  ['vatRate', '-0.2'],
  ['vatRate', 1.5],
];

describe('numeric tenant settings out of range are a 400 naming the field (issue #24)', () => {
  it('on creation: refused, no tenant created', async () => {
    const { db } = testDb();
    for (const [field, value] of outOfRange) {
      const name = uniqueName('range');
      const res = await call(app, 'POST', '/v1/tenants', { key: reseller, json: { name, productType: 'essentiel', [field]: value } });
      expectFieldRefused(res, field);
      expect(await db.selectFrom('tenants').select('id').where('name', '=', name).executeTakeFirst()).toBeUndefined();
    }
  });

  it('on change: refused, the tenant as it was', async () => {
    const before = (await call(app, 'GET', `/v1/tenants/${t.id}`, { key: t.resellerKey })).json;
    for (const [field, value] of outOfRange) {
      expectFieldRefused(await call(app, 'PATCH', `/v1/tenants/${t.id}`, { key: t.resellerKey, json: { [field]: value } }), field);
    }
    expect((await call(app, 'GET', `/v1/tenants/${t.id}`, { key: t.resellerKey })).json).toEqual(before);
  });

  it('zero and positive thresholds are taken as written', async () => {
    for (const value of ['0', '2.5']) {
      const res = await call(app, 'PATCH', `/v1/tenants/${t.id}`, { key: t.resellerKey, json: { lowBalanceThreshold: value } });
      expect(res.status, res.text).toBe(200);
      expect(Number(res.json.lowBalanceThreshold)).toBe(Number(value));
    }
  });
});
