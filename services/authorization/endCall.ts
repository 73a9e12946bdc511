import { sql } from 'kysely';
import { validate as isUuid } from 'uuid';
import type { CdrDeps } from '../cdrs/context.js';
import { ingestCdrs } from '../cdrs/ingest.js';
import { cdrView, getCdrByCallId, type CdrView } from '../cdrs/view.js';
import type { Disposition } from '../cdrs/types.js';
import { ConflictError, NotFoundError } from '../shared/errors.js';
import type { AccountBook } from './book.js';

export interface CallEnd {
  durationSeconds: number;
  disposition: Disposition;
  answeredAt?: string;
}


/**
 * SPEC §5: `POST /v1/calls/{reservationId}/end` rates the call now through the
 * same batch path as every CDR (so a CDR arriving later with the same callId is
 * a duplicate), which also closes the reservation in the same transaction; the
 * hold leaves memory once the book has seen that commit. Repeating the call
 * answers the same rated CDR.
 */
export async function endCall(
  deps: CdrDeps & { book: AccountBook },
  tenantId: string,
  reservationId: string,
  end: CallEnd,
): Promise<CdrView> {
  if (!isUuid(reservationId)) throw new NotFoundError('reservation');
  const reservation = await deps.db
    .selectFrom('reservations')
    .select(['callId', 'userId', 'callee', 'createdAt'])
    .where('tenantId', '=', tenantId)
    .where('id', '=', reservationId)
    .executeTakeFirst();
  if (!reservation) throw new NotFoundError('reservation');
  const tenant = await deps.db
    .selectFrom('tenants')
    .select(['country', 'timezone', 'numberDisplay'])
    .where('id', '=', tenantId)
    .executeTakeFirstOrThrow();

  let row = await getCdrByCallId(deps.sql, tenantId, reservation.callId);
  if (!row) {
    const user = await deps.db
      .selectFrom('users')
      .select('identifiant')
      .where('tenantId', '=', tenantId)
      .where('id', '=', reservation.userId)
      .executeTakeFirst();
    const result = await ingestCdrs(
      deps,
      tenantId,
      [
        {
          callId: reservation.callId,
          identifiant: user?.identifiant ?? null,
          callee: reservation.callee,
          direction: 'out',
          startedAt: reservation.createdAt.toISOString(),
          answeredAt: end.answeredAt ?? null,
          durationSeconds: end.durationSeconds,
          disposition: end.disposition,
        },
      ],
      'call-end',
    );
    const rejected = result.rejected[0];
    if (rejected) {
      // the call cannot be rated (its user was deleted, its rate removed): the
      // reservation still gives its credit back, and the reject waits for reprocessing
      await deps.db
        .updateTable('reservations')
        .set({ status: 'ended', releasedAt: sql<Date>`now()` })
        .where('tenantId', '=', tenantId)
        .where('id', '=', reservationId)
        .where('status', '=', 'open')
        .execute();
      await deps.book.barrier();
      throw new ConflictError('CONFLICT', `the call could not be rated: ${rejected.reason} (${rejected.message})`);
    }
    row = result.rated[0] ?? (await getCdrByCallId(deps.sql, tenantId, reservation.callId));
    if (!row) throw new NotFoundError('rated call');
  }
  // the credit is back in the book before the PBX authorizes the next call
  await deps.book.barrier();
  return cdrView(row, tenant);
}
