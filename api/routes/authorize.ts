import { randomUUID } from 'node:crypto';
import { OpenAPIHono, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { authorize, type AuthorizationService } from '../../services/authorization/authorize.js';
import { endCall } from '../../services/authorization/endCall.js';
import type { CdrDeps } from '../../services/cdrs/context.js';
import { DENY_REASONS } from '../../engine/index.js';
import { CdrSchema } from './cdrs.js';
import { bearer, tenantOf, type KeyCache } from '../auth.js';
import type { AppEnv, Deps } from '../context.js';
import { sendError, toApiError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { DefineRoute } from '../route.js';

const AuthorizeRequest = z
  .object({
    identifiant: z.string().regex(/^\d{7}$/, 'exactly 7 digits').openapi({ example: '1234567' }),
    callee: z.string().min(1).max(40).optional().openapi({ example: '0612345678' }),
    key: z.number().int().min(1).max(10).optional().openapi({ description: 'speed-dial key: the authorized number in that slot' }),
    callId: z.string().min(1).max(200).optional().openapi({ description: 'the PBX call id; a retry with the same callId gets the same answer' }),
  })
  .strict()
  .refine((r) => (r.callee === undefined) !== (r.key === undefined), { message: 'give either callee or key', path: ['callee'] })
  .openapi('AuthorizeRequest');

export const AuthorizationAnswerSchema = z
  .object({
    decision: z.enum(['allow', 'deny']),
    reason: z.enum(DENY_REASONS).optional(),
    maxSeconds: z.number().int(),
    reservationId: z.string().uuid().optional(),
    callee: z.string().nullable().openapi({ description: 'E.164 (or a short number’s digits)' }),
    destination: z.string().optional(),
    class: z.string().optional(),
    pricePerMinute: z.string().optional(),
    lowBalance: z.boolean().optional(),
  })
  .openapi('AuthorizationAnswer');

export function authorizeApp(deps: Deps, defineRoute: DefineRoute, svc: AuthorizationService, metrics: Metrics) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(
    defineRoute({
      method: 'post',
      path: '/',
      tags: ['pbx'],
      summary: 'May this user call this number, and for how long? (SPEC §5)',
      description:
        'Always 200 with a decision for a well-formed request. An allow holds the credit of a maxSeconds call; it is answered only after that reservation is committed.',
      access: { scope: 'tenant', permission: 'pbx:authorize' },
      request: { body: { required: true, content: { 'application/json': { schema: AuthorizeRequest } } } },
      responses: {
        200: { description: 'The decision', content: { 'application/json': { schema: AuthorizationAnswerSchema } } },
        409: { description: 'callId already used by an earlier call' },
        503: { description: 'This tenant’s accounts are owned by another server' },
      },
    }),
    async (c) => {
      const started = process.hrtime.bigint();
      const answer = await authorize(svc, tenantOf(c.get('principal')), c.req.valid('json'));
      metrics.authorization(answer.decision, answer.reason ?? '', Number(process.hrtime.bigint() - started) / 1e9);
      return c.json(answer, 200);
    },
  );
  void deps;
  return app;
}

/** The client's request id when it is a sane one (as hono's requestId middleware accepts), else a new one. */
function requestIdOf(given: string | undefined): string {
  return given && given.length <= 255 && !/[^\w\-=]/.test(given) ? given : randomUUID();
}

/** The label the metrics middleware gives this route. */
const ROUTE = '/v1/authorize';

/**
 * The PBX's hot path, in front of the generic middleware stack: for a request
 * the full route would accept — a declared JSON body within the limit, a key
 * already in the cache holding pbx:authorize, a body the route's own zod schema
 * accepts — it decides and answers here, skipping the per-request layers
 * (metrics middleware, route matching into the sub-app, the validator
 * middlewares) that cost more than the decision itself. Anything else (no or an
 * uncached key, a body that fails the schema, chunked bodies, other methods) goes
 * on to the full route, which answers it the usual way; the body read here is
 * cached by Hono, so the route reads it again for free. Same answers, same
 * errors, same metrics. It runs before the request-id middleware: SPEC §7 puts
 * the request id in error bodies, so only an error answered here gets a new
 * one (header and body); an allow or deny echoes the client's x-request-id but
 * is not worth a UUID of its own.
 */
export function authorizeFastPath(
  keys: KeyCache,
  svc: AuthorizationService,
  metrics: Metrics,
  maxBody: number,
  onInternal: (err: unknown, requestId: string) => void,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (c.req.method !== 'POST') return next();
    const received = process.hrtime.bigint();
    const length = c.req.header('content-length');
    if (length === undefined || !(Number(length) <= maxBody) || c.req.header('transfer-encoding') !== undefined) return next();
    if (!(c.req.header('content-type') ?? '').toLowerCase().startsWith('application/json')) return next();
    const key = bearer(c.req.header('authorization'));
    const principal = key === undefined ? undefined : keys.peek(key);
    if (principal?.kind !== 'tenant' || !principal.permissions.has('pbx:authorize')) return next();
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return next();
    }
    const parsed = AuthorizeRequest.safeParse(body);
    if (!parsed.success) return next();

    c.set('principal', principal);
    const started = process.hrtime.bigint();
    let status = 200;
    try {
      const answer = await authorize(svc, principal.tenantId, parsed.data);
      metrics.authorization(answer.decision, answer.reason ?? '', Number(process.hrtime.bigint() - started) / 1e9);
      const given = c.req.header('x-request-id');
      if (given !== undefined) c.header('x-request-id', requestIdOf(given));
      return c.json(answer, 200);
    } catch (err) {
      const id = requestIdOf(c.req.header('x-request-id'));
      c.set('requestId', id);
      c.header('x-request-id', id);
      const apiErr = toApiError(err);
      if (apiErr.code === 'INTERNAL') onInternal(err, id);
      const res = sendError(c, apiErr);
      status = res.status;
      return res;
    } finally {
      metrics.request('POST', ROUTE, status, Number(process.hrtime.bigint() - received) / 1e9);
    }
  };
}

const CallEndRequest = z
  .object({
    durationSeconds: z.number().int().min(0).max(7 * 86_400).openapi({ description: 'billable talk time ("billsec")' }),
    disposition: CdrSchema.shape.disposition,
    answeredAt: z.string().datetime({ offset: true }).optional(),
  })
  .strict()
  .openapi('CallEnd');

export function callsApp(deps: Deps, defineRoute: DefineRoute, svc: AuthorizationService & { cdrs: CdrDeps }) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(
    defineRoute({
      method: 'post',
      path: '/{reservationId}/end',
      tags: ['pbx'],
      summary: 'The call is over: rate it now and release its reservation (SPEC §5)',
      description: 'Answers the rated CDR; repeating it answers the same CDR. A CDR sent later with the same callId is a duplicate.',
      access: { scope: 'tenant', permission: 'pbx:authorize' },
      request: {
        params: z.object({ reservationId: z.string().openapi({ param: { name: 'reservationId', in: 'path' } }) }),
        body: { required: true, content: { 'application/json': { schema: CallEndRequest } } },
      },
      responses: {
        200: { description: 'The rated call', content: { 'application/json': { schema: CdrSchema } } },
        409: { description: 'The call could not be rated (its user or rate is gone); the reservation is released' },
      },
    }),
    async (c) => {
      const cdr = await endCall(
        { ...svc.cdrs, book: svc.book },
        tenantOf(c.get('principal')),
        c.req.valid('param').reservationId,
        c.req.valid('json'),
      );
      return c.json(cdr, 200);
    },
  );
  void deps;
  return app;
}
