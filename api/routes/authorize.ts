import { OpenAPIHono, z } from '@hono/zod-openapi';
import { authorize, type AuthorizationService } from '../../services/authorization/authorize.js';
import type { AuthorizationAnswer } from '../../services/authorization/book.js';
import { endCall } from '../../services/authorization/endCall.js';
import type { CdrDeps } from '../../services/cdrs/context.js';
import { DENY_REASONS } from '../../engine/index.js';
import { CdrSchema } from './cdrs.js';
import { tenantOf } from '../auth.js';
import type { AppEnv, Deps } from '../context.js';
import type { Metrics } from '../metrics.js';
import type { House } from '../house.js';
import { laneRoute } from '../lane.js';
import { openapiWithJsonBody, type DefineRoute, json, jsonRequest } from '../route.js';

const AuthorizeRequest = z
  .object({
    identifiant: z.string().regex(/^\d{7}$/, 'exactly 7 digits').openapi({ example: '1234567' }),
    callee: z.string().min(1).max(40).optional().openapi({ example: '0612345678' }),
    key: z.number().int().min(1).max(10).optional().openapi({ description: 'speed-dial key: the authorized number in that slot' }),
    callId: z.string().min(1).max(200).optional().openapi({ description: 'the PBX call id; a retry with the same callId gets the same answer' }),
  })
  .strict()
  .refine((r) => (r.callee === undefined) !== (r.key === undefined), { message: 'give either callee or key, not both', path: ['callee'] })
  // one example for the whole request: built from each field's, it sent callee and key, which is refused
  .openapi('AuthorizeRequest', { example: { identifiant: '1234567', callee: '0612345678', callId: 'a1b2c3d4@pbx' } });

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

/** POST /v1/authorize, on the PBX lane (lane.ts): every call set-up asks it. */
export function authorizeApp(deps: Deps, defineRoute: DefineRoute, house: House, svc: AuthorizationService, metrics: Metrics) {
  const app = new OpenAPIHono<AppEnv>();
  laneRoute(
    app,
    house,
    defineRoute({
      method: 'post',
      path: '/',
      tags: ['pbx'],
      summary: 'May this user call this number, and for how long? (SPEC §5)',
      description:
        'Always 200 with a decision for a well-formed request. An allow holds the credit of a maxSeconds call; it is answered only after that reservation is committed.',
      access: { scope: 'tenant', permission: 'pbx:authorize' },
      request: { body: jsonRequest(AuthorizeRequest) },
      responses: {
        200: json('The decision', AuthorizationAnswerSchema),
        409: { description: 'callId already used by an earlier call' },
        503: { description: 'This tenant’s accounts are owned by another server' },
      },
    }),
    (c) => {
      const started = performance.now();
      // a denial is decided synchronously (authorize.ts): counted and answered without a turn of the event loop
      const decided = authorize(svc, tenantOf(c.get('principal')), c.req.valid('json'));
      return decided instanceof Promise ? decided.then((answer) => counted(metrics, answer, started)) : counted(metrics, decided, started);
    },
  );
  void deps;
  return app;
}

/** The decision in the authorization metrics, with its time from `started`. */
function counted(metrics: Metrics, answer: AuthorizationAnswer, started: number): AuthorizationAnswer {
  metrics.authorization(answer.decision, answer.reason ?? '', (performance.now() - started) / 1000);
  return answer;
}

const CallEndRequest = z
  .object({
    durationSeconds: z.number().int().min(0).max(7 * 86_400).openapi({ description: 'billable talk time ("billsec")' }),
    disposition: CdrSchema.shape.disposition,
    answeredAt: z.string().datetime({ offset: true }).optional(),
  })
  .strict()
  .openapi('CallEnd', { example: { durationSeconds: 85, disposition: 'answered' } });

export function callsApp(deps: Deps, defineRoute: DefineRoute, svc: AuthorizationService & { cdrs: CdrDeps }) {
  const app = new OpenAPIHono<AppEnv>();
  openapiWithJsonBody(
    app,
    defineRoute({
      method: 'post',
      path: '/{reservationId}/end',
      tags: ['pbx'],
      summary: 'The call is over: rate it now and release its reservation (SPEC §5)',
      description: 'Answers the rated CDR; repeating it answers the same CDR. A CDR sent later with the same callId is a duplicate.',
      access: { scope: 'tenant', permission: 'pbx:authorize' },
      request: {
        params: z.object({ reservationId: z.string().openapi({ param: { name: 'reservationId', in: 'path' } }) }),
        body: jsonRequest(CallEndRequest),
      },
      responses: {
        200: json('The rated call', CdrSchema),
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
