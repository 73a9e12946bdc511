import { OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { Mailer } from '../../services/mail/mailer.js';
import { createPerson, importPeople, listPeople, peopleCsv, sendLink, updatePerson, type PeopleContext } from '../../services/people/people.js';
import { listAudit } from '../../services/audit/audit.js';
import { licenceUse } from '../../services/tenants/licences.js';
import type { AppEnv, Deps } from '../context.js';
import { IdParam, json, jsonRequest, ListQuery, listOf, Uuid, type DefineRoute } from '../route.js';

const PersonSchema = z
  .object({
    id: Uuid,
    tenantId: Uuid.nullable(),
    email: z.string(),
    name: z.string(),
    locale: z.enum(['fr', 'en']),
    roles: z.array(z.string()),
    status: z.enum(['invited', 'active', 'disabled']),
    locked: z.boolean(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Person');

const PersonCreate = z
  .object({
    email: z.string().trim().min(3).max(254),
    name: z.string().trim().min(1).max(200),
    locale: z.enum(['fr', 'en']).optional(),
    roles: z.array(z.string().min(1).max(60)).max(20).optional(),
    tenantId: Uuid.nullable().optional().openapi({ description: 'Reseller callers: the tenant the person belongs to; absent or null: a person of the reseller' }),
    delivery: z.enum(['invitation', 'password']).default('invitation').openapi({
      description: 'invitation: a one-time link by mail (72 h); password: a generated password, in this answer only',
    }),
  })
  .strict()
  .openapi('PersonCreate', { example: { email: 'lea.martin@example.com', name: 'Léa Martin', locale: 'fr', roles: ['comptable'] } });

const PersonPatch = z
  .object({
    name: z.string().trim().min(1).max(200),
    locale: z.enum(['fr', 'en']),
    roles: z.array(z.string().min(1).max(60)).max(20),
    status: z.enum(['active', 'disabled']),
  })
  .partial()
  .strict()
  .openapi('PersonPatch', { example: { locale: 'en', roles: ['comptable', 'acheteur'] } });

const AuditSchema = z
  .object({
    id: z.string(),
    at: z.string(),
    tenantId: Uuid.nullable(),
    actor: z.object({ kind: z.enum(['key', 'person', 'system']), id: z.string(), label: z.string().nullable() }),
    action: z.string().openapi({ example: 'person.update' }),
    targetType: z.string(),
    targetId: z.string().nullable(),
    before: z.unknown(),
    after: z.unknown(),
  })
  .openapi('AuditEvent');

/** Tenant callers need access:manage; a reseller's manage its own people and its tenants'. */
const manage = { scope: 'tenant', permission: 'access:manage', reseller: true } as const;

/** The links in mails point at FORFAIT_PUBLIC_URL, else at the address the request came to. */
export function peopleContext(c: Pick<Context, 'req'>, deps: Deps, mailer: Mailer): PeopleContext {
  return { mailer, linkBase: deps.config.portal.publicUrl ?? new URL(c.req.url).origin, now: new Date() };
}

export function peopleApp(deps: Deps, defineRoute: DefineRoute, mailer: Mailer) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(
    defineRoute({
      method: 'get',
      path: '/',
      tags: ['people'],
      summary: 'The people who sign in to the portal (a reseller: its own, or a tenant’s with tenantId)',
      access: manage,
      request: { query: ListQuery.extend({ tenantId: Uuid.optional() }) },
      responses: { 200: json('People by email', listOf(PersonSchema)) },
    }),
    async (c) => {
      const { limit, cursor, tenantId } = c.req.valid('query');
      return c.json(await listPeople(deps.db, c.get('principal'), { limit, cursor, tenantId }), 200);
    },
  );
  app.openapi(
    defineRoute({
      method: 'post',
      path: '/',
      tags: ['people'],
      summary: 'Invite a person (a link by mail) or create one with a generated password shown once',
      access: manage,
      request: { body: jsonRequest(PersonCreate) },
      responses: {
        201: json('Created', z.object({ person: PersonSchema, password: z.string().optional() })),
        409: { description: 'CONFLICT: the email is taken' },
      },
    }),
    async (c) => c.json(await createPerson(deps.db, c.get('principal'), c.req.valid('json'), peopleContext(c, deps, mailer)), 201),
  );
  app.openapi(
    defineRoute({
      method: 'get',
      path: '/export.csv',
      tags: ['people'],
      summary: 'The people as CSV (email,name,roles,locale; a header line): what POST /v1/people/import reads',
      access: manage,
      request: { query: z.object({ tenantId: Uuid.optional() }) },
      responses: { 200: { description: 'CSV', content: { 'text/csv': { schema: z.string() } } } },
    }),
    async (c) =>
      c.body(await peopleCsv(deps.db, c.get('principal'), c.req.valid('query').tenantId), 200, {
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': 'attachment; filename="people.csv"',
      }),
  );
  app.openapi(
    defineRoute({
      method: 'post',
      path: '/import',
      tags: ['people'],
      summary: 'Invite people from a CSV: email,name,roles[,locale] (roles separated by |); all lines checked first, one error and nothing written',
      access: manage,
      request: {
        query: z.object({ tenantId: Uuid.optional() }),
        body: { required: true, content: { 'text/csv': { schema: z.string().openapi({ example: 'ana@example.com,Ana Lima,comptable|acheteur,fr' }) } } },
      },
      responses: { 201: json('Invited', z.object({ created: z.array(PersonSchema) })) },
    }),
    async (c) => {
      const ctx = { ...peopleContext(c, deps, mailer), tenantId: c.req.valid('query').tenantId };
      return c.json(await importPeople(deps.db, c.get('principal'), await c.req.text(), ctx), 201);
    },
  );
  app.openapi(
    defineRoute({
      method: 'patch',
      path: '/{id}',
      tags: ['people'],
      summary: 'Change a person’s name, language, roles, or disable / enable it (disabling ends its sessions at once)',
      access: manage,
      request: { params: IdParam, body: jsonRequest(PersonPatch) },
      responses: { 200: json('Person', PersonSchema) },
    }),
    async (c) => c.json(await updatePerson(deps.db, c.get('principal'), c.req.valid('param').id, c.req.valid('json'), new Date()), 200),
  );
  app.openapi(
    defineRoute({
      method: 'post',
      path: '/{id}/link',
      tags: ['people'],
      summary: 'Mail a new invitation link (invited person) or a password reset link (active person)',
      access: manage,
      request: { params: IdParam },
      responses: { 200: json('Sent', z.object({ sent: z.enum(['invitation', 'reset']) })) },
    }),
    async (c) => c.json(await sendLink(deps.db, c.get('principal'), c.req.valid('param').id, peopleContext(c, deps, mailer)), 200),
  );
  return app;
}

export function auditApp(deps: Deps, defineRoute: DefineRoute) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(
    defineRoute({
      method: 'get',
      path: '/',
      tags: ['audit'],
      summary: 'The audit trail, newest first: every change by a person or a key (who, what, when, before, after)',
      access: manage,
      request: {
        query: ListQuery.extend({
          cursor: z.string().regex(/^\d{1,19}$/, 'the nextCursor of the previous page').optional(),
          action: z.string().max(60).optional().openapi({ example: 'key.create' }),
          targetId: z.string().max(100).optional(),
          tenantId: Uuid.optional().openapi({ description: 'Reseller callers: one of its tenants’ trails' }),
        }),
      },
      responses: { 200: json('Events', listOf(AuditSchema)) },
    }),
    async (c) => c.json(await listAudit(deps.db, c.get('principal'), c.req.valid('query')), 200),
  );
  return app;
}

const LicenceSchema = z
  .object({ tenantId: Uuid, tenantName: z.string(), productType: z.string(), used: z.number().int(), max: z.number().int() })
  .openapi('LicenceUse');

export function licencesApp(deps: Deps, defineRoute: DefineRoute) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(
    defineRoute({
      method: 'get',
      path: '/',
      tags: ['people'],
      summary: 'Licence use: users in the directory against the product type’s maximum (a reseller: each of its tenants)',
      access: { scope: 'tenant', permission: 'directory:manage', anyOf: ['directory:import', 'access:manage'], reseller: true },
      responses: { 200: json('Use by tenant', z.object({ items: z.array(LicenceSchema) })) },
    }),
    async (c) => c.json({ items: await licenceUse(deps.db, c.get('principal')) }, 200),
  );
  return app;
}
