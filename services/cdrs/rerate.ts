/**
 * Rerating (SPEC §7 POST /v1/rerate): the outgoing CDRs of a period are rated
 * again with the rates valid now. History is never edited: for each CDR whose
 * cost changes, a `rerate` ledger entry of the difference is appended and the
 * CDR's current rating is updated, its first cost kept in original_cost.
 * Idempotent by construction: the difference is always taken against the cost
 * already accounted for (cdrs.cost = first cost + every adjustment so far), so a
 * second run finds nothing to change — the double debit CGRateS users meet when
 * a rerate re-applies the full cost instead of the difference cannot happen.
 *
 * Forfait (issue 17: within each CDR's own period): a rerated call keeps the
 * forfait seconds it was given and may take what is still unused of its own
 * month's forfait (never another month's, never what later calls of its month
 * used); it gives seconds back to its month when its new rate is not
 * forfait-eligible or bills fewer seconds. usedSeconds moves only for calls of
 * the user's current forfait period; every month's forfait_usage row moves.
 */
import { rawSql, withTransaction, type Trx } from '../../db/connection.js';
import { lockCdrRatings, lockUsersOfCdrs, outgoingCdrIds, updateRatings, type Rerating } from '../../db/repositories/cdrs.js';
import { periodKeyer, periodOf } from '../../engine/periods.js';
import { addPeriodUsage, readPeriodUsage, type UsageDelta } from './forfaitUsage.js';
import { RerateComputer } from './rerateCompute.js';
import { appendLedgerEntries, type CounterDelta, type LedgerLine, type LockedAccount } from '../ledger/ledger.js';
import { loadTenantContext, type CdrDeps } from './context.js';
import { fromUnits4, toUnits4 } from './pgArrays.js';
import { periodRange } from './view.js';
import { moveCdrsInRollups } from '../indicators/rollups.js';
import { recordAudit, type Actor } from '../audit/audit.js';

const CHUNK = 5_000;

export interface RerateResult {
  examined: number;
  changed: number;
  /** CDRs whose cost changed and got a `rerate` entry. */
  adjusted: number;
  /** Sum of the `rerate` entries appended (negative: users paid more). */
  amount: string;
  /** No rate matches the callee now, or the user was deleted: left as they were. */
  skipped: number;
}

export async function rerate(
  deps: CdrDeps,
  tenantId: string,
  period: { from: string; to: string },
  createdBy: string,
  options: { now?: Date; actor?: Actor } = {},
): Promise<RerateResult> {
  const ctx = await loadTenantContext(deps, tenantId, { freshTariff: true });
  const range = periodRange(period, ctx.timezone);
  const from = range.from!;
  const to = range.to!;
  const reason = `rerate ${period.from} .. ${period.to}`;
  const currentPeriod = periodOf(options.now ?? new Date(), ctx.timezone);
  const periodOfMs = periodKeyer(ctx.timezone);
  const total = { examined: 0, changed: 0, adjusted: 0, amount: 0n, skipped: 0 };
  let after = '0';
  let chunks = 0;
  for (;;) {
    const ids = await outgoingCdrIds(deps.db, tenantId, from, to, after, CHUNK);
    if (ids.length === 0 && chunks > 0) break;
    chunks++;
    after = ids[ids.length - 1] ?? after;
    // each chunk commits alone, with its audit row (a period with no call: one row of zeros)
    const r = await withTransaction(deps.db, async (trx) => {
      const done = ids.length === 0 ? { examined: 0, changed: 0, adjusted: 0, amount: 0n, skipped: 0 } : await rerateChunk(trx, ids);
      if (options.actor) {
        await recordAudit(trx, options.actor, {
          tenantId,
          action: 'cdrs.rerate',
          targetType: 'cdrs',
          targetId: null,
          after: { from: period.from, to: period.to, chunk: chunks, ...done, amount: fromUnits4(done.amount) },
        });
      }
      return done;
    });
    if (ids.length === 0) break;
    total.examined += r.examined;
    total.changed += r.changed;
    total.adjusted += r.adjusted;
    total.amount += r.amount;
    total.skipped += r.skipped;
  }
  return { ...total, amount: fromUnits4(total.amount) };

  async function rerateChunk(trx: Trx, cdrIds: string[]) {
    const out = { examined: cdrIds.length, changed: 0, adjusted: 0, amount: 0n, skipped: 0 };
    // users first (the order every writer of balances uses), then the CDRs, re-read under the locks
    const users = await lockUsersOfCdrs(trx, tenantId, cdrIds);
    const userById = new Map(users.map((u) => [u.id, u]));
    const rows = await lockCdrRatings(trx, tenantId, cdrIds);
    const callPeriods = rows.map((row) => periodOfMs(row.startedAt.getTime()));
    const usage = await readPeriodUsage(trx, tenantId, rows.map((row, i) => ({ userId: row.userId, period: callPeriods[i]! })));
    // the chunk's calls, rated one after the other by the one compute step (rerateCompute.ts)
    const computer = new RerateComputer({ tariff: ctx.tariff, freeNumbers: ctx.freeNumbers, currentPeriod, periodOf: periodOfMs }, usage);
    const usageDeltas: UsageDelta[] = [];
    const accounts = new Map<string, LockedAccount>();
    const counters = new Map<string, CounterDelta>();
    const lines: LedgerLine[] = [];
    const updates: Rerating[] = [];
    for (const row of rows) {
      const user = userById.get(row.userId);
      const oldCost = toUnits4(row.cost);
      const r = computer.rate(
        { ...row, startedAtMs: row.startedAt.getTime(), rateId: row.rateId === null ? null : String(row.rateId), cost: Number(oldCost) },
        user,
      );
      if (r.kind === 'skipped') {
        out.skipped++;
        continue;
      }
      if (r.kind === 'same' || user === undefined) continue;
      out.changed++;
      const newCost = BigInt(r.cost);
      updates.push({
        id: row.id,
        rateId: r.rateId,
        destination: r.destination,
        class: r.class,
        billableSeconds: r.rated.billableSeconds,
        forfaitSeconds: r.rated.forfaitSeconds,
        chargedSeconds: r.rated.chargedSeconds,
        cost: fromUnits4(newCost),
        costChanged: newCost !== oldCost,
      });
      accounts.set(user.id, { id: user.id, balance: toUnits4(user.balance) });
      const delta = counters.get(user.id) ?? { usedSeconds: 0, totalCallSeconds: 0 };
      if (r.currentPeriod) delta.usedSeconds += r.forfaitMoved;
      usageDeltas.push({ userId: user.id, period: r.callPeriod, seconds: r.forfaitMoved });
      delta.totalCallSeconds += r.rated.billableSeconds - row.billableSeconds;
      counters.set(user.id, delta);
      if (newCost !== oldCost) {
        out.adjusted++;
        out.amount += oldCost - newCost;
        lines.push({ userId: user.id, kind: 'rerate', amount: oldCost - newCost, cdrId: row.id, reason });
      }
    }
    if (updates.length === 0) return out;
    const changedIds = updates.map((u) => u.id);
    const raw = await rawSql(trx);
    await moveCdrsInRollups(raw, tenantId, changedIds, -1); // indicators (issue 8): out of the rollups with their old rating…
    await updateRatings(trx, tenantId, updates);
    await moveCdrsInRollups(raw, tenantId, changedIds, 1); // …and back in with the new one
    await appendLedgerEntries(trx, tenantId, accounts, lines, counters, createdBy);
    await addPeriodUsage(trx, tenantId, usageDeltas);
    return out;
  }
}
