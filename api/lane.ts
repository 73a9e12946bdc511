import type { OpenAPIHono, RouteConfig, RouteHandler } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { Result, Router } from 'hono/router';
import type { AppEnv } from './context.js';
import type { House } from './house.js';
import { jsonBodySchema, readJsonBody } from './route.js';

/** The request as the route's handler sees it: `c.req.valid('json')` typed by the route's body schema. */
export type LaneContext<R extends RouteConfig> = Parameters<RouteHandler<R, AppEnv>>[0];

/** What the lane passes its steps as next(): none of them has anything to do after it. */
const done = Promise.resolve();
const nothingAfter = (): Promise<void> => done;

/** The handlers of lane routes: LaneRouter gives each its path to itself. */
const laneHandlers = new WeakSet<object>();

/**
 * A route served by Hono without the app's middleware chain: the PBX's
 * `POST /v1/authorize`, asked on every call set-up, where the chain cost more
 * than the decision itself (benchmarks/RESULTS.md).
 *
 * The app's LaneRouter gives a lane's path to its handler alone, and that
 * handler does what the chain would, through the same code: the house's request
 * id, error envelope and metrics (house.ts); the route's own middleware as
 * defineRoute made it (its key and permission, its body limit), one after the
 * other, as each finishes its work before next(); the JSON body reader every
 * PBX route uses (readJsonBody); then the route's handler. What it leaves out
 * is machinery: the router's walk over every route and middleware of the API,
 * Hono's composition of the chain, and web Headers for the answer (its
 * X-Request-Id goes in a plain header object).
 *
 * The handler returns the body of the 200 answer; what it throws is answered
 * as on any route. The route is in the OpenAPI document as usual.
 */
export function laneRoute<R extends RouteConfig>(
  app: OpenAPIHono<AppEnv>,
  house: House,
  route: R,
  handle: (c: LaneContext<R>) => object | Promise<object>,
): void {
  const { middleware, hide: _hide, ...documented } = route;
  app.openAPIRegistry.registerPath(documented);
  const steps: MiddlewareHandler<AppEnv>[] = [middleware ?? []].flat();
  const schema = jsonBodySchema(route);
  let label: string | undefined; // the route's full path, once mounted: its metrics label

  async function serve(c: Context<AppEnv>): Promise<Response> {
    const started = house.begin(c);
    let res: Response | undefined;
    try {
      for (const step of steps) {
        const stepped = step(c, nothingAfter);
        // a step that only called next() returned `done`: no turn of the microtask queue for it
        if (stepped !== done) res = (await stepped) ?? undefined;
        if (res) break;
      }
      if (!res) {
        c.req.addValidatedData('json', (await readJsonBody(c, schema)) as object);
        // a denial is decided synchronously (authorize.ts): answered without a turn either
        const handled = handle(c as LaneContext<R>);
        res = answer(c, handled instanceof Promise ? await handled : handled);
      }
    } catch (err) {
      res = house.onError(err, c);
    }
    label ??= routePath(c);
    house.end(c, label, res.status, started);
    return res;
  }
  laneHandlers.add(serve);
  app.on(route.method.toUpperCase(), route.path, serve);
}

/**
 * The app's router: the lanes' exact paths first, from a map, each matching
 * its lane alone (no middleware); every other route from Hono's own router.
 */
export class LaneRouter<T> implements Router<T> {
  readonly name: string;
  private readonly lanes = new Map<string, Map<string, Result<T>>>();

  constructor(private readonly rest: Router<T>) {
    this.name = `LaneRouter(${rest.name})`;
  }

  add(method: string, path: string, handler: T): void {
    if (!(Array.isArray(handler) && laneHandlers.has(handler[0] as object))) {
      this.rest.add(method, path, handler);
      return;
    }
    if (/[:*{]/.test(path)) throw new Error(`a lane needs an exact path, not ${path}`);
    const byPath = this.lanes.get(method) ?? new Map<string, Result<T>>();
    this.lanes.set(method, byPath);
    byPath.set(path, [[[handler, {}]]]);
  }

  match(method: string, path: string): Result<T> {
    return this.lanes.get(method)?.get(path) ?? this.rest.match(method, path);
  }
}

function answer(c: Context<AppEnv>, body: object): Response {
  return new Response(JSON.stringify(body), {
    status: 200,
    headers: { 'content-type': 'application/json', 'x-request-id': c.get('requestId') },
  });
}
