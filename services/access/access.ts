import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db, Trx } from '../../db/connection.js';
import type { ApiKey, PrincipalKind } from '../../db/schema.js';
import { ForbiddenError, NotFoundError, ValidationError, ConflictError } from '../shared/errors.js';
import { actorOf, recordAudit } from '../audit/audit.js';

export const permissions = [
  'invoices:read',
  'invoices:run',
  'cdrs:read',
  'cdrs:write',
  'indicators:read',
  'prices:read',
  'tariffs:manage',
  'directory:manage',
  'directory:import',
  'balances:manage',
  'access:manage',
  'devices:manage',
  'pbx:authorize',
] as const;
export type Permission = (typeof permissions)[number];

export const defaultRoleNames = ['administrateur', 'acheteur', 'comptable', 'technicien'] as const;
export type DefaultRoleName = (typeof defaultRoleNames)[number];

// The operator portal's roles. administrateur has every tenant permission;
// the others follow the portal's descriptions (SPEC §2.1).
export const defaultRoles: Record<DefaultRoleName, readonly Permission[]> = {
  administrateur: permissions,
  acheteur: ['prices:read'],
  comptable: ['invoices:read', 'invoices:run', 'cdrs:read', 'prices:read', 'indicators:read'],
  technicien: ['directory:manage', 'directory:import', 'devices:manage'],
};

export const pbxPermissions: readonly Permission[] = ['pbx:authorize', 'cdrs:write'];

/** A person signed in to the portal (services/people/): set on the principal of a session, absent on a key's. */
export interface SignedInPerson {
  id: string;
  email: string;
}

/**
 * Who acts: a key, or a person's session (then `keyId` is `person:<id>`, what
 * the createdBy columns record, and `person` says who).
 */
export type Principal =
  | { kind: 'reseller'; keyId: string; resellerId: string; person?: SignedInPerson }
  | {
      kind: 'tenant';
      keyId: string;
      tenantId: string;
      pbx: boolean;
      permissions: ReadonlySet<Permission>;
      person?: SignedInPerson;
    };

export function isPermission(p: string): p is Permission {
  return (permissions as readonly string[]).includes(p);
}
export function isDefaultRole(r: string): r is DefaultRoleName {
  return (defaultRoleNames as readonly string[]).includes(r);
}

// ---- keys ----------------------------------------------------------------

const KEY_PREFIX = 'ffk';

/**
 * A key is `ffk_<id>_<secret>`: the id finds the row, the secret (256 random
 * bits) is checked against its SHA-256 in constant time. A slow password hash
 * buys nothing for 256-bit random secrets and would cost every PBX request.
 */
export function newKey(): { id: string; secret: string; key: string; hash: Buffer } {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, secret, key: `${KEY_PREFIX}_${id}_${secret}`, hash: hashSecret(secret) };
}

export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

export function splitKey(key: string): { id: string; secret: string } | undefined {
  const m = /^ffk_([0-9a-f]{16})_([A-Za-z0-9_-]{20,200})$/.exec(key);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

export function secretMatches(secret: string, hash: Buffer): boolean {
  const h = hashSecret(secret);
  return h.length === hash.length && timingSafeEqual(h, hash);
}

/** The names among `roles` that are neither a default role nor one of the tenant's custom roles, in order. */
export async function unknownRoles(db: Db | Trx, tenantId: string, roles: readonly string[]): Promise<string[]> {
  const custom = roles.filter((r) => !isDefaultRole(r));
  if (custom.length === 0) return [];
  const known = await db.selectFrom('roles').select('name').where('tenantId', '=', tenantId).where('name', 'in', custom).execute();
  return custom.filter((r) => !known.some((k) => k.name === r));
}

/** Permissions of a set of role names in a tenant (default or custom roles). */
export async function permissionsOfRoles(db: Db | Trx, tenantId: string, roles: readonly string[]): Promise<Set<Permission>> {
  const result = new Set<Permission>();
  const custom = roles.filter((r) => !isDefaultRole(r));
  const rows = custom.length
    ? await db.selectFrom('roles').selectAll().where('tenantId', '=', tenantId).where('name', 'in', custom).execute()
    : [];
  for (const r of roles) {
    if (isDefaultRole(r)) {
      for (const p of defaultRoles[r]) result.add(p);
      continue;
    }
    const row = rows.find((x) => x.name === r);
    if (!row || !isDefaultRole(row.inherits)) continue; // a deleted role grants nothing
    const set = new Set<Permission>(defaultRoles[row.inherits]);
    for (const p of row.addPermissions) if (isPermission(p)) set.add(p);
    for (const p of row.removePermissions) if (isPermission(p)) set.delete(p);
    for (const p of set) result.add(p);
  }
  return result;
}

/** What a key id stands for: the hash of its secret and its principal. */
export interface KeyRecord {
  secretHash: Buffer;
  principal: Principal;
}

/** The record of key id `id`, or undefined when there is no such key or it is revoked. */
export async function keyRecord(db: Db, id: string): Promise<KeyRecord | undefined> {
  const row = await db
    .selectFrom('apiKeys')
    .leftJoin('tenants', 'tenants.id', 'apiKeys.tenantId')
    .select(['apiKeys.id', 'apiKeys.secretHash', 'apiKeys.principal', 'apiKeys.resellerId', 'apiKeys.tenantId', 'apiKeys.roles', 'apiKeys.revokedAt'])
    .where('apiKeys.id', '=', id)
    .executeTakeFirst();
  if (!row || row.revokedAt) return undefined;
  if (row.principal === 'reseller') return { secretHash: row.secretHash, principal: { kind: 'reseller', keyId: row.id, resellerId: row.resellerId! } };
  const tenantId = row.tenantId!;
  const perms = row.principal === 'pbx' ? new Set(pbxPermissions) : await permissionsOfRoles(db, tenantId, row.roles);
  return { secretHash: row.secretHash, principal: { kind: 'tenant', keyId: row.id, tenantId, pbx: row.principal === 'pbx', permissions: perms } };
}

export interface KeyView {
  id: string;
  name: string;
  principal: PrincipalKind;
  roles: string[];
  createdAt: string;
  revokedAt: string | null;
}

export async function insertKey(
  db: Db | Trx,
  k: { principal: PrincipalKind; name: string; roles?: string[]; tenantId?: string; resellerId?: string; createdBy?: string; fixedKey?: string },
): Promise<{ id: string; key: string }> {
  let id: string;
  let key: string;
  let hash: Buffer;
  if (k.fixedKey) {
    const parts = splitKey(k.fixedKey);
    if (!parts) throw new ValidationError('the key must look like ffk_<16 hex>_<secret of 20+ url-safe characters>');
    ({ id } = parts);
    key = k.fixedKey;
    hash = hashSecret(parts.secret);
  } else {
    ({ id, key, hash } = newKey());
  }
  await db
    .insertInto('apiKeys')
    .values({
      id,
      secretHash: hash,
      principal: k.principal,
      name: k.name,
      roles: k.roles ?? [],
      tenantId: k.tenantId ?? null,
      resellerId: k.resellerId ?? null,
      createdBy: k.createdBy ?? null,
    })
    .execute();
  return { id, key };
}

/** A tenant key: names default or custom roles; may not grant more than its creator holds. */
export async function createTenantKey(
  db: Db,
  creator: Principal & { kind: 'tenant' },
  input: { name: string; roles?: string[]; principal?: 'pbx' },
): Promise<{ id: string; key: string }> {
  if (input.principal === 'pbx') {
    const missing = pbxPermissions.filter((p) => !creator.permissions.has(p));
    if (missing.length) throw new ForbiddenError(`cannot grant permissions you do not hold: ${missing.join(', ')}`);
  } else {
    await checkGrantableRoles(db, creator, creator.tenantId, input.roles ?? []);
  }
  const principal = input.principal === 'pbx' ? 'pbx' : 'user';
  const roles = input.principal === 'pbx' ? [] : (input.roles ?? []);
  return db.transaction().execute(async (trx) => {
    const created = await insertKey(trx, { principal, name: input.name, roles, tenantId: creator.tenantId, createdBy: creator.keyId });
    await recordAudit(trx, actorOf(creator), {
      tenantId: creator.tenantId,
      action: 'key.create',
      targetType: 'key',
      targetId: created.id,
      after: { name: input.name, principal, roles },
    });
    return created;
  });
}

/**
 * Roles a principal may give a key or a person of `tenantId`: at least one,
 * each a default role or one of the tenant's custom roles, and (for a tenant
 * principal) no permission beyond its own. A reseller may give any of the
 * tenant's roles (it provisions the tenant's first administrateur).
 */
export async function checkGrantableRoles(db: Db | Trx, creator: Principal, tenantId: string, roles: readonly string[]): Promise<void> {
  if (roles.length === 0) throw new ValidationError('roles: at least one role', [{ field: 'roles', message: 'at least one role is required' }]);
  const unknown = await unknownRoles(db, tenantId, roles);
  if (unknown.length) {
    throw new ValidationError('unknown role', unknown.map((r) => ({ field: 'roles', value: r, message: `unknown role ${r}` })));
  }
  if (creator.kind === 'reseller') return;
  const granted = await permissionsOfRoles(db, tenantId, roles);
  const beyond = [...granted].filter((p) => !creator.permissions.has(p));
  if (beyond.length) throw new ForbiddenError(`cannot grant permissions you do not hold: ${beyond.join(', ')}`);
}

function keyView(r: Pick<ApiKey, 'id' | 'name' | 'principal' | 'roles' | 'createdAt' | 'revokedAt'>): KeyView {
  return {
    id: r.id,
    name: r.name,
    principal: r.principal,
    roles: r.roles,
    createdAt: r.createdAt.toISOString(),
    revokedAt: r.revokedAt ? r.revokedAt.toISOString() : null,
  };
}

export async function listTenantKeys(db: Db, tenantId: string, limit: number, cursor?: string) {
  let q = db
    .selectFrom('apiKeys')
    .select(['id', 'name', 'principal', 'roles', 'createdAt', 'revokedAt'])
    .where('tenantId', '=', tenantId)
    .orderBy('id')
    .limit(limit + 1);
  if (cursor) q = q.where('id', '>', cursor);
  const rows = await q.execute();
  const items = rows.slice(0, limit).map(keyView);
  return { items, nextCursor: rows.length > limit ? items[items.length - 1]!.id : null };
}

/**
 * Revokes a key of the revoker's tenant. Like creation, revocation may not
 * reach beyond the revoker's permissions: a key holding a permission the
 * revoker lacks (an administrator's, seen from a key with only access:manage)
 * is not its to revoke (403).
 */
export async function revokeTenantKey(db: Db, revoker: Principal & { kind: 'tenant' }, id: string): Promise<KeyView> {
  const tenantId = revoker.tenantId;
  const target = await db.selectFrom('apiKeys').select(['principal', 'roles']).where('tenantId', '=', tenantId).where('id', '=', id).executeTakeFirst();
  if (!target) throw new NotFoundError('key');
  const held = target.principal === 'pbx' ? new Set<Permission>(pbxPermissions) : await permissionsOfRoles(db, tenantId, target.roles);
  const beyond = [...held].filter((p) => !revoker.permissions.has(p));
  if (beyond.length) throw new ForbiddenError(`cannot revoke a key holding permissions you do not hold: ${beyond.join(', ')}`);
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable('apiKeys')
      .set({ revokedAt: new Date() })
      .where('tenantId', '=', tenantId)
      .where('id', '=', id)
      .returning(['id', 'name', 'principal', 'roles', 'createdAt', 'revokedAt'])
      .executeTakeFirst();
    if (!row) throw new NotFoundError('key');
    const after = keyView(row);
    await recordAudit(trx, actorOf(revoker), { tenantId, action: 'key.revoke', targetType: 'key', targetId: id, before: { ...after, revokedAt: null }, after });
    return after;
  });
}

// ---- roles ---------------------------------------------------------------

export interface RoleView {
  id: string | null;
  name: string;
  inherits: DefaultRoleName | null;
  add: Permission[];
  remove: Permission[];
  permissions: Permission[];
  builtIn: boolean;
}

export async function listRoles(db: Db, tenantId: string): Promise<RoleView[]> {
  const builtIn: RoleView[] = defaultRoleNames.map((name) => ({
    id: null,
    name,
    inherits: null,
    add: [],
    remove: [],
    permissions: [...defaultRoles[name]],
    builtIn: true,
  }));
  const rows = await db.selectFrom('roles').selectAll().where('tenantId', '=', tenantId).orderBy('name').execute();
  const custom: RoleView[] = [];
  for (const r of rows) {
    custom.push({
      id: r.id,
      name: r.name,
      inherits: isDefaultRole(r.inherits) ? r.inherits : null,
      add: r.addPermissions.filter(isPermission),
      remove: r.removePermissions.filter(isPermission),
      permissions: [...(await permissionsOfRoles(db, tenantId, [r.name]))],
      builtIn: false,
    });
  }
  return [...builtIn, ...custom];
}

export async function createRole(
  db: Db,
  creator: Principal & { kind: 'tenant' },
  input: { name: string; inherits: DefaultRoleName; add?: Permission[]; remove?: Permission[] },
): Promise<RoleView> {
  if (isDefaultRole(input.name)) throw new ConflictError('CONFLICT', `${input.name} is a default role`);
  const set = new Set<Permission>(defaultRoles[input.inherits]);
  for (const p of input.add ?? []) set.add(p);
  for (const p of input.remove ?? []) set.delete(p);
  const beyond = [...set].filter((p) => !creator.permissions.has(p));
  if (beyond.length) throw new ForbiddenError(`cannot define a role with permissions you do not hold: ${beyond.join(', ')}`);
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('roles')
      .values({
        tenantId: creator.tenantId,
        name: input.name,
        inherits: input.inherits,
        addPermissions: input.add ?? [],
        removePermissions: input.remove ?? [],
      })
      .onConflict((oc) => oc.columns(['tenantId', 'name']).doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!row) throw new ConflictError('CONFLICT', `a role named ${input.name} already exists`);
    const view: RoleView = {
      id: row.id,
      name: row.name,
      inherits: input.inherits,
      add: input.add ?? [],
      remove: input.remove ?? [],
      permissions: [...set],
      builtIn: false,
    };
    await recordAudit(trx, actorOf(creator), { tenantId: creator.tenantId, action: 'role.create', targetType: 'role', targetId: row.id, after: view });
    return view;
  });
}
