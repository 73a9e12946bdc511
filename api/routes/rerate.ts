import { OpenAPIHono, z } from '@hono/zod-openapi';
import type { TariffIndexCache } from '../../services/tariffs/tariffs.js';
import { actorOf } from '../../services/audit/audit.js';
import { rerate } from '../../services/cdrs/rerate.js';
import { NotFoundError, ValidationError } from '../../services/shared/errors.js';
import { getTenant } from '../../services/tenants/tenants.js';
import type { AppEnv, Deps } from '../context.js';
import { Uuid, type DefineRoute, jsonRequest } from '../route.js';

const RerateBody = z
  .object({
    from: z.string().min(4).max(40).openapi({ example: '2026-11-01' }),
    to: z.string().min(4).max(40).openapi({ example: '2026-12-01' }),
    tenantId: Uuid.optional().openapi({ description: 'Required with a reseller key: the tenant to rerate' }),
  })
  .strict()
  .openapi('RerateRequest', { example: { from: '2026-11-01', to: '2026-12-01' } });

export function rerateApp(deps: Deps, defineRoute: DefineRoute, tariffs: TariffIndexCache) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(
    defineRoute({
      method: 'post',
      path: '/',
      tags: ['cdrs'],
      summary: 'Rate a period again with the rates valid now; appends `rerate` ledger entries for the differences only',
      description:
        'Outgoing CDRs with started_at in [from, to) (tenant timezone). Running it again changes nothing more. A CDR whose cost changes keeps its first cost in originalCost.',
      access: { scope: 'tenant', permission: 'tariffs:manage', reseller: true },
      request: { body: jsonRequest(RerateBody) },
      responses: {
        200: {
          description: 'Counts and the total of the rerate entries',
          content: {
            'application/json': {
              schema: z.object({
                examined: z.number().int(),
                changed: z.number().int(),
                adjusted: z.number().int(),
                amount: z.string(),
                skipped: z.number().int(),
              }),
            },
          },
        },
      },
    }),
    async (c) => {
      const p = c.get('principal');
      const body = c.req.valid('json');
      let tenantId: string;
      if (p.kind === 'reseller') {
        if (body.tenantId === undefined) throw new ValidationError('tenantId is required with a reseller key', [{ field: 'tenantId', message: 'required' }]);
        tenantId = (await getTenant(deps.db, p.resellerId, body.tenantId)).id;
      } else {
        if (body.tenantId !== undefined && body.tenantId !== p.tenantId) throw new NotFoundError('tenant');
        tenantId = p.tenantId;
      }
      const result = await rerate({ db: deps.db, sql: deps.sql, tariffs }, tenantId, body, p.keyId, { actor: actorOf(p) });
      return c.json(result, 200);
    },
  );
  return app;
}
