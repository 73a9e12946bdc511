import { describe, expect, it } from 'vitest';
import { call, testApp } from '../support/app.js';
import { forfait } from '../support/cli.js';
import { newTenant } from '../support/factory.js';

const app = testApp();

describe('forfait keys create', () => {
  it('names the roles the tenant does not have, as POST /v1/keys does, and creates a key with known ones', async () => {
    const t = await newTenant(app);
    const role = await call(app, 'POST', '/v1/roles', { key: t.adminKey, json: { name: 'standard', inherits: 'technicien', add: ['cdrs:read'] } });
    expect(role.status).toBe(201);

    const refused = await forfait(['keys', 'create', '--tenant', t.id, '--roles', 'administrateur,standard,nope,autre']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe('forfait: unknown role(s): nope, autre\n');
    const api = await call(app, 'POST', '/v1/keys', { key: t.adminKey, json: { name: 'x', roles: ['administrateur', 'standard', 'nope', 'autre'] } });
    expect(api.status).toBe(400);
    expect(api.json.error.details.map((d: { value: string }) => d.value)).toEqual(['nope', 'autre']);

    const created = await forfait(['keys', 'create', '--tenant', t.id, '--roles', 'standard,comptable', '--name', 'cli key']);
    expect(created.code, created.stderr).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^ffk_[0-9a-f]{16}_/);
    const calls = await call(app, 'GET', '/v1/cdrs', { key });
    expect(calls.status).toBe(200);
  }, 60_000);
});
