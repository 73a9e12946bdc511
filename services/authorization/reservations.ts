/**
 * Reservations a person can see and release (issue 18): a call the PBX never
 * ended holds its user's credit until expiry (maxSeconds + grace). An operator
 * lists the open ones and releases one: nothing is charged, the hold leaves the
 * account book at once (AccountBook.releaseReservation, the owner's path) and
 * the user's ledger history shows a `release` entry of 0.
 */
import { sql, type Selectable } from 'kysely';
import { validate as isUuid } from 'uuid';
import type { Db } from '../../db/connection.js';
import type { ReservationTable } from '../../db/schema.js';
import { formatMoney4, parseMoney4 } from '../../engine/index.js';
import { appendLedgerEntry, type LedgerEntryView } from '../ledger/ledger.js';
import { ConflictError, NotFoundError, ValidationError } from '../shared/errors.js';
import type { AccountBook } from './book.js';
import { recordAudit, type Actor } from '../audit/audit.js';

export type ReservationStatus = Selectable<ReservationTable>['status'];
export const reservationStatuses = ['open', 'ended', 'rated', 'expired', 'released'] as const satisfies readonly ReservationStatus[];

export interface ReservationView {
  id: string;
  userId: string;
  callId: string;
  callee: string;
  status: ReservationStatus;
  maxSeconds: number;
  holdForfaitSeconds: number;
  /** 4 decimals. */
  holdMoney: string;
  createdAt: string;
  expiresAt: string;
  releasedAt: string | null;
}

export interface ReservationFilters {
  status?: ReservationStatus;
  userId?: string;
  limit: number;
  cursor?: string;
}

/** The tenant's reservations, newest first (ids are time-ordered UUIDv7), by pages: cursor = the last id seen. */
export async function listReservations(db: Db, tenantId: string, f: ReservationFilters): Promise<{ items: ReservationView[]; nextCursor: string | null }> {
  if (f.userId !== undefined && !isUuid(f.userId)) {
    throw new ValidationError('invalid userId', [{ field: 'userId', value: f.userId, message: `\`userId\` must be a user's id (a UUID): got \`${f.userId}\`` }]);
  }
  if (f.cursor !== undefined && !isUuid(f.cursor)) {
    throw new ValidationError('invalid cursor', [{ field: 'cursor', value: f.cursor, message: 'not a cursor of this list: give the nextCursor of the previous page' }]);
  }
  let q = db
    .selectFrom('reservations')
    .select(['id', 'userId', 'callId', 'callee', 'status', 'maxSeconds', 'holdForfaitSeconds', 'holdMoney', 'createdAt', 'expiresAt', 'releasedAt'])
    .where('tenantId', '=', tenantId)
    .orderBy('id', 'desc')
    .limit(f.limit + 1);
  if (f.status !== undefined) q = q.where('status', '=', f.status);
  if (f.userId !== undefined) q = q.where('userId', '=', f.userId);
  if (f.cursor !== undefined) q = q.where('id', '<', sql<string>`${f.cursor}::uuid`);
  const rows = await q.execute();
  const items = rows.slice(0, f.limit).map((r) => ({
    id: r.id,
    userId: r.userId,
    callId: r.callId,
    callee: r.callee,
    status: r.status,
    maxSeconds: r.maxSeconds,
    holdForfaitSeconds: r.holdForfaitSeconds,
    holdMoney: formatMoney4(parseMoney4(r.holdMoney)),
    createdAt: r.createdAt.toISOString(),
    expiresAt: r.expiresAt.toISOString(),
    releasedAt: r.releasedAt === null ? null : r.releasedAt.toISOString(),
  }));
  return { items, nextCursor: rows.length > f.limit ? items[items.length - 1]!.id : null };
}

/**
 * Releases an open reservation: nothing charged, the hold freed in memory and
 * in the database, a `release` ledger entry of 0 naming the call. 404 for an id
 * the tenant does not have; 409 when the reservation is no longer open (its
 * call was rated, it expired, it was released already).
 */
export async function releaseReservation(
  book: AccountBook,
  tenantId: string,
  id: string,
  createdBy: string | null,
  actor?: Actor,
): Promise<{ reservationId: string; entry: LedgerEntryView }> {
  if (!isUuid(id)) throw new NotFoundError('reservation');
  const outcome = await book.releaseReservation(tenantId, id, async (trx, r) => {
    const held = formatMoney4(parseMoney4(r.holdMoney));
    const { entry } = await appendLedgerEntry(trx, {
      tenantId,
      userId: r.userId,
      kind: 'release',
      amount: '0',
      reason: `reservation ${id} released by an operator: call ${r.callId} to ${r.callee} was never ended by the PBX; ${held} and ${r.holdForfaitSeconds} forfait seconds held, nothing charged`,
      createdBy,
    });
    if (actor) {
      await recordAudit(trx, actor, {
        tenantId,
        action: 'reservation.release',
        targetType: 'reservation',
        targetId: id,
        before: { status: 'open', userId: r.userId, callId: r.callId, callee: r.callee, holdMoney: held, holdForfaitSeconds: r.holdForfaitSeconds },
        after: { status: 'released', ledgerEntryId: entry.id },
      });
    }
    return entry;
  });
  if (outcome === undefined) throw new NotFoundError('reservation');
  if ('status' in outcome) {
    throw new ConflictError('CONFLICT', `reservation ${id} is ${outcome.status}, not open: there is nothing to release`, [{ field: 'id', value: id, message: `status is ${outcome.status}` }]);
  }
  return { reservationId: id, entry: outcome.released };
}
