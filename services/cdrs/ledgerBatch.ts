/**
 * The set-based twin of appendLedgerEntry (services/ledger.ts) for rating and
 * rerating: many entries for many users in two statements (one UPDATE of the
 * users, one COPY of the entries). The caller holds
 * the users' row locks (SELECT … FOR UPDATE) and passes the balances it read
 * under them; entries get a running balance_after per user in the order given,
 * and each user's row is updated once with its new balance and counters, so
 * a balance always equals the sum of its ledger.
 */
import type postgres from 'postgres';
import { CopyBuffer, copyIn, copyValue } from './copy.js';
import { fromUnits4, intArray, textArray } from './pgArrays.js';

export interface LockedAccount {
  id: string;
  /** Balance read under the row lock, in 1/10000 units. */
  balance: bigint;
}

export interface LedgerLine {
  userId: string;
  kind: 'call' | 'rerate';
  /** Signed, 1/10000 units; never 0. */
  amount: bigint;
  cdrId: string;
  reason: string | null;
}

export interface CounterDelta {
  usedSeconds: number;
  totalCallSeconds: number;
}

/**
 * Appends `lines` (in order) and applies per-user counter deltas, updating each
 * touched user once. Returns the new balance of each user.
 */
export async function applyAccountChanges(
  tx: postgres.TransactionSql,
  tenantId: string,
  accounts: ReadonlyMap<string, LockedAccount>,
  lines: readonly LedgerLine[],
  counters: ReadonlyMap<string, CounterDelta>,
  createdBy: string,
): Promise<Map<string, bigint>> {
  const balances = new Map<string, bigint>();
  const userIds: string[] = [];
  const kinds: string[] = [];
  const amounts: string[] = [];
  const after: string[] = [];
  const cdrIds: string[] = [];
  const reasons: (string | null)[] = [];
  for (const line of lines) {
    const account = accounts.get(line.userId);
    if (account === undefined) throw new Error(`account ${line.userId} was not locked`);
    const balance = (balances.get(line.userId) ?? account.balance) + line.amount;
    balances.set(line.userId, balance);
    userIds.push(line.userId);
    kinds.push(line.kind);
    amounts.push(fromUnits4(line.amount));
    after.push(fromUnits4(balance));
    cdrIds.push(line.cdrId);
    reasons.push(line.reason);
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
    await tx`
      UPDATE users u
         SET used_seconds = GREATEST(0, u.used_seconds + v.used),
             total_call_seconds = u.total_call_seconds + v.total,
             balance = v.balance
        FROM unnest(${textArray(ids)}::uuid[], ${intArray(used)}::int[], ${intArray(total)}::bigint[], ${textArray(newBalance)}::numeric[])
             AS v(id, used, total, balance)
       WHERE u.tenant_id = ${tenantId} AND u.id = v.id`;
  }
  if (lines.length > 0) await copyIn(tx, COPY_LEDGER, ledgerLines(tenantId, userIds, kinds, amounts, after, cdrIds, reasons, createdBy));
  return balances;
}

const COPY_LEDGER = 'COPY ledger_entries (tenant_id, user_id, kind, amount, balance_after, cdr_id, reason, created_by) FROM STDIN';

function* ledgerLines(
  tenantId: string,
  userIds: readonly string[],
  kinds: readonly string[],
  amounts: readonly string[],
  after: readonly string[],
  cdrIds: readonly string[],
  reasons: readonly (string | null)[],
  createdBy: string,
): Generator<Buffer> {
  const tenant = copyValue(tenantId) + '\t';
  const by = '\t' + copyValue(createdBy) + '\n';
  const out = new CopyBuffer();
  for (let i = 0; i < userIds.length; i++) {
    const full = out.add(tenant + userIds[i] + '\t' + kinds[i] + '\t' + amounts[i] + '\t' + after[i] + '\t' + cdrIds[i] + '\t' + copyValue(reasons[i] ?? null) + by);
    if (full !== undefined) yield full;
  }
  const last = out.take();
  if (last !== undefined) yield last;
}
