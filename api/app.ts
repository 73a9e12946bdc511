import { OpenAPIHono, z } from '@hono/zod-openapi';
import { getConnInfo } from '@hono/node-server/conninfo';
import { RegExpRouter } from 'hono/router/reg-exp-router';
import { SmartRouter } from 'hono/router/smart-router';
import { TrieRouter } from 'hono/router/trie-router';
import { sql } from 'kysely';
import { KeyCache } from './auth.js';
import type { AppEnv, Deps } from './context.js';
import { docsApp } from './docs.js';
import { ApiError, errorBody, sendError, validationFailed } from './errors.js';
import { House } from './house.js';
import { LaneRouter } from './lane.js';
import { createMetrics } from './metrics.js';
import { routeFactory, type DefineRoute, json } from './route.js';
import { ExportQueue } from '../services/exports/queue.js';
import { keysApp, rolesApp } from './routes/access.js';
import { productTypesApp } from './routes/productTypes.js';
import { tenantsApp } from './routes/tenants.js';
import { usersApp } from './routes/users.js';
import { tariffsApp } from './routes/tariffs.js';
import { cdrsApp } from './routes/cdrs.js';
import { rerateApp } from './routes/rerate.js';
import { indicatorsApp } from './routes/indicators.js';
import { dashboardApp } from './routes/dashboard.js';
import { TariffIndexCache } from '../services/tariffs/tariffs.js';
import { AccountBook } from '../services/authorization/book.js';
import { ReservationWriter } from '../services/authorization/writer.js';
import type { AuthorizationService } from '../services/authorization/authorize.js';
import { authorizeApp, callsApp } from './routes/authorize.js';
import { invoicesApp } from './routes/invoices.js';
import { auditApp, licencesApp, peopleApp } from './routes/people.js';
import { createMailer } from '../services/mail/mailer.js';
import { portalApp } from './portal/portal.js';

export interface App {
  app: OpenAPIHono<AppEnv>;
  keys: KeyCache;
  defineRoute: DefineRoute;
  /** One queue for every CSV export of the server (SPEC §7 limits). */
  exports: ExportQueue;
  /** Compiled tariffs for authorization and rating. */
  tariffs: TariffIndexCache;
  /** The in-memory accounts and reservation holds of the tenants this process serves. */
  authorization: AuthorizationService;
  /** Stops listening, drains pending reservations, releases the tenants' locks. */
  close(): Promise<void>;
}

function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

export function createApp(deps: Deps): App {
  const keys = new KeyCache(deps);
  const defineRoute = routeFactory(deps, keys);
  const metrics = createMetrics();
  const house = new House(metrics, deps.logger);
  const exports = new ExportQueue(deps.config.exportLimits);
  const tariffs = new TariffIndexCache(deps.db);
  const book = new AccountBook(deps.db, deps.sql, deps.logger, (id) => tariffs.invalidate(id));
  const writer = new ReservationWriter(deps.sql);
  const authorization: AuthorizationService = { book, writer, tariffs };
  const mailer = createMailer(deps.config.portal.mail, deps.logger);
  const listening = book.start().catch((err: unknown) => deps.logger.error({ err }, 'LISTEN forfait_accounts failed'));

  const app = new OpenAPIHono<AppEnv>({
    // Hono's default router, behind the PBX lane's exact paths (lane.ts)
    router: new LaneRouter(new SmartRouter({ routers: [new RegExpRouter(), new TrieRouter()] })),
    // zod failures become the §7 envelope, naming each field at fault
    defaultHook: (result, c) => {
      if (!result.success) return sendError(c, validationFailed(result.error.issues));
    },
  });

  // Every route but the PBX lane's: the house's request id, errors and metrics around it.
  app.use(house.middleware());
  app.onError(house.onError);
  app.notFound((c) => c.json(errorBody('NOT_FOUND', `no route ${c.req.method} ${c.req.path}`, c.get('requestId') ?? ''), 404));

  // A change made through this API is visible to the next authorization at once:
  // the answer waits until the account books have applied it (a NOTIFY barrier).
  app.use('/v1/*', async (c, next) => {
    await next();
    if (c.req.method === 'GET' || c.res.status >= 400 || c.req.path.startsWith('/v1/calls/')) return;
    if (!c.get('principal')) return;
    await book.barrier();
  });

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'An API key: `Authorization: Bearer ffk_…`',
  });

  app.openapi(
    defineRoute({
      method: 'get',
      path: '/health',
      tags: ['operations'],
      summary: 'Liveness and database reachability',
      access: { scope: 'public' },
      responses: {
        200: json('Up', z.object({ status: z.literal('ok'), db: z.literal('ok') })),
        503: json('Database unreachable', z.object({ status: z.literal('degraded'), db: z.literal('unreachable') })),
      },
    }),
    async (c) => {
      try {
        await Promise.race([
          sql`select 1`.execute(deps.db),
          new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000).unref()),
        ]);
        return c.json({ status: 'ok' as const, db: 'ok' as const }, 200);
      } catch {
        return c.json({ status: 'degraded' as const, db: 'unreachable' as const }, 503);
      }
    },
  );

  app.get('/metrics', async (c) => {
    if (!deps.config.metricsPublic) {
      let address: string | undefined;
      try {
        address = getConnInfo(c).remote.address;
      } catch {
        address = '127.0.0.1'; // in-process request (app.request), no socket
      }
      if (!isLoopback(address)) throw new ApiError('FORBIDDEN', '/metrics is served to loopback only (FORFAIT_METRICS_PUBLIC=1 to open it)');
    }
    return c.body(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType });
  });

  app.route('/v1/tenants', tenantsApp(deps, defineRoute));
  app.route('/v1/product-types', productTypesApp(deps, defineRoute));
  app.route('/v1/tariffs', tariffsApp(deps, defineRoute, tariffs));
  app.route('/v1/roles', rolesApp(deps, defineRoute, keys));
  app.route('/v1/keys', keysApp(deps, defineRoute, keys));
  app.route('/v1/cdrs', cdrsApp(deps, defineRoute, tariffs, exports));
  app.route('/v1/rerate', rerateApp(deps, defineRoute, tariffs));
  app.route('/v1/users', usersApp(deps, defineRoute, exports));
  app.route('/v1/authorize', authorizeApp(deps, defineRoute, house, authorization, metrics));
  app.route('/v1/invoices', invoicesApp(deps, defineRoute, exports, deps.config.issuer));
  app.route('/v1/indicators', indicatorsApp(deps, defineRoute));
  app.route('/v1/people', peopleApp(deps, defineRoute, mailer));
  app.route('/v1/audit', auditApp(deps, defineRoute));
  app.route('/v1/licences', licencesApp(deps, defineRoute));
  app.route('/v1/calls', callsApp(deps, defineRoute, { ...authorization, cdrs: { db: deps.db, sql: deps.sql, tariffs } }));

  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Forfait API',
      version: '1.0.0',
      description:
        'Prepaid call rating and billing: PBX authorization, CDR rating, ledger, invoices. Errors: `{ error: { code, message, details?, requestId } }`.',
    },
    servers: [{ url: '/' }],
  });
  app.route('/docs', docsApp());
  app.route('/dashboard', dashboardApp());
  // the portal acts through this app's own routes (api/portal/client.ts)
  app.route('/portal', portalApp({ deps, keys, exports, mailer, fetch: (request) => app.fetch(request) }));

  return {
    app,
    keys,
    defineRoute,
    exports,
    tariffs,
    authorization,
    async close() {
      await listening;
      await writer.close();
      await book.stop();
      mailer.close();
    },
  };
}
