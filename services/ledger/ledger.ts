// The balance ledger (SPEC §2 Ledger entry). A user's balance moves only here:
// appendLedgerEntries writes entries with their running balance_after and each
// touched user's new balance (and call counters) in the caller's transaction,
// so the balance is always the sum of the ledger. Rating and rerating append
// their many `call`/`rerate` entries through it; appendLedgerEntry (an
// operator's movement, one entry with an idempotency key) locks the user and
// appends through it too.
import { sql, type Selectable } from 'kysely';
import { copyIn, CopyBuffer, copyValue } from '../../db/copy.js';
import { rawSql, withTransaction, type Db, type Trx } from '../../db/connection.js';
import type { LedgerEntryTable, LedgerKind } from '../../db/schema.js';
import { addMoney4, Dec, formatMoney4, negateMoney4, parseMoney4 } from '../../engine/money.js';
import { intArray, textArray } from '../../db/arrays.js';
import { fromUnits4, toUnits4 } from '../cdrs/pgArrays.js';
import { ConflictError, NotFoundError, ValidationError } from '../shared/errors.js';
import { recordAudit, type Actor } from '../audit/audit.js';

/** A ledger entry as the API shows it: the row without its tenant, ids as strings, the time in ISO 8601. */
export type LedgerEntryView = Omit<Selectable<LedgerEntryTable>, 'tenantId' | 'id' | 'createdAt'> & { id: string; createdAt: string };

export interface LedgerAppend {
  tenantId: string;
  userId: string;
  kind: LedgerKind;
  /** Signed decimal string, at most 4 decimals ("-0.0417", "10"). */
  amount: string;
  reason?: string | null;
  idempotencyKey?: string | null;
  cdrId?: string | null;
  createdBy?: string | null;
}

export interface LedgerAppendResult {
  entry: LedgerEntryView;
  /** The user's balance after this call (the current one when the entry already existed). */
  balance: string;
  /** false when the idempotency key named an existing identical entry. */
  created: boolean;
}

/** A user whose row the caller locked (SELECT … FOR UPDATE), with the balance read under that lock. */
export interface LockedAccount {
  id: string;
  /** In 1/10000 units. */
  balance: bigint;
}

/** One entry to append. */
export interface LedgerLine {
  userId: string;
  kind: LedgerKind;
  /** Signed, 1/10000 units. */
  amount: bigint;
  cdrId: string | null;
  reason: string | null;
  idempotencyKey?: string | null;
}

/** What a user's call counters move by (rating: forward; rerating: either way). */
export interface CounterDelta {
  usedSeconds: number;
  totalCallSeconds: number;
}

const amountRe = /^[+-]?\d{1,12}(\.\d{1,4})?$/;
/** numeric(20,4) holds 16 integer digits; keep a wide margin below it (1e15, in 1/10000 units). */
const balanceLimit = 10n ** 19n;

/** A stored entry as the API shows it (ids as strings, the time in ISO 8601). */
function entryView(e: Selectable<LedgerEntryTable>): LedgerEntryView {
  return {
    id: String(e.id),
    userId: e.userId,
    kind: e.kind,
    amount: e.amount,
    balanceAfter: e.balanceAfter,
    reason: e.reason,
    idempotencyKey: e.idempotencyKey,
    cdrId: e.cdrId === null ? null : String(e.cdrId),
    createdBy: e.createdBy,
    createdAt: e.createdAt.toISOString(),
  };
}

/** The sign rules of each kind an operator may post (SPEC §7 and the ledger decisions). */
export function checkAmountForKind(kind: LedgerKind, amount: string): void {
  if (!amountRe.test(amount)) {
    throw new ValidationError('invalid amount', [{ field: 'amount', value: amount, message: 'a decimal with at most 12 integer digits and 4 decimals' }]);
  }
  const d = new Dec(amount);
  if ((kind === 'topup' || kind === 'refund') && !d.greaterThan(0)) {
    throw new ValidationError('invalid amount', [{ field: 'amount', value: amount, message: `a ${kind} must be greater than 0` }]);
  }
  if (kind === 'adjustment' && d.isZero()) {
    throw new ValidationError('invalid amount', [{ field: 'amount', value: amount, message: 'an adjustment cannot be 0' }]);
  }
}

/**
 * THE append (SPEC §2, §4.6): `lines` in the order given, each with the running
 * balance_after of its user, and each touched user's row written once with its
 * new balance and its counter deltas. The caller holds the users' row locks and
 * passes the balances it read under them (`accounts`). Many entries for many
 * users cost two statements: one UPDATE of the users, one COPY of the entries.
 * Returns the new balance of each user with entries.
 */
export async function appendLedgerEntries(
  trx: Trx,
  tenantId: string,
  accounts: ReadonlyMap<string, LockedAccount>,
  lines: readonly LedgerLine[],
  counters: ReadonlyMap<string, CounterDelta>,
  createdBy: string | null,
): Promise<Map<string, bigint>> {
  const balances = new Map<string, bigint>();
  const after: string[] = new Array<string>(lines.length);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const account = accounts.get(line.userId);
    if (account === undefined) throw new Error(`account ${line.userId} was not locked`);
    const balance = (balances.get(line.userId) ?? account.balance) + line.amount;
    balances.set(line.userId, balance);
    after[i] = fromUnits4(balance);
  }

  const touched = new Set<string>([...balances.keys(), ...counters.keys()]);
  if (touched.size > 0) {
    const ids: string[] = [];
    const used: number[] = [];
    const total: number[] = [];
    const newBalance: string[] = [];
    for (const id of touched) {
      const account = accounts.get(id);
      if (account === undefined) throw new Error(`account ${id} was not locked`);
      const delta = counters.get(id);
      ids.push(id);
      used.push(delta?.usedSeconds ?? 0);
      total.push(delta?.totalCallSeconds ?? 0);
      newBalance.push(fromUnits4(balances.get(id) ?? account.balance));
    }
    // used_seconds never goes below 0 (a rerate may give back forfait seconds of a renewed period)
    await sql`
      UPDATE users u
         SET used_seconds = GREATEST(0, u.used_seconds + v.used),
             total_call_seconds = u.total_call_seconds + v.total,
             balance = v.balance
        FROM unnest(${textArray(ids)}::uuid[], ${intArray(used)}::int[], ${intArray(total)}::bigint[], ${textArray(newBalance)}::numeric[])
             AS v(id, used, total, balance)
       WHERE u.tenant_id = ${tenantId} AND u.id = v.id`.execute(trx);
  }
  if (lines.length > 0) await copyIn(await rawSql(trx), COPY_LEDGER, ledgerLines(tenantId, lines, after, createdBy));
  return balances;
}

const COPY_LEDGER = 'COPY ledger_entries (tenant_id, user_id, kind, amount, balance_after, cdr_id, reason, idempotency_key, created_by) FROM STDIN';

function* ledgerLines(tenantId: string, lines: readonly LedgerLine[], after: readonly string[], createdBy: string | null): Generator<Buffer> {
  const tenant = copyValue(tenantId) + '\t';
  const by = '\t' + copyValue(createdBy) + '\n';
  const out = new CopyBuffer();
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const full = out.add(
      tenant + l.userId + '\t' + l.kind + '\t' + fromUnits4(l.amount) + '\t' + after[i] + '\t' + copyValue(l.cdrId) + '\t' +
        copyValue(l.reason) + '\t' + copyValue(l.idempotencyKey ?? null) + by,
    );
    if (full !== undefined) yield full;
  }
  const last = out.take();
  if (last !== undefined) yield last;
}

/**
 * Appends one entry. Must run in a transaction (the user row stays locked until
 * it commits). With an idempotency key: the same key with the same kind and
 * amount returns the existing entry (created: false); with another kind or
 * amount it is an IDEMPOTENCY_CONFLICT. The unique (tenant, user, key) index is
 * the guarantee; the lock makes the second caller see the first one's entry.
 */
export async function appendLedgerEntry(trx: Trx, input: LedgerAppend): Promise<LedgerAppendResult> {
  if (!amountRe.test(input.amount)) {
    throw new ValidationError('invalid amount', [{ field: 'amount', value: input.amount, message: 'a decimal with at most 4 decimals' }]);
  }
  const amount = toUnits4(input.amount.startsWith('+') ? input.amount.slice(1) : input.amount);
  const user = await trx
    .selectFrom('users')
    .select(['id', 'balance'])
    .where('tenantId', '=', input.tenantId)
    .where('id', '=', input.userId)
    .forUpdate()
    .executeTakeFirst();
  if (!user) throw new NotFoundError('user');

  const entries = trx.selectFrom('ledgerEntries').selectAll().where('tenantId', '=', input.tenantId).where('userId', '=', input.userId);
  if (input.idempotencyKey) {
    const existing = await entries.where('idempotencyKey', '=', input.idempotencyKey).executeTakeFirst();
    if (existing) {
      if (existing.kind !== input.kind || toUnits4(existing.amount) !== amount) {
        throw new ConflictError(
          'IDEMPOTENCY_CONFLICT',
          `idempotency key "${input.idempotencyKey}" was already used for a ${existing.kind} of ${existing.amount}`,
          [{ field: 'idempotencyKey', value: input.idempotencyKey, message: 'already used with another kind or amount' }],
        );
      }
      return { entry: entryView(existing), balance: user.balance, created: false };
    }
  }

  const balance = toUnits4(user.balance);
  const after = balance + amount;
  if ((after < 0n ? -after : after) >= balanceLimit) {
    throw new ValidationError('balance out of range', [{ field: 'amount', value: input.amount, message: 'the balance would leave the supported range' }]);
  }
  const line: LedgerLine = { userId: user.id, kind: input.kind, amount, cdrId: input.cdrId ?? null, reason: input.reason ?? null, idempotencyKey: input.idempotencyKey ?? null };
  await appendLedgerEntries(trx, input.tenantId, new Map([[user.id, { id: user.id, balance }]]), [line], new Map(), input.createdBy ?? null);
  // the user is locked: its newest entry is the one just appended
  const entry = await entries.orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
  return { entry: entryView(entry), balance: fromUnits4(after), created: true };
}

/** An operator's movement (topup, adjustment, refund) in its own transaction. */
export async function postLedgerEntry(
  db: Db,
  input: LedgerAppend & { kind: 'topup' | 'adjustment' | 'refund'; idempotencyKey: string },
  actor?: Actor,
): Promise<LedgerAppendResult> {
  checkAmountForKind(input.kind, input.amount);
  return withTransaction(db, async (trx) => {
    const r = await appendLedgerEntry(trx, input);
    if (actor && r.created) {
      const before = { balance: formatMoney4(addMoney4(parseMoney4(r.balance), negateMoney4(parseMoney4(r.entry.amount)))) };
      await recordAudit(trx, actor, { tenantId: input.tenantId, action: `ledger.${input.kind}`, targetType: 'user', targetId: input.userId, before, after: { ...r.entry, balance: r.balance } });
    }
    return r;
  });
}

/**
 * Entries of a user, newest first, by pages (cursor = the last entry id seen).
 * A deleted user's history stays readable (its entries outlive it); an id with
 * neither a user nor entries in this tenant is not found.
 */
export async function listLedger(db: Db, tenantId: string, userId: string, limit: number, cursor?: string) {
  let q = db
    .selectFrom('ledgerEntries')
    .selectAll()
    .where('tenantId', '=', tenantId)
    .where('userId', '=', userId)
    .orderBy('id', 'desc')
    .limit(limit + 1);
  if (cursor !== undefined) {
    if (!/^[0-9]{1,19}$/.test(cursor)) throw new ValidationError('invalid cursor', [{ field: 'cursor', value: cursor, message: 'not a cursor of this list' }]);
    q = q.where('id', '<', sql<string>`${cursor}::bigint`);
  }
  const rows = await q.execute();
  if (rows.length === 0 && cursor === undefined) {
    const user = await db.selectFrom('users').select('id').where('tenantId', '=', tenantId).where('id', '=', userId).executeTakeFirst();
    if (!user) throw new NotFoundError('user');
  }
  const items = rows.slice(0, limit).map(entryView);
  return { items, nextCursor: rows.length > limit ? items[items.length - 1]!.id : null };
}
