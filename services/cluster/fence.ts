import { errorCode } from '../../db/errors.js';

/**
 * The reservations fence (migration 0080), seen from the code: every
 * connection of a clustered server names the server in this custom setting,
 * and PostgreSQL refuses that server's reservations for a tenant another
 * server has claimed, with this SQLSTATE.
 */

/** The custom setting every connection of a clustered server carries. */
export const SERVER_SETTING = 'forfait.server_id';

/** SQLSTATE of the fence: a reservation for a tenant another server owns now. */
export const FENCED_SQLSTATE = 'FF001';

/** A commit refused by the fence (the reservation writer hands its SQLSTATE back as `code`). */
export function isFenced(err: unknown): boolean {
  return errorCode(err) === FENCED_SQLSTATE;
}
