import { randomUUID } from 'node:crypto';
import {
  digitsForLookup,
  formatPrice,
  maxCallSeconds,
  parseNumber,
  type Money4,
} from '../../engine/index.js';
import type { TariffIndexCache } from '../tariffs.js';
import { ConflictError, ValidationError } from '../errors.js';
import type { AccountBook, AuthorizationAnswer, Hold, TenantBook } from './book.js';
import type { ReservationWriter } from './writer.js';

export interface AuthorizeRequest {
  identifiant: string;
  callee?: string;
  key?: number;
  callId?: string;
}

export interface AuthorizationService {
  book: AccountBook;
  writer: ReservationWriter;
  tariffs: TariffIndexCache;
}

/** Grace after maxSeconds before an unfinished reservation expires (SPEC §2). */
export const EXPIRY_GRACE_MS = 60_000;

function deny(reason: string, callee: string | null): AuthorizationAnswer {
  return { decision: 'deny', reason, maxSeconds: 0, callee };
}

/**
 * SPEC §5: the checks in order, against the tenant's in-memory book; an allow
 * holds the forfait and money of a maxSeconds call and is answered only once
 * its reservation is committed. Denials write nothing.
 */
export async function authorize(
  svc: AuthorizationService,
  tenantId: string,
  req: AuthorizeRequest,
  now = Date.now(),
): Promise<AuthorizationAnswer> {
  const tb = await svc.book.tenant(tenantId);
  const s = tb.settings;

  // a retried authorization (same callId) gets the same answer
  if (req.callId !== undefined) {
    const previous = tb.byCallId.get(req.callId);
    if (previous) {
      await previous.durable;
      if (previous.committed !== undefined) return previous.answer;
      // that attempt failed to commit: decide afresh
    }
  }

  let callee: string | null = null;
  if (req.callee !== undefined) {
    callee = tb.numbers.parse(req.callee);
    if (callee === null) {
      const parsed = parseNumber(req.callee, s.country);
      throw new ValidationError('invalid callee', [{ field: 'callee', value: req.callee, message: parsed.ok ? 'not a phone number' : parsed.message }]);
    }
  }

  const account = tb.byIdentifiant.get(req.identifiant);
  if (!account) return deny('UNKNOWN_USER', callee);
  if (s.status === 'suspended') return deny('TENANT_SUSPENDED', callee);
  if (!account.enabled) return deny('ACCOUNT_DISABLED', callee);

  const slot = req.key !== undefined ? (account.authorized[req.key - 1] ?? null) : undefined;
  if (slot) callee = slot;
  if (callee !== null && s.freeNumbers.has(callee)) {
    return { decision: 'allow', maxSeconds: s.maxCallSeconds, callee };
  }
  if (slot === null) return deny('EMPTY_KEY', null);
  if (callee === null || !account.authorized.includes(callee)) return deny('NUMBER_NOT_AUTHORIZED', callee);

  const rate = s.tariffId ? (await svc.tariffs.get(s.tariffId)).lookup(digitsForLookup(callee), now) : undefined;
  if (!rate) return deny('NO_RATE', callee);

  const availableMoney = (account.balance - account.heldMoney) as Money4;
  const allowance = maxCallSeconds({
    rate,
    availableForfaitSeconds: account.forfaitSeconds - account.usedSeconds - account.heldForfait,
    availableMoney,
    billingEnabled: account.billingEnabled,
    maxCallSeconds: s.maxCallSeconds,
  });
  const priced = { destination: rate.rate.destination, class: rate.rate.class, pricePerMinute: formatPrice(rate.priceMicros) };
  if (allowance.maxSeconds === 0) return { ...deny(allowance.reason ?? 'INSUFFICIENT_BALANCE', callee), ...priced };

  const id = randomUUID();
  const left = availableMoney - allowance.holdMoney;
  const answer: AuthorizationAnswer = {
    decision: 'allow',
    maxSeconds: allowance.maxSeconds,
    reservationId: id,
    callee,
    ...priced,
    lowBalance: account.billingEnabled && left < s.lowBalanceThreshold,
  };
  return reserve(svc, tb, {
    id,
    callId: req.callId ?? id,
    account,
    forfait: allowance.holdForfaitSeconds,
    money: allowance.holdMoney,
    expiresAt: now + allowance.maxSeconds * 1000 + EXPIRY_GRACE_MS,
    answer,
    rateId: rate.rate.id ?? null,
  });
}

async function reserve(
  svc: AuthorizationService,
  tb: TenantBook,
  r: Omit<Hold, 'committed' | 'durable' | 'released'> & { rateId: string | null },
): Promise<AuthorizationAnswer> {
  let settle!: () => void;
  const hold: Hold = {
    id: r.id,
    callId: r.callId,
    account: r.account,
    forfait: r.forfait,
    money: r.money,
    expiresAt: r.expiresAt,
    answer: r.answer,
    committed: undefined,
    durable: new Promise<void>((resolve) => (settle = resolve)),
    released: false,
  };
  // held in memory at once, so the next authorization already sees it
  tb.hold(hold);
  try {
    const inserted = await svc.writer.write({
      tenantId: tb.settings.id,
      id: hold.id,
      userId: hold.account.userId,
      callId: hold.callId,
      callee: r.answer.callee ?? '',
      rateId: r.rateId,
      maxSeconds: r.answer.maxSeconds,
      holdForfait: hold.forfait,
      holdMoney: hold.money,
      expiresAt: new Date(hold.expiresAt),
      answer: r.answer,
    });
    if (!inserted) throw new ConflictError('CONFLICT', `callId ${hold.callId} was already used by an earlier call of this tenant`);
    hold.committed = ++svc.book.seq;
    return hold.answer;
  } catch (err) {
    tb.release(hold);
    throw err;
  } finally {
    settle();
  }
}
