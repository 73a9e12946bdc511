import { OpenAPIHono, z } from '@hono/zod-openapi';
import { getConnInfo } from '@hono/node-server/conninfo';
import { RegExpRouter } from 'hono/router/reg-exp-router';
import { SmartRouter } from 'hono/router/smart-router';
import { TrieRouter } from 'hono/router/trie-router';
import { sql } from 'kysely';
import { KeyCache } from './auth.js';
import { RateLimiter } from './limits.js';
import { keyRecord } from '../services/access/access.js';
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
import { archivesApp } from './routes/archives.js';
import { rerateApp } from './routes/rerate.js';
import { indicatorsApp } from './routes/indicators.js';
import { dashboardApp } from './routes/dashboard.js';
import { TariffIndexCache } from '../services/tariffs/tariffs.js';
import { AccountBook } from '../services/authorization/book.js';
import { ReservationWriter } from '../services/authorization/writer.js';
import type { AuthorizationService } from '../services/authorization/authorize.js';
import { authorizeApp, callsApp } from './routes/authorize.js';
import { invoicesApp } from './routes/invoices.js';
import { reservationsApp } from './routes/reservations.js';
import { deviceTypesApp, devicesApp, sitesApp } from './routes/devices.js';
import { clusterApp } from './routes/cluster.js';
import { Membership, newServerId } from '../services/cluster/membership.js';
import { Forwarder, type Fetch } from './forward.js';
import { sessionOf } from '../services/people/sessions.js';
import { auditApp, licencesApp, peopleApp } from './routes/people.js';
import { createMailer } from '../services/mail/mailer.js';
import { portalApp } from './portal/portal.js';
import { simulationsApp, tariffSimulationApp, type FinishedSimulation } from './routes/simulation.js';
import { SimulationJobs } from '../services/simulation/jobs.js';

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
  /** This server among the others on the same database (inert until `join`: cli/serve.ts). */
  cluster: Membership;
  /** What a server serves: `app.fetch` behind the forwarding layer (forward.ts). */
  fetch: Fetch;
  /** Stops listening, drains pending reservations, releases the tenants' locks. */
  close(): Promise<void>;
}

function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

export function createApp(deps: Deps, options: { serverId?: string } = {}): App {
  const metrics = createMetrics();
  const keys = new KeyCache((id) => keyRecord(deps.db, id), new RateLimiter(deps.config.rateLimits, metrics, deps.logger), {
    loadSession: (token) => sessionOf(deps.db, token, deps.clock?.() ?? new Date(), deps.config.portal.session),
  });
  const defineRoute = routeFactory(deps, keys);
  const house = new House(metrics, deps.logger);
  const exports = new ExportQueue(deps.config.exportLimits);
  const tariffs = new TariffIndexCache(deps.db);
  const simulations = new SimulationJobs<FinishedSimulation>();
  const book = new AccountBook(deps.db, deps.sql, deps.logger, (id) => tariffs.invalidate(id));
  const writer = new ReservationWriter(deps.sql);
  const authorization: AuthorizationService = { book, writer, tariffs };
  const cluster = new Membership(deps.db, book, deps.logger, { id: options.serverId ?? newServerId() });
  const mailer = createMailer(deps.config.portal.mail, deps.logger);
  const listening = book.start().catch((err: unknown) => deps.logger.error({ err }, 'LISTEN forfait_accounts failed'));

  const app = new OpenAPIHono<AppEnv>({
    // Hono's default router, behind the PBX lane's exact paths (lane.ts)
    router: new LaneRouter(new SmartRouter({ routers: [new RegExpRouter(), new TrieRouter()] })),
    // zod failures become the §7 envelope, naming each field at fault
    defaultHook: (result, c) => {
      if (result.success) return;
      // what the schema was given, to show the value at fault
      const t = result.target;
      const input: Promise<unknown> =
        t === 'query' ? Promise.resolve(c.req.query()) : t === 'param' ? Promise.resolve(c.req.param()) : t === 'json' ? c.req.json().catch(() => undefined) : Promise.resolve(undefined);
      return input.then((given) => sendError(c, validationFailed(result.error.issues, given)));
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
    // devices, sites and device types change nothing an authorization reads (a registrar reports every REGISTER)
    if (/^\/v1\/(devices|sites|device-types)(\/|$)/.test(c.req.path)) return;
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
  app.route('/v1/tariffs', tariffSimulationApp(deps, defineRoute, tariffs, simulations));
  app.route('/v1/simulations', simulationsApp(defineRoute, simulations));
  app.route('/v1/roles', rolesApp(deps, defineRoute, keys));
  app.route('/v1/keys', keysApp(deps, defineRoute, keys));
  app.route('/v1/cdrs', cdrsApp(deps, defineRoute, tariffs, exports));
  app.route('/v1/archives', archivesApp(deps, defineRoute));
  app.route('/v1/rerate', rerateApp(deps, defineRoute, tariffs));
  app.route('/v1/users', usersApp(deps, defineRoute, exports));
  app.route('/v1/authorize', authorizeApp(deps, defineRoute, house, authorization, metrics));
  app.route('/v1/invoices', invoicesApp(deps, defineRoute, exports, deps.config.issuer));
  const indicators = indicatorsApp(deps, defineRoute);
  app.route('/v1/indicators', indicators.app);
  app.route('/v1/reservations', reservationsApp(deps, defineRoute, book));
  app.route('/v1/device-types', deviceTypesApp(deps, defineRoute));
  app.route('/v1/sites', sitesApp(deps, defineRoute));
  app.route('/v1/devices', devicesApp(deps, defineRoute, exports));
  app.route('/v1/cluster', clusterApp(defineRoute, cluster));
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

  const forwarder = new Forwarder((req, env) => app.fetch(req, env), {
    keys,
    book,
    membership: cluster,
    logger: deps.logger,
    registry: metrics.registry,
  });

  return {
    app,
    keys,
    defineRoute,
    exports,
    tariffs,
    authorization,
    cluster,
    fetch: forwarder.fetch,
    async close() {
      forwarder.close();
      await cluster.leave();
      await listening;
      await writer.close();
      await book.stop();
      await indicators.close();
      mailer.close();
    },
  };
}
