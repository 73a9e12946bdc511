import { OpenAPIHono, z } from '@hono/zod-openapi';
import { csvEncodings } from '../../services/shared/csvText.js';
import { getTariff, putTariff, type TariffIndexCache } from '../../services/tariffs/tariffs.js';
import { actorOf } from '../../services/audit/audit.js';
import { ApiError } from '../errors.js';
import type { AppEnv, Deps } from '../context.js';
import { IdParam, type DefineRoute, json } from '../route.js';

export const RateSchema = z
  .object({
    id: z.string(),
    prefix: z.string().openapi({ example: '336' }),
    destination: z.string().openapi({ example: 'France mobile' }),
    class: z.enum(['fixed', 'mobile', 'special', 'international', 'free']),
    pricePerMinute: z.string().openapi({ example: '0.2000' }),
    nextPricePerMinute: z.string(),
    connectionFee: z.string(),
    firstIncrement: z.number().int(),
    nextIncrement: z.number().int(),
    forfaitEligible: z.boolean(),
    validFrom: z.string(),
  })
  .openapi('Rate');
const TariffSchema = z.object({ id: z.string(), rates: z.array(RateSchema) }).openapi('Tariff');
const TariffUploadSchema = z
  .object({
    id: z.string(),
    rates: z.array(RateSchema),
    encoding: z.enum(csvEncodings).openapi({ description: 'How the file was read' }),
    notes: z.array(z.string()).openapi({ description: 'What reading the file did (a conversion from Windows-1252, a BOM removed)' }),
  })
  .openapi('TariffUpload');

const csvExample = `prefix,destination,class,price_per_minute,connection_fee,first_increment,next_increment,forfait_eligible,next_price_per_minute,valid_from
33,France fixe,fixed,0.02,0,60,60,true,,
336,France mobile,mobile,0.20,0.10,60,1,true,0.10,2026-01-01T00:00:00Z`;

export function tariffsApp(deps: Deps, defineRoute: DefineRoute, tariffs: TariffIndexCache) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(
    defineRoute({
      method: 'put',
      path: '/{id}',
      tags: ['tariffs'],
      summary: 'Replace a tariff’s rates with a tariff CSV (SPEC §6); creates the tariff on first upload',
      description: 'Every line is checked before anything is written; errors name the line and field. Times without an offset are UTC.',
      access: { scope: 'reseller' },
      bodyLimit: deps.config.importBodyLimit,
      request: {
        params: IdParam,
        body: { required: true, content: { 'text/csv': { schema: z.string().openapi({ example: csvExample }) } } },
      },
      responses: { 200: json('The tariff as stored', TariffUploadSchema) },
    }),
    async (c) => {
      const p = c.get('principal');
      if (p.kind !== 'reseller') throw new ApiError('FORBIDDEN', 'reseller key required');
      const file = new Uint8Array(await c.req.arrayBuffer());
      const result = await putTariff(deps.db, p.resellerId, c.req.valid('param').id, file, (id) => tariffs.invalidate(id), actorOf(p));
      return c.json(result, 200);
    },
  );
  app.openapi(
    defineRoute({
      method: 'get',
      path: '/{id}',
      tags: ['tariffs'],
      summary: 'Read a tariff: a reseller its own, a tenant (prices:read) the one it is rated with',
      access: { scope: 'tenant', permission: 'prices:read', reseller: true },
      request: { params: IdParam },
      responses: { 200: json('Tariff', TariffSchema) },
    }),
    async (c) => c.json(await getTariff(deps.db, c.get('principal'), c.req.valid('param').id), 200),
  );
  return app;
}
