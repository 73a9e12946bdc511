import { OpenAPIHono, z } from '@hono/zod-openapi';
import type { AccountBook } from '../../services/authorization/book.js';
import { listReservations, releaseReservation, reservationStatuses } from '../../services/authorization/reservations.js';
import { actorOf } from '../../services/audit/audit.js';
import { tenantOf } from '../auth.js';
import type { AppEnv, Deps } from '../context.js';
import { ListQuery, listOf, Uuid, type DefineRoute, json } from '../route.js';
import { LedgerEntrySchema } from './users.js';

const ReservationSchema = z
  .object({
    id: Uuid,
    userId: Uuid,
    callId: z.string(),
    callee: z.string().openapi({ description: 'E.164 (or a short number’s digits)' }),
    status: z.enum(reservationStatuses).openapi({ description: 'open: holding credit; ended/rated: its call was rated; expired: its call outlived maxSeconds; released: an operator released it' }),
    maxSeconds: z.number().int(),
    holdForfaitSeconds: z.number().int(),
    holdMoney: z.string().openapi({ example: '6.2000' }),
    createdAt: z.string(),
    expiresAt: z.string(),
    releasedAt: z.string().nullable(),
  })
  .openapi('Reservation');

const ReservationQuery = ListQuery.extend({
  status: z.enum(reservationStatuses).optional().openapi({ example: 'open' }),
  userId: z.string().optional().openapi({ description: 'only this user’s reservations' }),
});

const ReleaseAnswer = z.object({ reservationId: Uuid, entry: LedgerEntrySchema }).openapi('ReservationRelease');

/** Reservations a person can see and release: a call the PBX never ended must not block its user until expiry. */
export function reservationsApp(deps: Deps, defineRoute: DefineRoute, book: AccountBook) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(
    defineRoute({
      method: 'get',
      path: '/',
      tags: ['pbx'],
      summary: 'The tenant’s reservations, newest first: `status=open` lists the credit held by calls in progress (or never ended)',
      access: { scope: 'tenant', permission: 'balances:manage', anyOf: ['cdrs:read', 'pbx:authorize'] },
      request: { query: ReservationQuery },
      responses: { 200: json('Reservations', listOf(ReservationSchema)) },
    }),
    async (c) => {
      const tenantId = tenantOf(c.get('principal'));
      return c.json(await listReservations(deps.db, tenantId, c.req.valid('query')), 200);
    },
  );
  app.openapi(
    defineRoute({
      method: 'delete',
      path: '/{id}',
      tags: ['pbx'],
      summary: 'Release an open reservation: nothing is charged, the held credit is free at once, the ledger history shows a release',
      description: 'For a call the PBX never ended. A CDR of that call sent later is still rated (and charged) as usual.',
      access: { scope: 'tenant', permission: 'balances:manage', anyOf: ['pbx:authorize'] },
      request: { params: z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: '01938f4e-8a3c-7c2a-9b1e-2f4d5a6b7c8d' }) }) },
      responses: {
        200: json('Released', ReleaseAnswer),
        409: { description: 'The reservation is not open (its call was rated, it expired, or it was released already)' },
        503: { description: 'This tenant’s accounts are owned by another server: release it there' },
      },
    }),
    async (c) => {
      const principal = c.get('principal');
      const tenantId = tenantOf(principal);
      return c.json(await releaseReservation(book, tenantId, c.req.valid('param').id, principal.keyId, actorOf(principal)), 200);
    },
  );
  return app;
}
