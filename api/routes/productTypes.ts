import { OpenAPIHono, z } from '@hono/zod-openapi';
import { createProductType, listProductTypes } from '../../services/tenants/tenants.js';
import { actorOf } from '../../services/audit/audit.js';
import type { AppEnv, Deps } from '../context.js';
import { MoneyInNonNegative, type DefineRoute, json, jsonRequest } from '../route.js';

const ProductTypeSchema = z
  .object({
    code: z.string(),
    name: z.string(),
    maxUsers: z.number().int(),
    monthlyFeePerUser: z.string(),
    locked: z.boolean(),
  })
  .openapi('ProductType');

const ProductTypeCreate = z
  .object({
    code: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,39}$/, 'lower-case letters, digits, - and _'),
    name: z.string().trim().min(1).max(100),
    maxUsers: z.number().int().min(0).max(10_000_000),
    monthlyFeePerUser: MoneyInNonNegative,
    locked: z.boolean().optional(),
  })
  .strict()
  .openapi('ProductTypeCreate', { example: { code: 'pme-50', name: 'PME 50 postes', maxUsers: 50, monthlyFeePerUser: '4.50' } });

export function productTypesApp(deps: Deps, defineRoute: DefineRoute) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(
    defineRoute({
      method: 'get',
      path: '/',
      tags: ['product types'],
      summary: 'The product catalog (licence limit, monthly fee per user, locked)',
      access: { scope: 'reseller' },
      responses: {
        200: json('Catalog', z.object({ items: z.array(ProductTypeSchema), nextCursor: z.null() })),
      },
    }),
    async (c) => c.json({ items: await listProductTypes(deps.db), nextCursor: null }, 200),
  );
  app.openapi(
    defineRoute({
      method: 'post',
      path: '/',
      tags: ['product types'],
      summary: 'Add a product type to the catalog',
      access: { scope: 'reseller' },
      request: { body: jsonRequest(ProductTypeCreate) },
      responses: {
        201: json('Created', ProductTypeSchema),
        409: { description: 'Code already exists' },
      },
    }),
    async (c) => {
      const input = c.req.valid('json');
      const p = c.get('principal');
      const audit = p.kind === 'reseller' ? { actor: actorOf(p), resellerId: p.resellerId } : undefined;
      return c.json(await createProductType(deps.db, input, audit), 201);
    },
  );
  return app;
}
