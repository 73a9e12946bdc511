/**
 * One batch of CDRs, rated and written in ONE transaction (SPEC §4.6):
 *
 * 1. lock the users of the outgoing CDRs (FOR UPDATE, by id: batches that share
 *    users queue behind each other instead of deadlocking);
 * 2. rate in JS with the engine, per user in started_at order, against the
 *    forfait and balance read under the lock;
 * 3. insert the CDRs set-based with ON CONFLICT (tenant_id, call_id) DO NOTHING:
 *    the unique key is the exactly-once guarantee. If any row was not inserted,
 *    another batch stored that call first: the transaction is rolled back and
 *    the batch redone without those calls (their rating may have spent the
 *    forfait the others need, so nothing of the attempt is kept);
 * 4. update each user once (counters, balance), append the `call` ledger entries
 *    with running balance_after, release the matching reservations, store the
 *    rejects — and commit. A crash anywhere before the commit leaves nothing.
 */
import type postgres from 'postgres';
import { digitsForLookup, rateCall, type CompiledRate, type RatedCall } from '../../engine/index.js';
import type { TenantContext } from './context.js';
import { applyAccountChanges, type CounterDelta, type LedgerLine, type LockedAccount } from './ledgerBatch.js';
import { intArray, textArray, toUnits4 } from './pgArrays.js';
import type { CdrRow, NormalizedCdr, Rejection } from './types.js';
import { addCdrsToRollups } from '../indicators/rollups.js';

export interface BatchResult {
  accepted: number;
  duplicates: number;
  /** Rejections stored (or already stored) for this batch, malformed ones included. */
  rejections: Rejection[];
  /** The rows inserted, when asked for. */
  rows: CdrRow[];
}

interface UserRow {
  id: string;
  identifiant: string;
  forfaitMinutes: number;
  usedSeconds: number;
  balance: string;
  billingEnabled: boolean;
}

interface Planned {
  cdr: NormalizedCdr;
  userId: string | null;
  rate: CompiledRate | undefined;
  rated: RatedCall;
  reservationId: string | null;
}

/** Another transaction stored some of this batch's call ids first. */
class Shortfall extends Error {
  constructor(readonly callIds: string[]) {
    super(`${callIds.length} call id(s) stored concurrently`);
  }
}

const ZERO: RatedCall = { billableSeconds: 0, forfaitSeconds: 0, chargedSeconds: 0, cost: 0 as RatedCall['cost'] };
const RETRYABLE = new Set(['40P01', '40001']);
const MAX_ATTEMPTS = 10;

function isRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && RETRYABLE.has(String((err as { code: unknown }).code));
}

/**
 * Rates and writes one batch; retried on a concurrent duplicate or a deadlock.
 * `malformed` rejections are stored in the same transaction.
 */
export async function writeBatch(
  sql: postgres.Sql,
  ctx: TenantContext,
  cdrs: readonly NormalizedCdr[],
  malformed: readonly Rejection[],
  options: { source: string; wantRows?: boolean },
): Promise<BatchResult> {
  // duplicates inside the batch: the first occurrence wins
  const seen = new Set<string>();
  const unique: NormalizedCdr[] = [];
  let duplicatesInBatch = 0;
  const repeatedRejectIds: string[] = [];
  for (const c of cdrs) {
    if (seen.has(c.callId)) {
      duplicatesInBatch++;
      if (c.rejectId !== undefined) repeatedRejectIds.push(c.rejectId);
    } else {
      seen.add(c.callId);
      unique.push(c);
    }
  }
  const stored = new Set<string>();
  for (let attempt = 1; ; attempt++) {
    try {
      const result = (await sql.begin((tx) =>
        attemptBatch(tx, ctx, unique.filter((c) => !stored.has(c.callId)), unique.filter((c) => stored.has(c.callId)), malformed, repeatedRejectIds, options),
      )) as BatchResult;
      return { ...result, duplicates: result.duplicates + duplicatesInBatch };
    } catch (err) {
      if (attempt >= MAX_ATTEMPTS) throw err;
      if (err instanceof Shortfall) for (const id of err.callIds) stored.add(id);
      else if (!isRetryable(err)) throw err;
    }
  }
}

async function attemptBatch(
  tx: postgres.TransactionSql,
  ctx: TenantContext,
  work: readonly NormalizedCdr[],
  knownDuplicates: readonly NormalizedCdr[],
  malformed: readonly Rejection[],
  repeatedRejectIds: readonly string[],
  options: { source: string; wantRows?: boolean },
): Promise<BatchResult> {
  const tenantId = ctx.id;

  // 1. lock the callers' accounts, in id order
  const outIdents = new Set<string>();
  const inIdents = new Set<string>();
  for (const c of work) {
    if (c.identifiant === null) continue;
    if (c.direction === 'out') outIdents.add(c.identifiant);
    else inIdents.add(c.identifiant);
  }
  const users = new Map<string, UserRow>();
  if (outIdents.size > 0) {
    const rows = await tx<UserRow[]>`
      SELECT id, identifiant, forfait_minutes AS "forfaitMinutes", used_seconds AS "usedSeconds", balance, billing_enabled AS "billingEnabled"
        FROM users WHERE tenant_id = ${tenantId} AND identifiant = ANY(${textArray([...outIdents])}::text[])
       ORDER BY id FOR UPDATE`;
    for (const u of rows) users.set(u.identifiant, u);
  }
  const incomingUsers = new Map<string, string>();
  const unknownIn = [...inIdents].filter((i) => !users.has(i));
  if (unknownIn.length > 0) {
    const rows = await tx<{ id: string; identifiant: string }[]>`
      SELECT id, identifiant FROM users WHERE tenant_id = ${tenantId} AND identifiant = ANY(${textArray(unknownIn)}::text[])`;
    for (const u of rows) incomingUsers.set(u.identifiant, u.id);
  }

  // 2. classify and rate
  const rejections: Rejection[] = [...malformed];
  const planned: Planned[] = [];
  const byUser = new Map<string, Planned[]>();
  for (const c of work) {
    if (c.direction === 'in') {
      const userId = c.identifiant === null ? null : (users.get(c.identifiant)?.id ?? incomingUsers.get(c.identifiant) ?? null);
      planned.push({ cdr: c, userId, rate: undefined, rated: ZERO, reservationId: null });
      continue;
    }
    const user = c.identifiant === null ? undefined : users.get(c.identifiant);
    if (user === undefined) {
      rejections.push(reject(c, 'UNKNOWN_USER', 'identifiant', `no user with identifiant "${c.identifiant ?? ''}"`));
      continue;
    }
    const free = ctx.freeNumbers.has(c.callee);
    const rate = ctx.tariff?.lookup(digitsForLookup(c.callee), c.startedAtMs);
    if (rate === undefined && !free) {
      rejections.push(reject(c, 'NO_RATE', 'callee', `no rate for ${c.callee} at ${new Date(c.startedAtMs).toISOString()}`));
      continue;
    }
    const p: Planned = { cdr: c, userId: user.id, rate, rated: ZERO, reservationId: null };
    planned.push(p);
    const list = byUser.get(user.id);
    if (list === undefined) byUser.set(user.id, [p]);
    else list.push(p);
  }
  const accounts = new Map<string, LockedAccount>();
  const counters = new Map<string, CounterDelta>();
  const userById = new Map<string, UserRow>();
  for (const u of users.values()) userById.set(u.id, u);
  for (const [userId, list] of byUser) {
    const user = userById.get(userId)!;
    // the forfait pays the first seconds: earliest calls first
    list.sort((a, b) => a.cdr.startedAtMs - b.cdr.startedAtMs || (a.cdr.callId < b.cdr.callId ? -1 : a.cdr.callId > b.cdr.callId ? 1 : 0));
    let remaining = user.forfaitMinutes * 60 - user.usedSeconds;
    let used = 0;
    let total = 0;
    for (const p of list) {
      const answered = p.cdr.disposition === 'answered';
      if (p.rate === undefined) {
        // a free number without a rate: nothing to pay, the talk time still counts
        const billable = answered ? p.cdr.durationSeconds : 0;
        p.rated = { ...ZERO, billableSeconds: billable };
      } else {
        p.rated = rateCall({
          durationSeconds: p.cdr.durationSeconds,
          answered,
          rate: p.rate,
          remainingForfaitSeconds: remaining > 0 ? remaining : 0,
          billingEnabled: user.billingEnabled,
          freeNumber: ctx.freeNumbers.has(p.cdr.callee),
        });
      }
      remaining -= p.rated.forfaitSeconds;
      used += p.rated.forfaitSeconds;
      total += p.rated.billableSeconds;
    }
    accounts.set(userId, { id: userId, balance: toUnits4(user.balance) });
    counters.set(userId, { usedSeconds: used, totalCallSeconds: total });
  }

  // reservations of these calls: linked on the CDR, released below
  const outCallIds = planned.filter((p) => p.cdr.direction === 'out').map((p) => p.cdr.callId);
  const openReservations: string[] = [];
  if (outCallIds.length > 0) {
    const rows = await tx<{ id: string; callId: string; status: string }[]>`
      SELECT id, call_id AS "callId", status FROM reservations
       WHERE tenant_id = ${tenantId} AND call_id = ANY(${textArray(outCallIds)}::text[])`;
    if (rows.length > 0) {
      const byCall = new Map(rows.map((r) => [r.callId, r]));
      for (const p of planned) {
        const r = p.cdr.direction === 'out' ? byCall.get(p.cdr.callId) : undefined;
        if (r !== undefined) {
          p.reservationId = r.id;
          if (r.status === 'open') openReservations.push(r.id);
        }
      }
    }
  }

  // 3. insert, in call id order (two overlapping batches meet their common keys in the same order)
  planned.sort((a, b) => (a.cdr.callId < b.cdr.callId ? -1 : a.cdr.callId > b.cdr.callId ? 1 : 0));
  const inserted = planned.length === 0 ? [] : await insertCdrs(tx, tenantId, planned);
  if (inserted.length !== planned.length) {
    const got = new Set(inserted.map((r) => r.callId));
    throw new Shortfall(planned.filter((p) => !got.has(p.cdr.callId)).map((p) => p.cdr.callId));
  }
  const idByCall = new Map(inserted.map((r) => [r.callId, r]));

  // 4. money, counters, reservations
  const lines: LedgerLine[] = [];
  for (const [userId, list] of byUser) {
    for (const p of list) {
      if (p.rated.cost > 0) {
        lines.push({ userId, kind: 'call', amount: -BigInt(p.rated.cost), cdrId: idByCall.get(p.cdr.callId)!.id, reason: null });
      }
    }
  }
  await applyAccountChanges(tx, tenantId, accounts, lines, counters, options.source);
  if (openReservations.length > 0) {
    await tx`UPDATE reservations SET status = 'rated', released_at = now()
              WHERE tenant_id = ${tenantId} AND id = ANY(${textArray(openReservations)}::uuid[]) AND status = 'open'`;
  }

  // rejects: one pending row per call id (a file imported twice does not store them twice);
  // a rejected call id that is already rated is a duplicate, not a reject
  let duplicates = knownDuplicates.length;
  const resolvedRejectIds = [...repeatedRejectIds];
  for (const c of knownDuplicates) if (c.rejectId !== undefined) resolvedRejectIds.push(c.rejectId);
  for (const p of planned) if (p.cdr.rejectId !== undefined) resolvedRejectIds.push(p.cdr.rejectId);
  rejections.sort((a, b) => a.position - b.position);
  let kept = rejections;
  const rejectedIds = rejections.filter((r) => r.callId !== null && r.reason !== 'MALFORMED').map((r) => r.callId!);
  if (rejectedIds.length > 0) {
    const rows = await tx<{ callId: string }[]>`
      SELECT call_id AS "callId" FROM cdrs WHERE tenant_id = ${tenantId} AND call_id = ANY(${textArray(rejectedIds)}::text[])`;
    if (rows.length > 0) {
      const rated = new Set(rows.map((r) => r.callId));
      kept = [];
      for (const r of rejections) {
        if (r.reason !== 'MALFORMED' && r.callId !== null && rated.has(r.callId)) {
          duplicates++;
          if (r.rejectId !== undefined) resolvedRejectIds.push(r.rejectId);
        } else kept.push(r);
      }
    }
  }
  const fresh = kept.filter((r) => r.rejectId === undefined);
  if (fresh.length > 0) {
    await tx`
      INSERT INTO rejected_cdrs (tenant_id, call_id, reason, source, raw)
      SELECT ${tenantId}, v.call_id, v.reason, ${options.source}, v.raw
        FROM unnest(${textArray(fresh.map((r) => r.callId))}::text[], ${textArray(fresh.map((r) => r.reason))}::text[],
                    ${textArray(fresh.map((r) => r.raw))}::text[]) AS v(call_id, reason, raw)
      ON CONFLICT (tenant_id, call_id) WHERE reprocessed_at IS NULL DO NOTHING`;
  }
  if (resolvedRejectIds.length > 0) {
    await tx`UPDATE rejected_cdrs SET reprocessed_at = now()
              WHERE tenant_id = ${tenantId} AND id = ANY(${textArray(resolvedRejectIds)}::bigint[]) AND reprocessed_at IS NULL`;
  }

  await addCdrsToRollups(tx, tenantId, inserted); // indicators (issue 8): rollups of the rows inserted, same transaction

  const rows: CdrRow[] = [];
  if (options.wantRows) {
    for (const p of planned) {
      const ins = idByCall.get(p.cdr.callId)!;
      rows.push(rowOf(p, ins.id, ins.ratedAt));
    }
  }
  return { accepted: planned.length, duplicates, rejections: kept, rows };
}

function reject(c: NormalizedCdr, reason: Rejection['reason'], field: string, message: string): Rejection {
  return { position: c.position, callId: c.callId, reason, field, message, raw: c.raw, ...(c.rejectId !== undefined ? { rejectId: c.rejectId } : {}) };
}

function costText(cost: number): string {
  const units = BigInt(cost);
  const s = units.toString().padStart(5, '0');
  return `${s.slice(0, -4)}.${s.slice(-4)}`;
}

async function insertCdrs(tx: postgres.TransactionSql, tenantId: string, planned: readonly Planned[]) {
  const n = planned.length;
  const col = <T>(f: (p: Planned) => T): T[] => {
    const out = new Array<T>(n);
    for (let i = 0; i < n; i++) out[i] = f(planned[i]!);
    return out;
  };
  return tx<{ id: string; callId: string; ratedAt: Date }[]>`
    INSERT INTO cdrs (tenant_id, call_id, user_id, identifiant, caller, callee, direction, started_at, answered_at,
                      duration_seconds, disposition, site, line, rate_id, destination, class,
                      billable_seconds, forfait_seconds, charged_seconds, cost, reservation_id)
    SELECT ${tenantId}, * FROM unnest(
      ${textArray(col((p) => p.cdr.callId))}::text[],
      ${textArray(col((p) => p.userId))}::uuid[],
      ${textArray(col((p) => p.cdr.identifiant))}::text[],
      ${textArray(col((p) => p.cdr.caller))}::text[],
      ${textArray(col((p) => p.cdr.callee))}::text[],
      ${textArray(col((p) => p.cdr.direction))}::text[],
      ${textArray(col((p) => new Date(p.cdr.startedAtMs).toISOString()))}::timestamptz[],
      ${textArray(col((p) => (p.cdr.answeredAtMs === null ? null : new Date(p.cdr.answeredAtMs).toISOString())))}::timestamptz[],
      ${intArray(col((p) => p.cdr.durationSeconds))}::int[],
      ${textArray(col((p) => p.cdr.disposition))}::text[],
      ${textArray(col((p) => p.cdr.site))}::text[],
      ${textArray(col((p) => p.cdr.line))}::text[],
      ${textArray(col((p) => p.rate?.rate.id ?? null))}::bigint[],
      ${textArray(col((p) => p.rate?.rate.destination ?? null))}::text[],
      ${textArray(col((p) => p.rate?.rate.class ?? (p.cdr.direction === 'out' ? 'free' : null)))}::text[],
      ${intArray(col((p) => p.rated.billableSeconds))}::int[],
      ${intArray(col((p) => p.rated.forfaitSeconds))}::int[],
      ${intArray(col((p) => p.rated.chargedSeconds))}::int[],
      ${textArray(col((p) => costText(p.rated.cost)))}::numeric[],
      ${textArray(col((p) => p.reservationId))}::uuid[]
    )
    ON CONFLICT (tenant_id, call_id) DO NOTHING
    RETURNING id, call_id AS "callId", rated_at AS "ratedAt"`;
}

function rowOf(p: Planned, id: string, ratedAt: Date): CdrRow {
  const c = p.cdr;
  return {
    id,
    callId: c.callId,
    userId: p.userId,
    identifiant: c.identifiant,
    caller: c.caller,
    callee: c.callee,
    direction: c.direction,
    startedAt: new Date(c.startedAtMs),
    answeredAt: c.answeredAtMs === null ? null : new Date(c.answeredAtMs),
    durationSeconds: c.durationSeconds,
    disposition: c.disposition,
    site: c.site,
    line: c.line,
    rateId: p.rate?.rate.id ?? null,
    destination: p.rate?.rate.destination ?? null,
    class: p.rate?.rate.class ?? (c.direction === 'out' ? 'free' : null),
    billableSeconds: p.rated.billableSeconds,
    forfaitSeconds: p.rated.forfaitSeconds,
    chargedSeconds: p.rated.chargedSeconds,
    cost: costText(p.rated.cost),
    originalCost: null,
    reservationId: p.reservationId,
    ratedAt,
    reratedAt: null,
  };
}
