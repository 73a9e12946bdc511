import { OpenAPIHono, z } from '@hono/zod-openapi';
import { createTenant, getTenant, listTenants, tenantView, updateTenant } from '../../services/tenants/tenants.js';
import { maxForfaitMinutes } from '../../services/users/fields.js';
import { ApiError } from '../errors.js';
import type { AppEnv, Deps } from '../context.js';
import { IdParam, ListQuery, listOf, MoneyInNonNegative, Uuid, type DefineRoute, json, jsonRequest } from '../route.js';
import { actorOf } from '../../services/audit/audit.js';

const numberText = z.string().trim().regex(/^\+?[0-9 .-]{2,20}$/, 'a phone number');

export const TenantSchema = z
  .object({
    id: Uuid,
    name: z.string(),
    productType: z.string(),
    tariffId: z.string().nullable(),
    reference: z.string().nullable(),
    country: z.string(),
    currency: z.string(),
    timezone: z.string(),
    locale: z.enum(['fr', 'en']),
    numberDisplay: z.enum(['international', 'national']),
    notes: z.string().nullable(),
    trialEndsAt: z.string().nullable(),
    internal: z.boolean(),
    status: z.enum(['active', 'suspended']),
    vatRate: z.string(),
    defaultForfaitMinutes: z.number().int(),
    maxCallSeconds: z.number().int(),
    lowBalanceThreshold: z.string(),
    freeNumbers: z.array(z.string()),
    billingAddress: z.array(z.string()).openapi({ description: 'Postal address printed in the invoices’ bill-to box, one entry per line', example: ['Acme SARL', '5 rue du Port', '13002 Marseille'] }),
    cdrRetentionMonths: z.number().int(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Tenant');

const TenantFields = {
  name: z.string().trim().min(1).max(200),
  productType: z.string().min(1),
  tariffId: z.string().min(1).max(64).nullable(),
  reference: z.string().max(200).nullable(),
  country: z.string().regex(/^[A-Z]{2}$/, 'ISO 3166-1 alpha-2, e.g. FR'),
  currency: z.string().regex(/^[A-Z]{3}$/, 'ISO 4217, e.g. EUR'),
  timezone: z.string().min(1).max(64),
  locale: z.enum(['fr', 'en']),
  numberDisplay: z.enum(['international', 'national']),
  notes: z.string().max(10_000).nullable(),
  trialEndsAt: z.string().datetime({ offset: true }).nullable(),
  internal: z.boolean(),
  status: z.enum(['active', 'suspended']),
  vatRate: z
    .union([z.string(), z.number()])
    .transform((v) => String(v))
    .pipe(z.string().regex(/^0(\.\d{1,4})?$/, 'a rate between 0 and 1 with at most 4 decimals, e.g. 0.20')),
  defaultForfaitMinutes: z.number().int().min(0).max(maxForfaitMinutes),
  maxCallSeconds: z.number().int().min(1).max(86_400),
  lowBalanceThreshold: MoneyInNonNegative,
  freeNumbers: z.array(numberText).max(100),
  billingAddress: z.array(z.string().trim().min(1).max(200)).max(6),
  /** Whole UTC months of CDRs kept in the database before the current one; older months are archived (docs/cdrs.md). */
  cdrRetentionMonths: z.number().int().min(1).max(120),
};

const TenantCreate = z
  .object({ ...TenantFields })
  .partial()
  .required({ name: true, productType: true })
  .strict()
  .openapi('TenantCreate', {
    example: {
      name: 'Boulangerie Martin SARL',
      productType: 'essentiel',
      tariffId: 'standard-2026',
      reference: 'CLI-0042',
      country: 'FR',
      currency: 'EUR',
      timezone: 'Europe/Paris',
      locale: 'fr',
      numberDisplay: 'national',
      vatRate: '0.20',
      defaultForfaitMinutes: 120,
      lowBalanceThreshold: '10.00',
      billingAddress: ['Boulangerie Martin SARL', '12 rue de la République', '69002 Lyon'],
    },
  });
const TenantPatch = z
  .object({ ...TenantFields })
  .partial()
  .strict()
  .openapi('TenantPatch', { example: { lowBalanceThreshold: '5.00', maxCallSeconds: 7200, freeNumbers: ['112', '15', '0800 12 34 56'] } });

/** The tenant of the path: an id that is not a uuid is a 404 here, not an error from PostgreSQL. */
function tenantIdOf(id: string): string {
  if (!Uuid.safeParse(id).success) throw new ApiError('NOT_FOUND', 'tenant not found');
  return id;
}

export function tenantsApp(deps: Deps, defineRoute: DefineRoute) {
  const app = new OpenAPIHono<AppEnv>();
  const reseller = (p: AppEnv['Variables']['principal']) => {
    if (p.kind !== 'reseller') throw new ApiError('FORBIDDEN', 'reseller key required');
    return p;
  };

  app.openapi(
    defineRoute({
      method: 'post',
      path: '/',
      tags: ['tenants'],
      summary: 'Provision a tenant; answers its first administrateur key, shown once',
      access: { scope: 'reseller' },
      request: { body: jsonRequest(TenantCreate) },
      responses: {
        201: json('Created', z.object({ tenant: TenantSchema, adminKey: z.string() })),
        409: { description: 'Name already taken' },
      },
    }),
    async (c) => {
      const p = reseller(c.get('principal'));
      const result = await createTenant(deps.db, p.resellerId, c.req.valid('json'), p.keyId, actorOf(p));
      return c.json(result, 201);
    },
  );

  app.openapi(
    defineRoute({
      method: 'get',
      path: '/',
      tags: ['tenants'],
      summary: 'List the reseller’s tenants',
      access: { scope: 'reseller' },
      request: { query: ListQuery },
      responses: { 200: json('Tenants', listOf(TenantSchema)) },
    }),
    async (c) => {
      const p = reseller(c.get('principal'));
      const { limit, cursor } = c.req.valid('query');
      return c.json(await listTenants(deps.db, p.resellerId, limit, cursor), 200);
    },
  );

  app.openapi(
    defineRoute({
      method: 'get',
      path: '/{id}',
      tags: ['tenants'],
      summary: 'Read a tenant',
      access: { scope: 'reseller' },
      request: { params: IdParam },
      responses: { 200: json('Tenant', TenantSchema) },
    }),
    async (c) => {
      const p = reseller(c.get('principal'));
      const id = tenantIdOf(c.req.valid('param').id);
      return c.json(tenantView(await getTenant(deps.db, p.resellerId, id)), 200);
    },
  );

  app.openapi(
    defineRoute({
      method: 'patch',
      path: '/{id}',
      tags: ['tenants'],
      summary: 'Change a tenant (tariffId, status, …); a locked product type cannot change',
      access: { scope: 'reseller' },
      request: { params: IdParam, body: jsonRequest(TenantPatch) },
      responses: {
        200: json('Tenant', TenantSchema),
        409: { description: 'PRODUCT_TYPE_LOCKED or name taken' },
      },
    }),
    async (c) => {
      const p = reseller(c.get('principal'));
      const id = tenantIdOf(c.req.valid('param').id);
      return c.json(await updateTenant(deps.db, p.resellerId, id, c.req.valid('json'), actorOf(p)), 200);
    },
  );

  return app;
}
