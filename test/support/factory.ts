import { randomBytes } from 'node:crypto';
import { insertKey } from '../../services/access/access.js';
import { defaultReseller } from '../../services/access/bootstrap.js';
import type { App } from '../../api/app.js';
import { call, testDb } from './app.js';

export function uniqueName(prefix = 'T'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/** A reseller key of the default reseller, or of a brand-new reseller. */
export async function resellerKey(options: { newReseller?: boolean } = {}): Promise<{ key: string; resellerId: string }> {
  const { db } = testDb();
  let resellerId: string;
  if (options.newReseller) {
    resellerId = (await db.insertInto('resellers').values({ name: uniqueName('reseller') }).returning('id').executeTakeFirstOrThrow()).id;
  } else {
    resellerId = await defaultReseller(db);
  }
  const { key } = await insertKey(db, { principal: 'reseller', name: 'test', resellerId });
  return { key, resellerId };
}

export interface TenantFixture {
  id: string;
  adminKey: string;
  resellerKey: string;
  tenant: any;
}

/** A fresh tenant provisioned through the API, as a reseller would. */
export async function newTenant(app: App, fields: Record<string, unknown> = {}): Promise<TenantFixture> {
  const r = await resellerKey();
  const res = await call(app, 'POST', '/v1/tenants', {
    key: r.key,
    json: { name: uniqueName('tenant'), productType: 'essentiel', ...fields },
  });
  if (res.status !== 201) throw new Error(`tenant creation failed: ${res.status} ${res.text}`);
  return { id: res.json.tenant.id, adminKey: res.json.adminKey, resellerKey: r.key, tenant: res.json.tenant };
}

/** A key of the tenant with the given roles, made through the API. */
export async function keyWithRoles(app: App, t: TenantFixture, roles: string[]): Promise<{ id: string; key: string }> {
  const res = await call(app, 'POST', '/v1/keys', { key: t.adminKey, json: { name: uniqueName('key'), roles } });
  if (res.status !== 201) throw new Error(`key creation failed: ${res.status} ${res.text}`);
  return res.json;
}

/** A key that holds no permission at all (a custom role removing everything). */
export async function powerlessKey(app: App, t: TenantFixture): Promise<string> {
  const name = uniqueName('nothing');
  const res = await call(app, 'POST', '/v1/roles', {
    key: t.adminKey,
    json: { name, inherits: 'acheteur', remove: ['prices:read'] },
  });
  if (res.status !== 201) throw new Error(`role creation failed: ${res.status} ${res.text}`);
  return (await keyWithRoles(app, t, [name])).key;
}
