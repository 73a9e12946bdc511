import { OpenAPIHono, z } from '@hono/zod-openapi';
import {
  createRole,
  createTenantKey,
  defaultRoleNames,
  listRoles,
  listTenantKeys,
  permissions,
  revokeTenantKey,
} from '../../services/access/access.js';
import { ApiError } from '../errors.js';
import type { KeyCache } from '../auth.js';
import type { AppEnv, Deps } from '../context.js';
import { IdParam, ListQuery, listOf, type DefineRoute, json, jsonRequest } from '../route.js';

const PermissionSchema = z.enum(permissions);

const RoleSchema = z
  .object({
    id: z.string().nullable(),
    name: z.string(),
    inherits: z.enum(defaultRoleNames).nullable(),
    add: z.array(PermissionSchema),
    remove: z.array(PermissionSchema),
    permissions: z.array(PermissionSchema),
    builtIn: z.boolean(),
  })
  .openapi('Role');

const RoleCreate = z
  .object({
    // the pattern is published without its JavaScript flag (zod writes `…$/u`, which no validator reads)
    name: z
      .string()
      .trim()
      .regex(/^[\p{L}0-9 _.-]{1,60}$/u, 'letters, digits, space, _ . -')
      .openapi({ pattern: '^[\\p{L}0-9 _.-]{1,60}$' }),
    inherits: z.enum(defaultRoleNames),
    add: z.array(PermissionSchema).optional(),
    remove: z.array(PermissionSchema).optional(),
  })
  .strict()
  .openapi('RoleCreate', { example: { name: 'Comptable et CDR', inherits: 'comptable', add: ['cdrs:read'] } });

const KeySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    principal: z.enum(['reseller', 'user', 'pbx']),
    roles: z.array(z.string()),
    createdAt: z.string(),
    revokedAt: z.string().nullable(),
  })
  .openapi('ApiKey');

const KeyCreate = z
  .union([
    z.object({ name: z.string().trim().min(1).max(100), roles: z.array(z.string().min(1)).min(1).max(20) }).strict(),
    z.object({ name: z.string().trim().min(1).max(100), principal: z.literal('pbx') }).strict(),
  ])
  .openapi('ApiKeyCreate', { example: { name: 'Comptabilité', roles: ['comptable'] } });

/** Every route here: a tenant key with access:manage. */
const manageAccess = { scope: 'tenant', permission: 'access:manage' } as const;

function tenantPrincipal(p: AppEnv['Variables']['principal']) {
  if (p.kind !== 'tenant') throw new ApiError('FORBIDDEN', 'tenant key required');
  return p;
}

export function rolesApp(deps: Deps, defineRoute: DefineRoute, keys: KeyCache) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(
    defineRoute({
      method: 'get',
      path: '/',
      tags: ['access'],
      summary: 'The four default roles and the tenant’s custom roles',
      access: manageAccess,
      responses: {
        200: json('Roles', z.object({ items: z.array(RoleSchema), nextCursor: z.null() })),
      },
    }),
    async (c) => {
      const p = tenantPrincipal(c.get('principal'));
      return c.json({ items: await listRoles(deps.db, p.tenantId), nextCursor: null }, 200);
    },
  );
  app.openapi(
    defineRoute({
      method: 'post',
      path: '/',
      tags: ['access'],
      summary: 'A custom role: a default role plus or minus permissions',
      access: manageAccess,
      request: { body: jsonRequest(RoleCreate) },
      responses: {
        201: json('Created', RoleSchema),
        409: { description: 'Name taken' },
      },
    }),
    async (c) => {
      const p = tenantPrincipal(c.get('principal'));
      const role = await createRole(deps.db, p, c.req.valid('json'));
      keys.clear();
      return c.json(role, 201);
    },
  );
  return app;
}

export function keysApp(deps: Deps, defineRoute: DefineRoute, keys: KeyCache) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(
    defineRoute({
      method: 'get',
      path: '/',
      tags: ['access'],
      summary: 'The tenant’s API keys (never their secrets)',
      access: manageAccess,
      request: { query: ListQuery },
      responses: { 200: json('Keys', listOf(KeySchema)) },
    }),
    async (c) => {
      const p = tenantPrincipal(c.get('principal'));
      const { limit, cursor } = c.req.valid('query');
      return c.json(await listTenantKeys(deps.db, p.tenantId, limit, cursor), 200);
    },
  );
  app.openapi(
    defineRoute({
      method: 'post',
      path: '/',
      tags: ['access'],
      summary: 'Create a key with roles, or a pbx key; the key is shown once',
      access: manageAccess,
      request: { body: jsonRequest(KeyCreate) },
      responses: {
        201: json('Created', z.object({ id: z.string(), key: z.string() })),
      },
    }),
    async (c) => {
      const p = tenantPrincipal(c.get('principal'));
      return c.json(await createTenantKey(deps.db, p, c.req.valid('json')), 201);
    },
  );
  app.openapi(
    defineRoute({
      method: 'delete',
      path: '/{id}',
      tags: ['access'],
      summary: 'Revoke a key',
      access: manageAccess,
      request: { params: IdParam },
      responses: { 200: json('Revoked', KeySchema) },
    }),
    async (c) => {
      const p = tenantPrincipal(c.get('principal'));
      const revoked = await revokeTenantKey(deps.db, p, c.req.valid('param').id);
      keys.clear();
      return c.json(revoked, 200);
    },
  );
  return app;
}
