import { describe, expect, it } from 'vitest';
import {
  buildTariffIndex,
  decideAuthorization,
  DENY_REASONS,
  formatMoney4,
  freeNumberSet,
  maxCallSeconds,
  parseMoney4,
  parseNumber,
  type AccountState,
  type AuthorizationQuestion,
  type Rate,
  type TenantRules,
} from '../../engine/index.js';
import { compiled, makeRate } from './helpers.js';

interface Case {
  name: string;
  rate: Partial<Rate>;
  forfait?: number;
  money: string;
  billing?: boolean;
  cap?: number;
  expected: { maxSeconds: number; holdForfaitSeconds: number; holdMoney: string; reason?: string };
}

const perSecond: Partial<Rate> = { pricePerMinute: '0.6', firstIncrement: 1, nextIncrement: 1 }; // 0.01 per second

const cases: Case[] = [
  {
    name: 'SPEC §5.7: balance 10, fee 0.2, 6 per minute, 1/1 → 98 s',
    rate: { connectionFee: '0.2', pricePerMinute: '6', firstIncrement: 1, nextIncrement: 1 },
    money: '10',
    expected: { maxSeconds: 98, holdForfaitSeconds: 0, holdMoney: '10.0000' },
  },
  {
    name: '60/60: money for exactly two minutes allows 120 s',
    rate: { pricePerMinute: '0.12', firstIncrement: 60, nextIncrement: 60 },
    money: '0.24',
    expected: { maxSeconds: 120, holdForfaitSeconds: 0, holdMoney: '0.2400' },
  },
  {
    name: '60/60: one ten-thousandth short → 60 s (61 s would bill 120 s)',
    rate: { pricePerMinute: '0.12', firstIncrement: 60, nextIncrement: 60 },
    money: '0.2399',
    expected: { maxSeconds: 60, holdForfaitSeconds: 0, holdMoney: '0.1200' },
  },
  {
    name: '30/6 with the first price for the first 30 s',
    rate: { pricePerMinute: '0.6', nextPricePerMinute: '0.3', firstIncrement: 30, nextIncrement: 6 },
    money: '0.5',
    // 0.30 for the first 30 s, then 0.03 per 6 s: 0.20 more buys 36 s (6 increments) → 66 s
    expected: { maxSeconds: 66, holdForfaitSeconds: 0, holdMoney: '0.4800' },
  },
  {
    name: 'forfait first, then money',
    rate: { ...perSecond, forfaitEligible: true, connectionFee: '0.1' },
    forfait: 60,
    money: '1',
    expected: { maxSeconds: 150, holdForfaitSeconds: 60, holdMoney: '1.0000' },
  },
  {
    name: 'negative balance: only what the forfait pays',
    rate: { ...perSecond, forfaitEligible: true },
    forfait: 120,
    money: '-3.5',
    expected: { maxSeconds: 120, holdForfaitSeconds: 120, holdMoney: '0.0000' },
  },
  {
    name: 'negative balance and no forfait → INSUFFICIENT_BALANCE',
    rate: perSecond,
    forfait: 120,
    money: '-0.0001',
    expected: { maxSeconds: 0, holdForfaitSeconds: 0, holdMoney: '0.0000', reason: 'INSUFFICIENT_BALANCE' },
  },
  {
    name: 'balance below the first increment → INSUFFICIENT_BALANCE',
    rate: { pricePerMinute: '0.12', firstIncrement: 60, nextIncrement: 60 },
    money: '0.1199',
    expected: { maxSeconds: 0, holdForfaitSeconds: 0, holdMoney: '0.0000', reason: 'INSUFFICIENT_BALANCE' },
  },
  {
    name: 'billing off: the forfait only',
    rate: { ...perSecond, forfaitEligible: true },
    forfait: 300,
    money: '100',
    billing: false,
    expected: { maxSeconds: 300, holdForfaitSeconds: 300, holdMoney: '0.0000' },
  },
  {
    name: 'billing off, 60/60, 90 s of forfait → 60 s',
    rate: { pricePerMinute: '0.12', firstIncrement: 60, nextIncrement: 60, forfaitEligible: true },
    forfait: 90,
    money: '100',
    billing: false,
    expected: { maxSeconds: 60, holdForfaitSeconds: 60, holdMoney: '0.0000' },
  },
  {
    name: 'billing off, forfait smaller than the first increment → FORFAIT_EXHAUSTED',
    rate: { pricePerMinute: '0.12', firstIncrement: 60, nextIncrement: 60, forfaitEligible: true },
    forfait: 59,
    money: '100',
    billing: false,
    expected: { maxSeconds: 0, holdForfaitSeconds: 0, holdMoney: '0.0000', reason: 'FORFAIT_EXHAUSTED' },
  },
  {
    name: 'billing off, forfait used up → FORFAIT_EXHAUSTED',
    rate: { ...perSecond, forfaitEligible: true },
    forfait: -10,
    money: '100',
    billing: false,
    expected: { maxSeconds: 0, holdForfaitSeconds: 0, holdMoney: '0.0000', reason: 'FORFAIT_EXHAUSTED' },
  },
  {
    name: 'billing off, rate not forfait-eligible → DESTINATION_NOT_COVERED',
    rate: perSecond,
    forfait: 3000,
    money: '100',
    billing: false,
    expected: { maxSeconds: 0, holdForfaitSeconds: 0, holdMoney: '0.0000', reason: 'DESTINATION_NOT_COVERED' },
  },
  {
    name: 'capped at maxCallSeconds',
    rate: perSecond,
    money: '1000',
    cap: 14400,
    expected: { maxSeconds: 14400, holdForfaitSeconds: 0, holdMoney: '144.0000' },
  },
  {
    name: 'class free: the cap, nothing held, even with billing off',
    rate: { ...perSecond, class: 'free' },
    money: '-5',
    billing: false,
    cap: 3600,
    expected: { maxSeconds: 3600, holdForfaitSeconds: 0, holdMoney: '0.0000' },
  },
  {
    name: 'zero-priced rate with a negative balance: the cap',
    rate: { pricePerMinute: '0', firstIncrement: 60, nextIncrement: 60 },
    money: '-5',
    cap: 600,
    expected: { maxSeconds: 600, holdForfaitSeconds: 0, holdMoney: '0.0000' },
  },
];

describe('maxCallSeconds (SPEC §5.7)', () => {
  it.each(cases)('$name', (c) => {
    const result = maxCallSeconds({
      rate: compiled(c.rate),
      availableForfaitSeconds: c.forfait ?? 0,
      availableMoney: parseMoney4(c.money),
      billingEnabled: c.billing ?? true,
      maxCallSeconds: c.cap ?? 14400,
    });
    const { holdMoney, ...rest } = result;
    expect({ ...rest, holdMoney: formatMoney4(holdMoney) }).toEqual(c.expected);
  });

  it('a free number gets the cap and holds nothing', () => {
    const result = maxCallSeconds({
      rate: compiled({ ...perSecond, forfaitEligible: true }),
      availableForfaitSeconds: 100,
      availableMoney: parseMoney4('0'),
      billingEnabled: true,
      maxCallSeconds: 900,
      freeNumber: true,
    });
    expect(result).toEqual({ maxSeconds: 900, holdForfaitSeconds: 0, holdMoney: 0 });
  });

  it('lists the §5 deny reasons in check order', () => {
    expect(DENY_REASONS).toEqual([
      'UNKNOWN_USER',
      'TENANT_SUSPENDED',
      'ACCOUNT_DISABLED',
      'EMPTY_KEY',
      'NUMBER_NOT_AUTHORIZED',
      'NO_RATE',
      'DESTINATION_NOT_COVERED',
      'FORFAIT_EXHAUSTED',
      'INSUFFICIENT_BALANCE',
    ]);
  });
});

describe('decideAuthorization: the checks of SPEC §5, the first that fails decides', () => {
  const MOBILE = '+33612345678';
  const tariff = buildTariffIndex([makeRate({ prefix: '336', destination: 'France mobile', class: 'mobile', connectionFee: '0.2', pricePerMinute: '6' })]);
  const parse = (n: string) => {
    const p = parseNumber(n, 'FR');
    return p.ok ? p.e164 : null;
  };
  const tenant: TenantRules = { status: 'active', freeNumbers: freeNumberSet(['112', '15'], parse), maxCallSeconds: 14_400, lowBalanceThreshold: parseMoney4('1') };
  const account: AccountState = {
    enabled: true,
    billingEnabled: true,
    forfaitSeconds: 0,
    usedSeconds: 0,
    balance: parseMoney4('10'),
    authorized: [MOBILE, null, null, null, null, null, null, null, null, null],
    heldForfait: 0,
    heldMoney: parseMoney4('0'),
  };
  const ask = (q: Partial<AuthorizationQuestion>) => decideAuthorization({ account, tenant, callee: MOBILE, tariff, now: 0, ...q });
  const suspended: TenantRules = { ...tenant, status: 'suspended' };
  const disabled: AccountState = { ...account, enabled: false };

  it.each([
    ['1. no account', { account: undefined, tenant: suspended }, 'UNKNOWN_USER'],
    ['2. a suspended tenant, before the disabled account', { tenant: suspended, account: disabled }, 'TENANT_SUSPENDED'],
    ['2. a disabled account, before a free number', { account: disabled, callee: '112' }, 'ACCOUNT_DISABLED'],
    ['4. an empty speed-dial slot', { callee: null, key: 2 }, 'EMPTY_KEY'],
    ['5. a number not among the ten', { callee: '+33698765432' }, 'NUMBER_NOT_AUTHORIZED'],
    ['6. no tariff', { tariff: null }, 'NO_RATE'],
    ['7. no money left after the holds', { account: { ...account, heldMoney: parseMoney4('10') } }, 'INSUFFICIENT_BALANCE'],
  ] as const)('%s → %s', (_name, q, reason) => {
    expect(ask(q)).toMatchObject({ decision: 'deny', reason });
  });

  it('3. a free number is allowed for the cap with nothing held, authorized or not', () => {
    expect(ask({ callee: '15' })).toEqual({ decision: 'allow', callee: '15', maxSeconds: 14_400 });
  });

  it('a speed-dial key dials its slot; SPEC §5.7: balance 10, fee 0.2, 6 per minute → 98 s holding all of it', () => {
    const d = ask({ callee: null, key: 1 });
    expect(d).toMatchObject({ decision: 'allow', callee: MOBILE, maxSeconds: 98, lowBalance: true });
    if (d.decision !== 'allow' || !d.hold) throw new Error('a paid allow holds credit');
    expect(d.hold.account).toBe(account);
    expect(formatMoney4(d.hold.money)).toBe('10.0000');
  });
});
