// The balance ledger (SPEC §2 Ledger entry). A user's balance moves only here:
// appendLedgerEntry locks the user, computes balanceAfter, writes the new
// balance and the entry in the caller's transaction, so the balance is always
// the sum of the ledger. Call rating and rerating append through the same verb.
import { sql } from 'kysely';
import type { Db, Trx } from '../../db/connection.js';
import type { Selectable } from 'kysely';
import type { LedgerEntryTable, LedgerKind } from '../../db/schema.js';
import { Dec } from '../../engine/money.js';
import { ConflictError, NotFoundError, ValidationError } from '../shared/errors.js';

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

const amountRe = /^[+-]?\d{1,12}(\.\d{1,4})?$/;
/** numeric(20,4) holds 16 integer digits; keep a wide margin below it. */
const balanceLimit = new Dec('1e15');

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
  const amount = new Dec(input.amount);
  const user = await trx
    .selectFrom('users')
    .select(['id', 'balance'])
    .where('tenantId', '=', input.tenantId)
    .where('id', '=', input.userId)
    .forUpdate()
    .executeTakeFirst();
  if (!user) throw new NotFoundError('user');

  if (input.idempotencyKey) {
    const existing = await trx
      .selectFrom('ledgerEntries')
      .selectAll()
      .where('tenantId', '=', input.tenantId)
      .where('userId', '=', input.userId)
      .where('idempotencyKey', '=', input.idempotencyKey)
      .executeTakeFirst();
    if (existing) {
      if (existing.kind !== input.kind || !new Dec(existing.amount).equals(amount)) {
        throw new ConflictError(
          'IDEMPOTENCY_CONFLICT',
          `idempotency key "${input.idempotencyKey}" was already used for a ${existing.kind} of ${existing.amount}`,
          [{ field: 'idempotencyKey', value: input.idempotencyKey, message: 'already used with another kind or amount' }],
        );
      }
      return { entry: entryView(existing), balance: user.balance, created: false };
    }
  }

  const after = new Dec(user.balance).plus(amount);
  if (after.abs().greaterThanOrEqualTo(balanceLimit)) {
    throw new ValidationError('balance out of range', [{ field: 'amount', value: input.amount, message: 'the balance would leave the supported range' }]);
  }
  const balanceAfter = after.toFixed(4);
  await trx.updateTable('users').set({ balance: balanceAfter }).where('tenantId', '=', input.tenantId).where('id', '=', input.userId).execute();
  const entry = await trx
    .insertInto('ledgerEntries')
    .values({
      tenantId: input.tenantId,
      userId: input.userId,
      kind: input.kind,
      amount: amount.toFixed(4),
      balanceAfter,
      reason: input.reason ?? null,
      idempotencyKey: input.idempotencyKey ?? null,
      cdrId: input.cdrId ?? null,
      createdBy: input.createdBy ?? null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { entry: entryView(entry), balance: balanceAfter, created: true };
}

/** An operator's movement (topup, adjustment, refund) in its own transaction. */
export async function postLedgerEntry(
  db: Db,
  input: LedgerAppend & { kind: 'topup' | 'adjustment' | 'refund'; idempotencyKey: string },
): Promise<LedgerAppendResult> {
  checkAmountForKind(input.kind, input.amount);
  return db.transaction().execute((trx) => appendLedgerEntry(trx, input));
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
