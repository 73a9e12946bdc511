import { randomUUID } from 'node:crypto';
import { OpenAPIHono, z } from '@hono/zod-openapi';
import { IncomingMessage, type IncomingHttpHeaders } from 'node:http';
import { authorize, type AuthorizationService } from '../../services/authorization/authorize.js';
import type { AuthorizationAnswer } from '../../services/authorization/book.js';
import { endCall } from '../../services/authorization/endCall.js';
import type { CdrDeps } from '../../services/cdrs/context.js';
import { DENY_REASONS } from '../../engine/index.js';
import { CdrSchema } from './cdrs.js';
import { bearer, tenantOf, type KeyCache } from '../auth.js';
import type { AppEnv, Deps } from '../context.js';
import { errorBody, errorStatus, toApiError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { DefineRoute } from '../route.js';
import { safeText } from '../input.js';

const AuthorizeRequest = z
  .object({
    identifiant: z.string().regex(/^\d{7}$/, 'exactly 7 digits').openapi({ example: '1234567' }),
    callee: safeText().min(1).max(40).optional().openapi({ example: '0612345678' }),
    key: z.number().int().min(1).max(10).optional().openapi({ description: 'speed-dial key: the authorized number in that slot' }),
    callId: safeText().min(1).max(200).optional().openapi({ description: 'the PBX call id; a retry with the same callId gets the same answer' }),
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

type Fetch = OpenAPIHono<AppEnv>['fetch'];

/** @hono/node-server passes Node's request as env.incoming: its headers are a plain object, cheaper to read than web Headers. */
function nodeIncoming(env: unknown): IncomingMessage | undefined {
  if (typeof env !== 'object' || env === null || !('incoming' in env)) return undefined;
  const incoming = (env as { incoming: unknown }).incoming;
  return incoming instanceof IncomingMessage ? incoming : undefined;
}

function header(req: Request, node: IncomingHttpHeaders | undefined, name: string): string | undefined {
  if (node) {
    const v = node[name];
    return typeof v === 'string' ? v : undefined;
  }
  return req.headers.get(name) ?? undefined;
}

function pathOf(url: string): string {
  const start = url.indexOf('/', url.indexOf('//') + 2);
  return start < 0 ? '/' : url.slice(start);
}

const JSON_TYPE = 'application/json';

/** What the hot path's answer needs of its request. */
interface Hot {
  metrics: Metrics;
  onInternal: (err: unknown, requestId: string) => void;
  received: number;
  givenId: string | undefined;
}

// Module functions, not closures per request: tsx (esbuild's keepNames) gives
// every closure assigned to a name an Object.defineProperty each time it is made.

function answered(hot: Hot, answer: AuthorizationAnswer, started: number): Response {
  const done = performance.now();
  hot.metrics.authorization(answer.decision, answer.reason ?? '', (done - started) / 1000);
  hot.metrics.request('POST', ROUTE, 200, (done - hot.received) / 1000);
  const headers: Record<string, string> = { 'content-type': JSON_TYPE };
  if (hot.givenId !== undefined) headers['x-request-id'] = requestIdOf(hot.givenId);
  return new Response(JSON.stringify(answer), { status: 200, headers });
}

function failed(hot: Hot, err: unknown): Response {
  const requestId = requestIdOf(hot.givenId);
  const apiErr = toApiError(err);
  if (apiErr.code === 'INTERNAL') hot.onInternal(err, requestId);
  const status = errorStatus[apiErr.code];
  hot.metrics.request('POST', ROUTE, status, (performance.now() - hot.received) / 1000);
  const headers: Record<string, string> = { ...apiErr.headers, 'content-type': JSON_TYPE, 'x-request-id': requestId };
  return new Response(JSON.stringify(errorBody(apiErr.code, apiErr.message, requestId, apiErr.details)), { status, headers });
}

/**
 * The PBX's hot path, in front of Hono: for a request the full route would
 * accept — POST /v1/authorize with a declared JSON body within the limit, a key
 * already in the cache holding pbx:authorize, a body the route's own zod schema
 * accepts — it decides and answers here. This skips what costs more than the
 * decision itself: route matching over every route of the API, the middleware
 * stack (request id, metrics, access, validators), Hono's context, and the web
 * Headers of the request (on Node it reads the plain header object node:http
 * already parsed). Anything else (no or an uncached key, a body that fails the
 * schema, chunked bodies, other methods and paths) goes to Hono, which answers it
 * the usual way; a body read here is handed over in a new Request. Same answers,
 * same errors, same metrics. SPEC §7 puts the request id in error bodies, so
 * only an error answered here gets a new one (header and body); an allow or deny
 * echoes the client's x-request-id but is not worth a UUID of its own.
 */
export function authorizeHotPath(
  keys: KeyCache,
  svc: AuthorizationService,
  metrics: Metrics,
  maxBody: number,
  onInternal: (err: unknown, requestId: string) => void,
  routed: Fetch,
): Fetch {
  return (req, env, executionCtx) => {
    if (req.method !== 'POST') return routed(req, env, executionCtx);
    const incoming = nodeIncoming(env);
    if ((incoming ? incoming.url : pathOf(req.url)) !== ROUTE) return routed(req, env, executionCtx);
    const received = performance.now();
    const h = incoming?.headers;
    const length = header(req, h, 'content-length');
    if (length === undefined || !(Number(length) <= maxBody) || header(req, h, 'transfer-encoding') !== undefined) return routed(req, env, executionCtx);
    if (!(header(req, h, 'content-type') ?? '').toLowerCase().startsWith(JSON_TYPE)) return routed(req, env, executionCtx);
    const key = bearer(header(req, h, 'authorization'));
    const principal = key === undefined ? undefined : keys.peek(key);
    if (principal?.kind !== 'tenant' || !principal.permissions.has('pbx:authorize')) return routed(req, env, executionCtx);
    const hot: Hot = { metrics, onInternal, received, givenId: header(req, h, 'x-request-id') };

    return req.text().then((text) => {
      let parsed: ReturnType<typeof AuthorizeRequest.safeParse> | undefined;
      try {
        parsed = AuthorizeRequest.safeParse(JSON.parse(text));
      } catch {
        parsed = undefined;
      }
      if (!parsed?.success) {
        // the full route answers it (its 400 names the field); the body was read here
        return routed(new Request(req.url, { method: 'POST', headers: req.headers, body: text }), env, executionCtx);
      }
      const started = performance.now();
      let result: AuthorizationAnswer | Promise<AuthorizationAnswer>;
      try {
        result = authorize(svc, principal.tenantId, parsed.data);
      } catch (err) {
        return failed(hot, err);
      }
      return result instanceof Promise
        ? result.then(
            (answer) => answered(hot, answer, started),
            (err: unknown) => failed(hot, err),
          )
        : answered(hot, result, started);
    });
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
