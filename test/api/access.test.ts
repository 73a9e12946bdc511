import { describe, expect, it } from 'vitest';
import { call, testApp } from '../support/app.js';
import { keyWithRoles, newTenant, powerlessKey, uniqueName } from '../support/factory.js';

const app = testApp();

describe('keys and roles', () => {
  it('gives each default role its permissions', async () => {
    const t = await newTenant(app);
    const roles = await call(app, 'GET', '/v1/roles', { key: t.adminKey });
    expect(roles.status).toBe(200);
    const byName = Object.fromEntries(roles.json.items.map((r: { name: string; permissions: string[] }) => [r.name, r.permissions]));
    expect(byName.administrateur).toContain('access:manage');
    expect(byName.administrateur).toContain('pbx:authorize');
    expect(byName.comptable).toEqual(expect.arrayContaining(['invoices:read', 'invoices:run', 'cdrs:read', 'prices:read']));
    expect(byName.comptable).not.toContain('directory:manage');
    expect(byName.technicien).toEqual(expect.arrayContaining(['directory:manage', 'directory:import', 'devices:manage']));
    expect(byName.acheteur).toEqual(['prices:read']);
  });

  it('a comptable key cannot manage keys; a custom role inheriting it with access:manage can', async () => {
    const t = await newTenant(app);
    const comptable = await keyWithRoles(app, t, ['comptable']);
    expect((await call(app, 'GET', '/v1/keys', { key: comptable.key })).status).toBe(403);
    const name = uniqueName('chef-comptable');
    const role = await call(app, 'POST', '/v1/roles', { key: t.adminKey, json: { name, inherits: 'comptable', add: ['access:manage'] } });
    expect(role.status).toBe(201);
    expect(role.json.permissions).toContain('access:manage');
    expect(role.json.permissions).toContain('invoices:read');
    const chef = await keyWithRoles(app, t, [name]);
    expect((await call(app, 'GET', '/v1/keys', { key: chef.key })).status).toBe(200);
    // but it cannot mint a key above itself
    const escalate = await call(app, 'POST', '/v1/keys', { key: chef.key, json: { name: 'x', roles: ['administrateur'] } });
    expect(escalate.status).toBe(403);
    expect(escalate.json.error.message).toContain('directory:manage');
    const dup = await call(app, 'POST', '/v1/roles', { key: t.adminKey, json: { name, inherits: 'acheteur' } });
    expect(dup.status).toBe(409);
  });

  it('a role removing every permission leaves a key that gets 403 everywhere', async () => {
    const t = await newTenant(app);
    const key = await powerlessKey(app, t);
    expect((await call(app, 'GET', '/v1/roles', { key })).status).toBe(403);
  });

  it('creates a pbx key with only pbx:authorize and cdrs:write', async () => {
    const t = await newTenant(app);
    const res = await call(app, 'POST', '/v1/keys', { key: t.adminKey, json: { name: 'asterisk-1', principal: 'pbx' } });
    expect(res.status).toBe(201);
    expect((await call(app, 'GET', '/v1/keys', { key: res.json.key })).status).toBe(403);
    const list = await call(app, 'GET', '/v1/keys', { key: t.adminKey });
    expect(list.json.items.find((k: { id: string }) => k.id === res.json.id)).toMatchObject({ principal: 'pbx', name: 'asterisk-1' });
  });

  it('refuses unknown roles with 400, and revoked keys with 401', async () => {
    const t = await newTenant(app);
    const bad = await call(app, 'POST', '/v1/keys', { key: t.adminKey, json: { name: 'x', roles: ['boss'] } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.details[0]).toMatchObject({ field: 'roles', value: 'boss' });
    const k = await keyWithRoles(app, t, ['administrateur']);
    expect((await call(app, 'GET', '/v1/keys', { key: k.key })).status).toBe(200);
    const revoke = await call(app, 'DELETE', `/v1/keys/${k.id}`, { key: t.adminKey });
    expect(revoke.status).toBe(200);
    expect(revoke.json.revokedAt).toBeTruthy();
    const after = await call(app, 'GET', '/v1/keys', { key: k.key });
    expect(after.status).toBe(401);
    expect(after.json.error.code).toBe('UNAUTHORIZED');
  });

  it('answers 401 without a key, with a malformed one and with a wrong secret', async () => {
    const t = await newTenant(app);
    expect((await call(app, 'GET', '/v1/keys')).status).toBe(401);
    expect((await call(app, 'GET', '/v1/keys', { key: 'hello' })).status).toBe(401);
    const [prefix, id] = t.adminKey.split('_');
    const forged = `${prefix}_${id}_${'A'.repeat(43)}`;
    const res = await call(app, 'GET', '/v1/keys', { key: forged });
    expect(res.status).toBe(401);
    expect(res.json.error.requestId).toBeTruthy();
  });
});
