import { describe, expect, it } from 'vitest';
import { call, testApp } from '../support/app.js';
import { newTenant, resellerKey } from '../support/factory.js';
import { newTariff, newUser, pbxKey } from '../support/accounts.js';

const app = testApp();

/** Raw validator words a person cannot act on. */
const RAW = /expected nonoptional|Invalid input|received undefined|Invalid option|Too (big|small)|Unrecognized key/;

describe('errors a person can act on (issue 18)', () => {
  it('every 400 says which field, what was expected and what was given, in words', async () => {
    const t = await newTenant(app);
    const u = await newUser(t.id, { balance: '1' });
    const comma = await call(app, 'POST', `/v1/users/${u.id}/ledger`, { key: t.adminKey, json: { kind: 'topup', amount: '20,00', idempotencyKey: 'k1' } });
    expect(comma.status).toBe(400);
    expect(comma.json.error.details).toEqual([{ field: 'amount', value: '20,00', message: '`amount` must use a dot as decimal separator: got `20,00`' }]);

    const missing = await call(app, 'POST', '/v1/users', { key: t.adminKey, json: { fullName: 'Zoë Martin', matricule: '20260000000001' } });
    expect(missing.status).toBe(400);
    expect(missing.json.error.details).toEqual([{ field: 'identifiant', message: '`identifiant` is required' }]);

    const kinds = await call(app, 'POST', `/v1/users/${u.id}/ledger`, { key: t.adminKey, json: { kind: 'gift', amount: 20, idempotencyKey: 'k2', colour: 'red' } });
    expect(kinds.status).toBe(400);
    expect(kinds.json.error.details).toEqual(
      expect.arrayContaining([
        { field: 'kind', value: 'gift', message: '`kind` must be one of topup, adjustment, refund: got `gift`' },
        { field: 'amount', value: '20', message: '`amount` must be text (a JSON string): got `20`' },
        { field: 'colour', message: '`colour` is not a field of this request' },
      ]),
    );

    const pbx = await pbxKey(app, t);
    const short = await call(app, 'POST', '/v1/authorize', { key: pbx, json: { identifiant: '12', callee: '0612345678' } });
    expect(short.status).toBe(400);
    expect(short.json.error.details).toEqual([{ field: 'identifiant', value: '12', message: '`identifiant` must be exactly 7 digits: got `12`' }]);

    const limit = await call(app, 'GET', '/v1/cdrs?limit=abc', { key: t.adminKey });
    expect(limit.status).toBe(400);
    expect(limit.json.error.details).toEqual([{ field: 'limit', value: 'abc', message: '`limit` must be a number: got `abc`' }]);

    for (const res of [comma, missing, kinds, short, limit]) {
      for (const d of res.json.error.details as { message: string }[]) expect(d.message).not.toMatch(RAW);
      expect(res.json.error.message).not.toMatch(RAW);
    }
  });

  it('the /docs example of POST /v1/authorize is a valid request, answered 200', async () => {
    const doc = (await call(app, 'GET', '/openapi.json')).json;
    const example = doc.components.schemas.AuthorizeRequest.example;
    expect(example).toBeDefined();
    expect('callee' in example !== 'key' in example).toBe(true);
    const r = await resellerKey();
    const tariffId = await newTariff(app, r.key, ['336,France mobile,mobile,0.2,0,60,1,false,,']);
    const t = await newTenant(app, { tariffId });
    await newUser(t.id, { identifiant: example.identifiant, balance: '10', numbers: { 1: '+33612345678' } }, app);
    const res = await call(app, 'POST', '/v1/authorize', { key: await pbxKey(app, t), json: example });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ decision: 'allow', callee: '+33612345678' });
  });
});
