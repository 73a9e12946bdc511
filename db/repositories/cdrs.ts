/**
 * The statements of the CDR pipeline (services/cdrs): rating batches, rerating,
 * reprocessing and the reads of rated CDRs. Typed from db/schema.ts; the
 * functions that lock take a transaction. What goes in through COPY (CDRs,
 * ledger entries) is written by its service on `rawSql(trx)`.
 */
import { sql, type Selectable } from 'kysely';
import { anyOf, intArray, textArray } from '../arrays.js';
import type { Db, Trx } from '../connection.js';
import type { CdrTable } from '../schema.js';

/** A stored CDR with its rating (every column of `cdrs` but its tenant). */
export type CdrRow = Omit<Selectable<CdrTable>, 'tenantId'>;

const CDR_COLUMNS = [
  'id', 'callId', 'userId', 'identifiant', 'caller', 'callee', 'direction', 'startedAt', 'answeredAt', 'durationSeconds',
  'disposition', 'site', 'line', 'rateId', 'destination', 'class', 'billableSeconds', 'forfaitSeconds', 'chargedSeconds',
  'cost', 'originalCost', 'reservationId', 'ratedAt', 'reratedAt', 'numberCheck',
] as const satisfies readonly (keyof CdrRow)[];

/** The tenant's CDRs, every column of CdrRow selected: filter, order and page it further. */
export function selectCdrs(db: Db | Trx, tenantId: string) {
  return db.selectFrom('cdrs').select(CDR_COLUMNS).where('tenantId', '=', tenantId);
}

/** One CDR of the tenant by its call id, or undefined. */
export async function cdrByCallId(db: Db | Trx, tenantId: string, callId: string): Promise<CdrRow | undefined> {
  return selectCdrs(db, tenantId).where('callId', '=', callId).executeTakeFirst();
}

/** The call ids among `callIds` the tenant has stored already. */
export async function storedCallIds(trx: Trx, tenantId: string, callIds: readonly string[]): Promise<Set<string>> {
  const rows = await trx.selectFrom('cdrs').select('callId').where('tenantId', '=', tenantId).where('callId', '=', anyOf('text', callIds)).execute();
  return new Set(rows.map((r) => r.callId));
}

/**
 * The call ids among `callIds` the tenant has stored with a start in [from, to),
 * with their start: a call id is exactly once in the month of its start
 * (migration 0050), and the bounds keep the read to the batch's partitions.
 */
export async function storedCallsBetween(trx: Trx, tenantId: string, callIds: readonly string[], from: Date, to: Date) {
  return trx
    .selectFrom('cdrs')
    .select(['callId', 'startedAt'])
    .where('tenantId', '=', tenantId)
    .where('callId', '=', anyOf('text', callIds))
    .where('startedAt', '>=', from)
    .where('startedAt', '<', to)
    .execute();
}

/** The call ids among `callIds` kept in cdr_boundary_keys (stored near a month's edge, migration 0052). */
export async function boundaryCallIds(trx: Trx, tenantId: string, callIds: readonly string[]): Promise<Set<string>> {
  const rows = await trx.selectFrom('cdrBoundaryKeys').select('callId').where('tenantId', '=', tenantId).where('callId', '=', anyOf('text', callIds)).execute();
  return new Set(rows.map((r) => r.callId));
}

/** Keeps the call ids of CDRs starting near a month's edge; one already kept fails with 23505 on cdr_boundary_keys_pk. */
export async function insertBoundaryKeys(trx: Trx, tenantId: string, keys: readonly { callId: string; startedAt: string }[]): Promise<void> {
  if (keys.length === 0) return;
  await sql`
    INSERT INTO cdr_boundary_keys (tenant_id, call_id, started_at)
    SELECT ${tenantId}, k.call_id, k.started_at
      FROM unnest(${textArray(keys.map((k) => k.callId))}::text[], ${textArray(keys.map((k) => k.startedAt))}::timestamptz[]) AS k(call_id, started_at)`.execute(trx);
}

/**
 * `count` ids from the `cdrs` identity sequence, in one round trip (the sequence
 * hands each connection blocks of ids, migration 0006), and the transaction's
 * now() — the rated_at the rows will get.
 */
export async function takeCdrIds(trx: Trx, count: number): Promise<{ at: Date; ids: string[] }> {
  const { rows } = await sql<{ at: Date; ids: string }>`
    WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence('cdrs', 'id')::regclass AS seq)
    SELECT now() AS at, string_agg(nextval(s.seq)::text, ',') AS ids FROM s, generate_series(1, ${count}::int)`.execute(trx);
  return { at: rows[0]!.at, ids: rows[0]!.ids.split(',') };
}

// ---- the callers' accounts ---------------------------------------------------

/** The callers of a batch, locked in id order (batches that share users queue instead of deadlocking). */
export async function lockCallers(trx: Trx, tenantId: string, identifiants: readonly string[]) {
  return trx
    .selectFrom('users')
    .select(['id', 'identifiant', 'forfaitMinutes', 'usedSeconds', 'forfaitPeriod', 'balance', 'billingEnabled'])
    .where('tenantId', '=', tenantId)
    .where('identifiant', '=', anyOf('text', identifiants))
    .orderBy('id')
    .forUpdate()
    .execute();
}

/** Users by identifiant, not locked (the called users of incoming CDRs). */
export async function usersByIdentifiant(trx: Trx, tenantId: string, identifiants: readonly string[]) {
  return trx.selectFrom('users').select(['id', 'identifiant']).where('tenantId', '=', tenantId).where('identifiant', '=', anyOf('text', identifiants)).execute();
}

/** The users of some CDRs, locked in id order (the order every writer of balances uses). */
export async function lockUsersOfCdrs(trx: Trx, tenantId: string, cdrIds: readonly string[]) {
  return trx
    .selectFrom('users')
    .select(['id', 'balance', 'billingEnabled', 'forfaitPeriod', 'forfaitMinutes', 'usedSeconds'])
    .where('tenantId', '=', tenantId)
    .where('id', 'in', (eb) => eb.selectFrom('cdrs').select('userId').distinct().where('tenantId', '=', tenantId).where('id', '=', anyOf('bigint', cdrIds)).$narrowType<{ userId: string }>())
    .orderBy('id')
    .forUpdate()
    .execute();
}

// ---- reservations of rated calls ---------------------------------------------

/** The reservations made for these call ids (the authorizations of calls now rated). */
export async function reservationsOfCalls(trx: Trx, tenantId: string, callIds: readonly string[]) {
  return trx.selectFrom('reservations').select(['id', 'callId', 'status']).where('tenantId', '=', tenantId).where('callId', '=', anyOf('text', callIds)).execute();
}

/** Releases open reservations whose calls are rated; how many were still open (another transaction may have rated one meanwhile). */
export async function markReservationsRated(trx: Trx, tenantId: string, ids: readonly string[]): Promise<number> {
  const r = await trx
    .updateTable('reservations')
    .set({ status: 'rated', releasedAt: sql`now()` })
    .where('tenantId', '=', tenantId)
    .where('id', '=', anyOf('uuid', ids))
    .where('status', '=', 'open')
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

// ---- rejects -----------------------------------------------------------------

export interface RejectToStore {
  callId: string | null;
  reason: string;
  raw: string;
}

/** Stores rejects: one pending row per call id (a file imported twice does not store its rejects twice). */
export async function storeRejects(trx: Trx, tenantId: string, source: string, rejects: readonly RejectToStore[]): Promise<void> {
  if (rejects.length === 0) return;
  await sql`
    INSERT INTO rejected_cdrs (tenant_id, call_id, reason, source, raw)
    SELECT ${tenantId}, v.call_id, v.reason, ${source}, v.raw
      FROM unnest(${textArray(rejects.map((r) => r.callId))}::text[], ${textArray(rejects.map((r) => r.reason))}::text[],
                  ${textArray(rejects.map((r) => r.raw))}::text[]) AS v(call_id, reason, raw)
    ON CONFLICT (tenant_id, call_id) WHERE reprocessed_at IS NULL DO NOTHING`.execute(trx);
}

/** Marks pending rejects as reprocessed (rated now, or found rated meanwhile). */
export async function markRejectsReprocessed(trx: Trx, tenantId: string, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await trx
    .updateTable('rejectedCdrs')
    .set({ reprocessedAt: sql`now()` })
    .where('tenantId', '=', tenantId)
    .where('id', '=', anyOf('bigint', ids))
    .where('reprocessedAt', 'is', null)
    .execute();
}

/** A page of the tenant's pending rejects with one of `reasons`, by id after `after`. */
export async function pendingRejects(db: Db, tenantId: string, reasons: readonly string[], after: string, limit: number) {
  return db
    .selectFrom('rejectedCdrs')
    .select(['id', 'source', 'raw'])
    .where('tenantId', '=', tenantId)
    .where('reprocessedAt', 'is', null)
    .where('reason', '=', anyOf('text', reasons))
    .where('id', '>', sql<string>`${after}::bigint`)
    .orderBy('id')
    .limit(limit)
    .execute();
}

// ---- rerating ----------------------------------------------------------------

/** A page of ids of the outgoing CDRs with a user started in [from, to), after `after`. */
export async function outgoingCdrIds(db: Db, tenantId: string, from: Date, to: Date, after: string, limit: number): Promise<string[]> {
  const rows = await db
    .selectFrom('cdrs')
    .select('id')
    .where('tenantId', '=', tenantId)
    .where('direction', '=', 'out')
    .where('userId', 'is not', null)
    .where('startedAt', '>=', from)
    .where('startedAt', '<', to)
    .where('id', '>', sql<string>`${after}::bigint`)
    .orderBy('id')
    .limit(limit)
    .execute();
  return rows.map((r) => r.id);
}

/** What a rerate reads of a CDR, locked: outgoing calls with a user (user_id IS NOT NULL when they are picked). */
export async function lockCdrRatings(trx: Trx, tenantId: string, ids: readonly string[]) {
  return trx
    .selectFrom('cdrs')
    .select(['id', 'userId', 'callee', 'startedAt', 'durationSeconds', 'disposition', 'rateId', 'destination', 'class', 'billableSeconds', 'forfaitSeconds', 'chargedSeconds', 'cost'])
    .where('tenantId', '=', tenantId)
    .where('id', '=', anyOf('bigint', ids))
    .orderBy('id')
    .forUpdate()
    .$narrowType<{ userId: string }>()
    .execute();
}

/** A CDR's new rating; its cost in numeric(20,4) text. */
export type Rerating = Pick<CdrRow, 'id' | 'rateId' | 'destination' | 'class' | 'billableSeconds' | 'forfaitSeconds' | 'chargedSeconds' | 'cost'> & {
  /** Keep the first cost in original_cost (the cost changes). */
  costChanged: boolean;
};

/** Writes new ratings; a CDR whose cost changes keeps its first cost in original_cost. */
export async function updateRatings(trx: Trx, tenantId: string, updates: readonly Rerating[]): Promise<void> {
  if (updates.length === 0) return;
  await sql`
    UPDATE cdrs c SET
      rate_id = v.rate_id, destination = v.destination, class = v.class,
      billable_seconds = v.billable, forfait_seconds = v.forfait, charged_seconds = v.charged,
      original_cost = CASE WHEN v.cost_changed THEN COALESCE(c.original_cost, c.cost) ELSE c.original_cost END,
      cost = v.cost,
      rerated_at = now()
    FROM unnest(${textArray(updates.map((u) => u.id))}::bigint[], ${textArray(updates.map((u) => u.rateId))}::bigint[],
                ${textArray(updates.map((u) => u.destination))}::text[], ${textArray(updates.map((u) => u.class))}::text[],
                ${intArray(updates.map((u) => u.billableSeconds))}::int[], ${intArray(updates.map((u) => u.forfaitSeconds))}::int[],
                ${intArray(updates.map((u) => u.chargedSeconds))}::int[], ${textArray(updates.map((u) => u.cost))}::numeric[],
                ${textArray(updates.map((u) => String(u.costChanged)))}::boolean[])
         AS v(id, rate_id, destination, class, billable, forfait, charged, cost, cost_changed)
    WHERE c.tenant_id = ${tenantId} AND c.id = v.id`.execute(trx);
}
