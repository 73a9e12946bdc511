/**
 * One batch of CDRs, rated and written in ONE transaction (SPEC §4.6):
 *
 * 1. lock the users of the outgoing CDRs (FOR UPDATE, by id: batches that share
 *    users queue behind each other instead of deadlocking);
 * 2. when this ingestion has met stored call ids already (`BatchState`), drop
 *    the calls already stored, read under those locks;
 * 3. rate in JS with the engine, per user in started_at order, against the
 *    forfait and balance read under the lock;
 * 4. take ids for the new rows from the `cdrs` identity sequence, then COPY the
 *    CDRs straight into `cdrs`, in call id order (the partitions of their months
 *    made first, migration 0050). Each monthly partition's unique key (tenant_id,
 *    call_id), and cdr_boundary_keys for the calls near a month's edge (0052),
 *    are the exactly-once guarantee: a call id stored by another
 *    transaction makes the COPY fail, the whole transaction rolls back and the
 *    batch is redone with step 2 (their rating may have spent forfait the
 *    others need, so nothing of the attempt is kept);
 * 5. COPY the `call` ledger entries (running balance_after, cdr_id), update each
 *    user once (counters, balance), release the matching reservations, store
 *    the rejects, run the after-insert steps on the rows inserted — and commit.
 *    A crash anywhere before the commit leaves nothing.
 */
import { rawSql, type Db, type Trx } from '../../db/connection.js';
import { ensureMonths, isCallIdKey, isNoPartition, KnownMonths, monthStartMs, nearMonthEdge } from '../../db/repositories/cdrPartitions.js';
import { CopyBuffer, copyIn, copyValue, instantText, units4Text } from '../../db/copy.js';
import {
  boundaryCallIds,
  insertBoundaryKeys,
  lockCallers,
  markRejectsReprocessed,
  markReservationsRated,
  reservationsOfCalls,
  storedCallIds,
  storedCallsBetween,
  storeRejects,
  takeCdrIds,
  usersByIdentifiant,
} from '../../db/repositories/cdrs.js';
import { digitsForLookup, rateOrFree, type CompiledRate, type RatedCall } from '../../engine/index.js';
import { appendLedgerEntries, type CounterDelta, type LedgerLine, type LockedAccount } from '../ledger/ledger.js';
import type { TenantContext } from './context.js';
import { recordAudit, type Actor } from '../audit/audit.js';
import { toUnits4 } from './pgArrays.js';
import type { CdrRow, NormalizedCdr, Rejection } from './types.js';
import { addRatedToRollups, type RollupFact } from '../indicators/deltas.js';
import { periodKeyer } from '../../engine/periods.js';
import { addPeriodUsage, adoptForfaitPeriods, readPeriodUsage, usedInPeriod, type UsageDelta } from './forfaitUsage.js';

export interface BatchResult {
  accepted: number;
  duplicates: number;
  /** Rejections stored (or already stored) for this batch, malformed ones included. */
  rejections: Rejection[];
  /** The rows inserted, when asked for. */
  rows: CdrRow[];
}

/**
 * Shared by the batches of one ingestion. New call ids are the common case, so
 * a batch is first written without looking for stored ones; once a batch meets
 * one (a file sent again, a call ended through the API), every later batch of
 * the ingestion looks first, in one indexed read.
 */
export interface BatchState {
  checkStored: boolean;
}

type Caller = Awaited<ReturnType<typeof lockCallers>>[number];

interface Planned {
  cdr: NormalizedCdr;
  userId: string | null;
  rate: CompiledRate | undefined;
  rated: RatedCall;
  reservationId: string | null;
  id: string;
  /** The tenant-local month the call started in: the forfait it spends (issue 17). */
  period: string;
}

/** Another transaction stored one of this batch's call ids first: redo the batch, looking first. */
class StoredConcurrently extends Error {
  constructor(cause: unknown) {
    super('a call id of the batch was stored concurrently', { cause });
  }
}

const ZERO: RatedCall = { billableSeconds: 0, forfaitSeconds: 0, chargedSeconds: 0, cost: 0 as RatedCall['cost'] };
const RETRYABLE = new Set(['40P01', '40001']);
const MAX_ATTEMPTS = 10;

function pgError(err: unknown): { code?: string; constraint_name?: string } {
  return typeof err === 'object' && err !== null ? (err as { code?: string; constraint_name?: string }) : {};
}

function isRetryable(err: unknown): boolean {
  const code = pgError(err).code;
  return code !== undefined && RETRYABLE.has(String(code));
}

function isStoredCallId(err: unknown): boolean {
  const e = pgError(err);
  return e.code === '23505' && isCallIdKey(e.constraint_name);
}

/** The months each database has partitions for, as far as this process knows. */
const knownMonths = new WeakMap<Db, KnownMonths>();

/** Makes the partitions of the batch's months this process has not met yet (a late CDR's month included). */
async function ensurePartitions(db: Db, cdrs: readonly NormalizedCdr[]): Promise<void> {
  let known = knownMonths.get(db);
  if (known === undefined) {
    known = new KnownMonths();
    knownMonths.set(db, known);
  }
  const missing = known.missing(cdrs.length, (i) => cdrs[i]!.startedAtMs);
  if (missing.length === 0) return;
  await ensureMonths(db, missing);
  known.add(missing);
}

const byCallId = (a: Planned, b: Planned) => (a.cdr.callId < b.cdr.callId ? -1 : a.cdr.callId > b.cdr.callId ? 1 : 0);
const byStart = (a: Planned, b: Planned) => a.cdr.startedAtMs - b.cdr.startedAtMs || byCallId(a, b);

/** Sorts in place unless already in order (PBX files are: time order, growing call ids). */
function sortIfNeeded(list: Planned[], cmp: (a: Planned, b: Planned) => number): void {
  for (let i = 1; i < list.length; i++) {
    if (cmp(list[i - 1]!, list[i]!) > 0) {
      list.sort(cmp);
      return;
    }
  }
}

/**
 * Rates and writes one batch; retried on a concurrent duplicate or a deadlock.
 * `malformed` rejections are stored in the same transaction.
 */
export async function writeBatch(
  db: Db,
  ctx: TenantContext,
  cdrs: readonly NormalizedCdr[],
  malformed: readonly Rejection[],
  options: { source: string; wantRows?: boolean; state?: BatchState; actor?: Actor },
): Promise<BatchResult> {
  const state = options.state ?? { checkStored: false };
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
  for (let attempt = 1; ; attempt++) {
    try {
      await ensurePartitions(db, unique);
      // its own transaction, never the caller's: a failed attempt rolls back whole and is redone
      const result = await db.transaction().execute(async (trx) => {
        const r = await attemptBatch(trx, ctx, unique, malformed, repeatedRejectIds, state.checkStored, options);
        // one audit row per batch, with its counts, committed with it (never one per CDR)
        if (options.actor) {
          await recordAudit(trx, options.actor, {
            tenantId: ctx.id,
            action: 'cdrs.ingest',
            targetType: 'cdrs',
            targetId: null,
            after: { source: options.source, accepted: r.accepted, duplicates: r.duplicates + duplicatesInBatch, rejected: r.rejections.length },
          });
        }
        return r;
      });
      return { ...result, duplicates: result.duplicates + duplicatesInBatch };
    } catch (err) {
      if (attempt >= MAX_ATTEMPTS) throw err instanceof StoredConcurrently ? err.cause : err;
      if (err instanceof StoredConcurrently) state.checkStored = true;
      else if (isNoPartition(err)) knownMonths.get(db)?.forget(); // a month archived and dropped since: made again
      else if (!isRetryable(err)) throw err;
    }
  }
}

async function attemptBatch(
  trx: Trx,
  ctx: TenantContext,
  batch: readonly NormalizedCdr[],
  malformed: readonly Rejection[],
  repeatedRejectIds: readonly string[],
  checkStored: boolean,
  options: { source: string; wantRows?: boolean },
): Promise<BatchResult> {
  const tenantId = ctx.id;

  // 1. lock the callers' accounts, in id order
  const outIdents = new Set<string>();
  const inIdents = new Set<string>();
  for (const c of batch) {
    if (c.identifiant === null) continue;
    if (c.direction === 'out') outIdents.add(c.identifiant);
    else inIdents.add(c.identifiant);
  }
  const users = new Map<string, Caller>();
  if (outIdents.size > 0) {
    for (const u of await lockCallers(trx, tenantId, [...outIdents])) users.set(u.identifiant, u);
  }
  const incomingUsers = new Map<string, string>();
  const unknownIn = [...inIdents].filter((i) => !users.has(i));
  if (unknownIn.length > 0) {
    for (const u of await usersByIdentifiant(trx, tenantId, unknownIn)) incomingUsers.set(u.identifiant, u.id);
  }

  // 2. calls stored already (only once this ingestion has met one): duplicates, not rated again
  let work = batch;
  const knownDuplicates: NormalizedCdr[] = [];
  if (checkStored && batch.length > 0) {
    // a call id is once per month of its start (the partition's key): look in the batch's months only
    let first = Infinity;
    let last = -Infinity;
    for (const c of batch) {
      if (c.startedAtMs < first) first = c.startedAtMs;
      if (c.startedAtMs > last) last = c.startedAtMs;
    }
    const to = new Date(last);
    const stored = await storedCallsBetween(trx, tenantId, batch.map((c) => c.callId), new Date(monthStartMs(first)), new Date(Date.UTC(to.getUTCFullYear(), to.getUTCMonth() + 1, 1)));
    // near a month's edge, a call id kept in cdr_boundary_keys is stored whatever its month
    const edge = batch.filter((c) => nearMonthEdge(c.startedAtMs)).map((c) => c.callId);
    const kept = edge.length > 0 ? await boundaryCallIds(trx, tenantId, edge) : new Set<string>();
    if (stored.length > 0 || kept.size > 0) {
      const keys = new Set(stored.map((r) => `${r.callId}\u0000${monthStartMs(r.startedAt.getTime())}`));
      const fresh: NormalizedCdr[] = [];
      for (const c of batch) (keys.has(`${c.callId}\u0000${monthStartMs(c.startedAtMs)}`) || kept.has(c.callId) ? knownDuplicates : fresh).push(c);
      work = fresh;
    }
  }

  // the reservations of the outgoing calls (reservations keep one row per call id, whatever the month): a
  // 'rated' one means the call is stored, in whatever month — a duplicate; the others are linked and released below
  const reservationByCall = new Map<string, Awaited<ReturnType<typeof reservationsOfCalls>>[number]>();
  const outCallIds: string[] = [];
  for (const c of work) if (c.direction === 'out') outCallIds.push(c.callId);
  if (outCallIds.length > 0) {
    const rows = await reservationsOfCalls(trx, tenantId, outCallIds);
    for (const r of rows) reservationByCall.set(r.callId, r);
    if (rows.some((r) => r.status === 'rated')) {
      const fresh: NormalizedCdr[] = [];
      for (const c of work) (c.direction === 'out' && reservationByCall.get(c.callId)?.status === 'rated' ? knownDuplicates : fresh).push(c);
      work = fresh;
    }
  }

  // 3. classify and rate
  const rejections: Rejection[] = [...malformed];
  const planned: Planned[] = [];
  const byUser = new Map<string, Planned[]>();
  for (const c of work) {
    if (c.direction === 'in') {
      const userId = c.identifiant === null ? null : (users.get(c.identifiant)?.id ?? incomingUsers.get(c.identifiant) ?? null);
      planned.push({ cdr: c, userId, rate: undefined, rated: ZERO, reservationId: null, id: '', period: '' });
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
    const p: Planned = { cdr: c, userId: user.id, rate, rated: ZERO, reservationId: null, id: '', period: '' };
    planned.push(p);
    const list = byUser.get(user.id);
    if (list === undefined) byUser.set(user.id, [p]);
    else list.push(p);
  }
  const accounts = new Map<string, LockedAccount>();
  const counters = new Map<string, CounterDelta>();
  const userById = new Map<string, Caller>();
  for (const u of users.values()) userById.set(u.id, u);
  // each call spends the forfait of its own month (issue 17): the current one's
  // counter is on the users row, the other months' in forfait_usage
  const periodOfMs = periodKeyer(ctx.timezone);
  const adopted = new Map<string, string>();
  const otherPeriods: { userId: string; period: string }[] = [];
  for (const [userId, list] of byUser) {
    const user = userById.get(userId)!;
    // the forfait pays the first seconds: earliest calls first
    sortIfNeeded(list, byStart);
    for (const p of list) p.period = periodOfMs(p.cdr.startedAtMs);
    if (user.forfaitPeriod === null) adopted.set(userId, list[list.length - 1]!.period);
    const current = user.forfaitPeriod ?? adopted.get(userId);
    let last = '';
    for (const p of list) {
      if (p.period !== current && p.period !== last) otherPeriods.push({ userId, period: p.period });
      last = p.period;
    }
  }
  const usage = await readPeriodUsage(trx, tenantId, otherPeriods);
  await adoptForfaitPeriods(trx, tenantId, adopted);
  const usageDeltas: UsageDelta[] = [];
  for (const [userId, list] of byUser) {
    const user = userById.get(userId)!;
    const account = { id: userId, forfaitPeriod: user.forfaitPeriod ?? adopted.get(userId)!, usedSeconds: user.usedSeconds };
    const remainingIn = new Map<string, number>();
    const usedIn = new Map<string, number>();
    let used = 0;
    let total = 0;
    for (const p of list) {
      let remaining = remainingIn.get(p.period) ?? user.forfaitMinutes * 60 - usedInPeriod(usage, account, p.period);
      const answered = p.cdr.disposition === 'answered';
      // a free number without a rate: nothing to pay, the talk time still counts (engine's rateOrFree)
      p.rated = rateOrFree({
        durationSeconds: p.cdr.durationSeconds,
        answered,
        rate: p.rate,
        remainingForfaitSeconds: Math.max(remaining, 0),
        billingEnabled: user.billingEnabled,
        freeNumber: ctx.freeNumbers.has(p.cdr.callee),
      });
      remaining -= p.rated.forfaitSeconds;
      remainingIn.set(p.period, remaining);
      usedIn.set(p.period, (usedIn.get(p.period) ?? 0) + p.rated.forfaitSeconds);
      if (p.period === account.forfaitPeriod) used += p.rated.forfaitSeconds;
      total += p.rated.billableSeconds;
    }
    for (const [period, seconds] of usedIn) usageDeltas.push({ userId, period, seconds });
    accounts.set(userId, { id: userId, balance: toUnits4(user.balance) });
    counters.set(userId, { usedSeconds: used, totalCallSeconds: total });
  }

  // reservations of these calls: linked on the CDR, released below
  const openReservations: string[] = [];
  if (reservationByCall.size > 0) {
    for (const p of planned) {
      const r = p.cdr.direction === 'out' ? reservationByCall.get(p.cdr.callId) : undefined;
      if (r !== undefined) {
        p.reservationId = r.id;
        if (r.status === 'open') openReservations.push(r.id);
      }
    }
  }

  // 4. ids, then the rows, in call id order (two overlapping batches meet their common keys in the same order)
  sortIfNeeded(planned, byCallId);
  let ratedAt = new Date();
  if (planned.length > 0) {
    const taken = await takeCdrIds(trx, planned.length);
    ratedAt = taken.at;
    const list = taken.ids;
    for (let i = 0; i < planned.length; i++) {
      const p = planned[i]!;
      p.id = list[i]!;
    }
    try {
      await copyIn(await rawSql(trx), COPY_CDRS, cdrLines(tenantId, planned));
      // the calls near a month's edge: once across the two months (migration 0052), in call id order like the rows
      const edge: { callId: string; startedAt: string }[] = [];
      for (const p of planned) if (nearMonthEdge(p.cdr.startedAtMs)) edge.push({ callId: p.cdr.callId, startedAt: instantText(p.cdr.startedAtMs) });
      await insertBoundaryKeys(trx, tenantId, edge);
    } catch (err) {
      if (isStoredCallId(err)) throw new StoredConcurrently(err);
      throw err;
    }
  }

  // 5. money, counters, reservations
  const lines: LedgerLine[] = [];
  for (const [userId, list] of byUser) {
    for (const p of list) {
      if (p.rated.cost > 0) lines.push({ userId, kind: 'call', amount: -BigInt(p.rated.cost), cdrId: p.id, reason: null });
    }
  }
  await appendLedgerEntries(trx, tenantId, accounts, lines, counters, options.source);
  await addPeriodUsage(trx, tenantId, usageDeltas);
  if (openReservations.length > 0 && (await markReservationsRated(trx, tenantId, openReservations)) < openReservations.length) {
    // another transaction rated one of these calls meanwhile (its CDR may be in another month): redo, looking first
    throw new StoredConcurrently(new Error('a reservation of the batch was rated by another transaction'));
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
    const rated = await storedCallIds(trx, tenantId, rejectedIds);
    if (rated.size > 0) {
      kept = [];
      for (const r of rejections) {
        if (r.reason !== 'MALFORMED' && r.callId !== null && rated.has(r.callId)) {
          duplicates++;
          if (r.rejectId !== undefined) resolvedRejectIds.push(r.rejectId);
        } else kept.push(r);
      }
    }
  }
  await storeRejects(trx, tenantId, options.source, kept.filter((r) => r.rejectId === undefined));
  await markRejectsReprocessed(trx, tenantId, resolvedRejectIds);

  // after-insert steps: what else follows from the rows inserted, in this same transaction
  // indicators (issue 8): the rollups of the rows inserted, from the rated rows in hand, same transaction
  await addRatedToRollups(await rawSql(trx), tenantId, planned.length, (i, into) => rollupFact(planned[i]!, into), (i) => planned[i]!.id);

  const rows: CdrRow[] = [];
  if (options.wantRows) {
    for (const p of planned) rows.push(rowOf(p, p.id, ratedAt));
  }
  return { accepted: planned.length, duplicates, rejections: kept, rows };
}

function reject(c: NormalizedCdr, reason: Rejection['reason'], field: string, message: string): Rejection {
  return { position: c.position, callId: c.callId, reason, field, message, raw: c.raw, ...(c.rejectId !== undefined ? { rejectId: c.rejectId } : {}) };
}

/** What the indicator rollups count of a planned row: the columns indicator_apply() reads. */
function rollupFact(p: Planned, into: RollupFact): void {
  const c = p.cdr;
  into.startedAtMs = c.startedAtMs;
  into.direction = c.direction;
  into.site = c.site;
  into.line = c.line ?? c.caller;
  into.class = classOf(p);
  into.destination = p.rate?.rate.destination ?? null;
  into.answered = c.disposition === 'answered';
  into.durationSeconds = c.durationSeconds;
  into.cost = p.rated.cost;
}

function classOf(p: Planned): string | null {
  return p.rate?.rate.class ?? (p.cdr.direction === 'out' ? 'free' : null);
}

const COPY_CDRS = `COPY cdrs (id, tenant_id, call_id, user_id, identifiant, caller, callee, direction, started_at, answered_at,
  duration_seconds, disposition, site, line, rate_id, destination, class, billable_seconds, forfait_seconds, charged_seconds,
  cost, reservation_id, number_check) FROM STDIN`;

/** The COPY text lines of the planned rows, in chunks. */
function* cdrLines(tenantId: string, planned: readonly Planned[]): Generator<Buffer> {
  const tenant = '\t' + copyValue(tenantId) + '\t';
  // a tariff has few destinations: each escaped once
  const destinations = new Map<CompiledRate, string>();
  const out = new CopyBuffer();
  for (let i = 0; i < planned.length; i++) {
    const p = planned[i]!;
    const c = p.cdr;
    const r = p.rated;
    let rateCols: string;
    if (p.rate === undefined) rateCols = '\\N\t\\N\t' + (c.direction === 'out' ? 'free' : '\\N');
    else {
      rateCols = destinations.get(p.rate) ?? '';
      if (rateCols === '') {
        rateCols = (p.rate.rate.id ?? '\\N') + '\t' + copyValue(p.rate.rate.destination) + '\t' + copyValue(p.rate.rate.class);
        destinations.set(p.rate, rateCols);
      }
    }
    const full = out.add(
      p.id + tenant +
      copyValue(c.callId) + '\t' +
      (p.userId ?? '\\N') + '\t' +
      copyValue(c.identifiant) + '\t' +
      copyValue(c.caller) + '\t' +
      copyValue(c.callee) + '\t' +
      c.direction + '\t' +
      instantText(c.startedAtMs) + '\t' +
      (c.answeredAtMs === null ? '\\N' : instantText(c.answeredAtMs)) + '\t' +
      c.durationSeconds + '\t' +
      c.disposition + '\t' +
      copyValue(c.site) + '\t' +
      copyValue(c.line) + '\t' +
      rateCols + '\t' +
      r.billableSeconds + '\t' + r.forfaitSeconds + '\t' + r.chargedSeconds + '\t' +
      units4Text(r.cost) + '\t' +
      (p.reservationId ?? '\\N') + '\t' +
      (c.numberCheck ?? '\\N') + '\n',
    );
    if (full !== undefined) yield full;
  }
  const last = out.take();
  if (last !== undefined) yield last;
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
    class: classOf(p),
    billableSeconds: p.rated.billableSeconds,
    forfaitSeconds: p.rated.forfaitSeconds,
    chargedSeconds: p.rated.chargedSeconds,
    cost: units4Text(p.rated.cost),
    originalCost: null,
    reservationId: p.reservationId,
    ratedAt,
    reratedAt: null,
    numberCheck: c.numberCheck,
  };
}
