/**
 * Authorization maths (SPEC §5.7): how long may a call last?
 *
 * For a rate and what the user has available, the cost and the charged seconds
 * of an answered call never decrease as its duration d grows (billable seconds
 * grow by whole increments, the forfait share is capped, and c1 — the charged
 * part of the first increment — is the same for every d ≥ 1). So "the call fits"
 * is true up to some d and false after it, and a binary search over
 * [0, maxCallSeconds] finds that d in about log2(maxCallSeconds) ratings
 * (14 for the default 14 400 s cap).
 */
import type { Money4 } from './money.js';
import { digitsForLookup } from './numbers.js';
import type { CompiledRate } from './rate.js';
import { billableSeconds, chargedCost } from './rating.js';
import type { TariffIndex } from './tariff.js';

/** Every §5 deny reason, in the order the checks run. */
export const DENY_REASONS = [
  'UNKNOWN_USER',
  'TENANT_SUSPENDED',
  'ACCOUNT_DISABLED',
  'EMPTY_KEY',
  'NUMBER_NOT_AUTHORIZED',
  'NO_RATE',
  'DESTINATION_NOT_COVERED',
  'FORFAIT_EXHAUSTED',
  'INSUFFICIENT_BALANCE',
] as const;
export type DenyReason = (typeof DENY_REASONS)[number];
/** The reasons §5.7 can give. */
export type AllowanceDenyReason = 'DESTINATION_NOT_COVERED' | 'FORFAIT_EXHAUSTED' | 'INSUFFICIENT_BALANCE';

export interface MaxCallSecondsInput {
  rate: CompiledRate;
  /** forfaitMinutes × 60 − usedSeconds − held forfait seconds; negative counts as 0. */
  availableForfaitSeconds: number;
  /** balance − held money; may be negative. */
  availableMoney: Money4;
  billingEnabled: boolean;
  /** The tenant's cap on a single authorization. */
  maxCallSeconds: number;
  /** The callee is a free number: nothing is ever charged (§5.3 normally answers before this). */
  freeNumber?: boolean;
}

export interface CallAllowance {
  maxSeconds: number;
  /** forfaitSeconds of a maxSeconds call, to reserve. */
  holdForfaitSeconds: number;
  /** cost of a maxSeconds call, to reserve. */
  holdMoney: Money4;
  /** Present exactly when maxSeconds is 0. */
  reason?: AllowanceDenyReason;
}

/**
 * The largest d ≤ maxCallSeconds such that an answered call of d seconds rated by
 * §4 against the available forfait costs at most the available money — or, with
 * billing disabled, charges no second at all. maxSeconds is about the talk time d,
 * not billable time: with 60/60 increments a 61 s call bills 120 s.
 */
export function maxCallSeconds(input: MaxCallSecondsInput): CallAllowance {
  const { rate, availableMoney, billingEnabled } = input;
  if (!Number.isSafeInteger(input.maxCallSeconds) || !Number.isSafeInteger(input.availableForfaitSeconds)) {
    throw new RangeError('maxCallSeconds and availableForfaitSeconds must be whole numbers of seconds');
  }
  if (!Number.isSafeInteger(availableMoney)) throw new RangeError('availableMoney must be a Money4 integer');
  const cap = Math.max(input.maxCallSeconds, 0);
  const forfait = Math.max(input.availableForfaitSeconds, 0);
  const free = rate.free || input.freeNumber === true;
  // A call that takes no money (forfait-covered, or zero-priced) fits even when the
  // available money is negative: "costs at most the available money" is read as
  // cost ≤ max(available money, 0), so a negative balance only stops paid calls.
  const moneyCeiling = Math.max(availableMoney, 0);

  let maxSeconds: number;
  if (fitsIn(rate, cap, forfait, free, billingEnabled, moneyCeiling)) {
    maxSeconds = cap;
  } else {
    let lo = 0; // fits
    let hi = cap; // does not fit
    while (hi - lo > 1) {
      const mid = lo + Math.floor((hi - lo) / 2);
      if (fitsIn(rate, mid, forfait, free, billingEnabled, moneyCeiling)) lo = mid;
      else hi = mid;
    }
    maxSeconds = lo;
  }

  if (maxSeconds === 0) {
    const reason: AllowanceDenyReason = billingEnabled
      ? 'INSUFFICIENT_BALANCE'
      : rate.forfaitEligible
        ? 'FORFAIT_EXHAUSTED'
        : 'DESTINATION_NOT_COVERED';
    return { maxSeconds: 0, holdForfaitSeconds: 0, holdMoney: 0 as Money4, reason };
  }
  const billable = billableSeconds(maxSeconds, rate.firstIncrement, rate.nextIncrement);
  const share = forfaitShare(rate, billable, forfait, free);
  const holdMoney = billingEnabled && !free ? chargedCost(rate, billable, share) : (0 as Money4);
  return { maxSeconds, holdForfaitSeconds: share, holdMoney };
}

/** The forfait seconds a call of `billable` seconds takes. */
function forfaitShare(rate: CompiledRate, billable: number, forfait: number, free: boolean): number {
  return rate.forfaitEligible && !free ? Math.min(billable, forfait) : 0;
}

/** Does an answered call of d seconds fit what the user has? */
function fitsIn(rate: CompiledRate, d: number, forfait: number, free: boolean, billingEnabled: boolean, moneyCeiling: number): boolean {
  if (free || d === 0) return true;
  const billable = billableSeconds(d, rate.firstIncrement, rate.nextIncrement);
  const share = forfaitShare(rate, billable, forfait, free);
  if (!billingEnabled) return billable === share;
  return chargedCost(rate, billable, share) <= moneyCeiling;
}

/** What §5 reads of the caller's account (the account book keeps it in memory). */
export interface AccountState {
  readonly enabled: boolean;
  readonly billingEnabled: boolean;
  /** forfaitMinutes × 60. */
  readonly forfaitSeconds: number;
  readonly usedSeconds: number;
  readonly balance: Money4;
  /** Slots 1–10 (index 0–9): E.164 or a short number's digits, or null. */
  readonly authorized: readonly (string | null)[];
  /** Forfait seconds and money held by the account's open reservations. */
  readonly heldForfait: number;
  readonly heldMoney: Money4;
}

/** What §5 reads of the tenant. */
export interface TenantRules {
  readonly status: 'active' | 'suspended';
  /** In the form callees are compared in (freeNumberSet). */
  readonly freeNumbers: ReadonlySet<string>;
  /** The cap on any single authorization. */
  readonly maxCallSeconds: number;
  /** An allow that leaves less money than this answers lowBalance. */
  readonly lowBalanceThreshold: Money4;
}

export interface AuthorizationQuestion<A extends AccountState = AccountState> {
  /** The account of the identifiant asked about; undefined when the tenant has none. */
  account: A | undefined;
  tenant: TenantRules;
  /** The callee, parsed (E.164 or a short number's digits); null when a speed-dial key was given instead. */
  callee: string | null;
  /** The speed-dial key (1–10), when given instead of a callee. */
  key?: number;
  /** The tenant's tariff; null when it has none. */
  tariff: TariffIndex | null;
  /** When the call starts (the rate valid then applies), ms since the epoch. */
  now: number;
}

export type AuthorizationDecision<A extends AccountState = AccountState> =
  | { decision: 'deny'; reason: DenyReason; callee: string | null; rate?: CompiledRate }
  /** A free number: allowed for the tenant's cap, nothing held. */
  | { decision: 'allow'; callee: string; maxSeconds: number; rate?: undefined; hold?: undefined }
  /** A paid call: the forfait seconds and money of a maxSeconds call are to be held on the account. */
  | {
      decision: 'allow';
      callee: string;
      maxSeconds: number;
      rate: CompiledRate;
      hold: { account: A; forfaitSeconds: number; money: Money4 };
      lowBalance: boolean;
    };

/**
 * SPEC §5: the checks in their order, the first that fails giving the denial
 * and its reason — UNKNOWN_USER, TENANT_SUSPENDED, ACCOUNT_DISABLED; a free
 * number is allowed; EMPTY_KEY, NUMBER_NOT_AUTHORIZED, NO_RATE; then §5.7's
 * maxSeconds against what the account has left after its holds.
 */
export function decideAuthorization<A extends AccountState>(q: AuthorizationQuestion<A>): AuthorizationDecision<A> {
  const { account, tenant } = q;
  let callee = q.callee;
  if (!account) return { decision: 'deny', reason: 'UNKNOWN_USER', callee };
  if (tenant.status === 'suspended') return { decision: 'deny', reason: 'TENANT_SUSPENDED', callee };
  if (!account.enabled) return { decision: 'deny', reason: 'ACCOUNT_DISABLED', callee };

  // a speed-dial key dials the number in its slot (undefined: no key given; null: an empty slot)
  const slot = q.key !== undefined ? (account.authorized[q.key - 1] ?? null) : undefined;
  if (slot) callee = slot;
  if (callee !== null && tenant.freeNumbers.has(callee)) return { decision: 'allow', callee, maxSeconds: tenant.maxCallSeconds };
  if (slot === null) return { decision: 'deny', reason: 'EMPTY_KEY', callee: null };
  if (callee === null || !account.authorized.includes(callee)) return { decision: 'deny', reason: 'NUMBER_NOT_AUTHORIZED', callee };

  const rate = q.tariff?.lookup(digitsForLookup(callee), q.now);
  if (!rate) return { decision: 'deny', reason: 'NO_RATE', callee };
  const availableMoney = (account.balance - account.heldMoney) as Money4;
  const allowance = maxCallSeconds({
    rate,
    availableForfaitSeconds: account.forfaitSeconds - account.usedSeconds - account.heldForfait,
    availableMoney,
    billingEnabled: account.billingEnabled,
    maxCallSeconds: tenant.maxCallSeconds,
  });
  if (allowance.maxSeconds === 0) return { decision: 'deny', reason: allowance.reason ?? 'INSUFFICIENT_BALANCE', callee, rate };
  return {
    decision: 'allow',
    callee,
    maxSeconds: allowance.maxSeconds,
    rate,
    hold: { account, forfaitSeconds: allowance.holdForfaitSeconds, money: allowance.holdMoney },
    lowBalance: account.billingEnabled && availableMoney - allowance.holdMoney < tenant.lowBalanceThreshold,
  };
}
