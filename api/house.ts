import type { Context, MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { Logger } from 'pino';
import type { AppEnv } from './context.js';
import { sendError, toApiError } from './errors.js';
import type { Metrics } from './metrics.js';
import { requestIdOf } from './requestId.js';

/**
 * What every request gets, whichever route serves it: an id (in `X-Request-Id`
 * and in error bodies), the §7 error envelope, a count and a latency in the
 * metrics, and a log line when it fails. The app runs `middleware()` in front
 * of every route; the PBX lane (lane.ts) calls `begin`, `onError` and `end`
 * itself.
 */
export class House {
  constructor(
    readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  /** Names the request (`c.var.requestId`); returns when it started, for `end`. */
  begin(c: Context<AppEnv>): number {
    c.set('requestId', requestIdOf(c.req.header('x-request-id')));
    return performance.now();
  }

  /** Counts the answered request; logs it when it failed (5xx) or at debug level. */
  end(c: Context<AppEnv>, route: string, status: number, started: number): void {
    const seconds = (performance.now() - started) / 1000;
    this.metrics.request(c.req.method, route, status, seconds);
    if (status >= 500 || this.logger.isLevelEnabled('debug')) {
      this.logger.info({ requestId: c.get('requestId'), method: c.req.method, route, status, ms: seconds * 1000 }, 'request');
    }
  }

  /** The answer to an error: the §7 envelope; a 500's cause goes to the log, never to the client. */
  readonly onError = (err: unknown, c: Context<AppEnv>): Response => {
    const apiErr = toApiError(err);
    if (apiErr.code === 'INTERNAL') this.logger.error({ err, requestId: c.get('requestId'), path: c.req.path }, 'unhandled error');
    return sendError(c, apiErr);
  };

  /** The house as the app's first middleware. */
  middleware(): MiddlewareHandler<AppEnv> {
    return async (c, next) => {
      const started = this.begin(c);
      c.header('x-request-id', c.get('requestId'));
      await next();
      this.end(c, routePath(c, -1) || 'unmatched', c.res.status, started);
    };
  }
}
