/**
 * The compute step of a rerate (SPEC §4, issue 17's forfait per period): what a
 * CDR's rating becomes under a tariff, with no I/O. `rerate()` (rerate.ts)
 * writes what it finds; the what-if simulation (services/simulation/) only
 * sums it. One implementation, so a simulation gives to the cent what a rerate
 * would then write.
 *
 * Forfait: a rerated call keeps the forfait seconds it was given and may take
 * what is still unused of its own month's forfait (never another month's,
 * never what later calls of its month used); it gives seconds back to its month
 * when its new rate is not forfait-eligible or bills fewer seconds. The unused
 * seconds per (user, month) move as calls are rated, in the order given (the
 * CDRs' id order).
 */
import { digitsForLookup, rateOrFree, type RatedCall, type TariffIndex } from '../../engine/index.js';
import { usedInPeriod, type PeriodUsage } from './forfaitUsage.js';

/** What a rerate reads of a CDR; cost in 1/10000 units. */
export interface RerateRow {
  id: string;
  userId: string;
  callee: string;
  startedAtMs: number;
  durationSeconds: number;
  disposition: string;
  rateId: string | null;
  destination: string | null;
  class: string | null;
  billableSeconds: number;
  forfaitSeconds: number;
  chargedSeconds: number;
  cost: number;
}

/** What a rerate reads of a CDR's user. */
export interface RerateUser {
  id: string;
  billingEnabled: boolean;
  forfaitPeriod: string | null;
  forfaitMinutes: number;
  usedSeconds: number;
}

export interface RerateRules {
  /** undefined: the tenant has no tariff (only free numbers rate). */
  tariff: TariffIndex | undefined;
  freeNumbers: ReadonlySet<string>;
  /** The tenant-local month of "now": the counter period of users that never had one. */
  currentPeriod: string;
  /** Epoch ms → the tenant-local month ('2026-11'). */
  periodOf: (ms: number) => string;
}

export type RerateOutcome =
  /** No rate matches the callee now, or the user is gone: left as it is. */
  | { kind: 'skipped' }
  | { kind: 'same'; rated: RatedCall; callPeriod: string; destination: string | null }
  | {
      kind: 'changed';
      rated: RatedCall;
      callPeriod: string;
      rateId: string | null;
      destination: string | null;
      class: string;
      /** The new cost, 1/10000 units. */
      cost: number;
      /** Forfait seconds taken (positive) or given back (negative) in the call's month. */
      forfaitMoved: number;
      /** The moved seconds count in the user's `usedSeconds` (the call is of the user's counter period). */
      currentPeriod: boolean;
    };

/** Rates CDRs again one after the other, keeping each (user, month)'s unused forfait as it moves. */
export class RerateComputer {
  private readonly unused = new Map<string, number>();

  constructor(
    private readonly rules: RerateRules,
    /** forfait_usage of the (user, month) pairs met, as stored before the first call given. */
    private readonly usage: PeriodUsage,
  ) {}

  rate(row: RerateRow, user: RerateUser | undefined): RerateOutcome {
    const { rules } = this;
    const free = rules.freeNumbers.has(row.callee);
    const rate = rules.tariff?.lookup(digitsForLookup(row.callee), row.startedAtMs);
    if (user === undefined || (rate === undefined && !free)) return { kind: 'skipped' };
    const callPeriod = rules.periodOf(row.startedAtMs);
    const answered = row.disposition === 'answered';
    const rated = rateOrFree({
      durationSeconds: row.durationSeconds,
      answered,
      rate,
      remainingForfaitSeconds: rate === undefined ? 0 : row.forfaitSeconds + this.unusedOf(user, callPeriod),
      billingEnabled: user.billingEnabled,
      freeNumber: free,
    });
    const rateId = rate?.rate.id ?? null;
    const destination = rate?.rate.destination ?? null;
    const klass = rate?.rate.class ?? 'free';
    const cost: number = rated.cost;
    const same =
      cost === row.cost && rated.billableSeconds === row.billableSeconds && rated.forfaitSeconds === row.forfaitSeconds &&
      rated.chargedSeconds === row.chargedSeconds && rateId === row.rateId && destination === row.destination && klass === row.class;
    if (same) return { kind: 'same', rated, callPeriod, destination };
    const forfaitMoved = rated.forfaitSeconds - row.forfaitSeconds;
    this.unused.set(`${user.id}|${callPeriod}`, this.unusedOf(user, callPeriod) - forfaitMoved);
    return {
      kind: 'changed',
      rated,
      callPeriod,
      rateId,
      destination,
      class: klass,
      cost,
      forfaitMoved,
      currentPeriod: callPeriod === (user.forfaitPeriod ?? rules.currentPeriod),
    };
  }

  private unusedOf(user: RerateUser, callPeriod: string): number {
    const key = `${user.id}|${callPeriod}`;
    const known = this.unused.get(key);
    if (known !== undefined) return known;
    const account = { id: user.id, forfaitPeriod: user.forfaitPeriod ?? this.rules.currentPeriod, usedSeconds: user.usedSeconds };
    return Math.max(0, user.forfaitMinutes * 60 - usedInPeriod(this.usage, account, callPeriod));
  }
}
