// What the directory's verbs share: the field rules of SPEC §2 (User), the
// parsing of numbers in the tenant's country and the user's outside view.
import { sql, type RawBuilder } from 'kysely';
import type { User } from '../../db/schema.js';
import { formatNumber, parseNumber, type CountryCode, type NumberDisplay, type ParsedNumber } from '../../engine/numbers.js';
import type { DirectoryTenant } from './repo.js';

export const slotCount = 10;
export const maxNameLength = 200;
export const maxForfaitMinutes = 1_000_000;
export type AccountStatus = User['accountStatus'];
export const accountStatuses = ['enabled', 'disabled'] as const satisfies readonly AccountStatus[];

/**
 * Parses numbers in the tenant's country, remembering answers: a directory file
 * repeats the same switchboard and mobile numbers on many lines.
 */
export class NumberParser {
  private memo = new Map<string, ParsedNumber>();
  constructor(readonly country: CountryCode) {}

  parse(input: string): ParsedNumber {
    const text = input.trim();
    let hit = this.memo.get(text);
    if (hit === undefined) {
      hit = parseNumber(text, this.country);
      if (this.memo.size < 1_000_000) this.memo.set(text, hit);
    }
    return hit;
  }
}

/** What is wrong with the full name text[from, to) (already trimmed), if anything. */
export function nameProblemAt(text: string, from: number, to: number): string | undefined {
  if (to === from) return 'full name is required';
  if (to - from > maxNameLength) return `full name is longer than ${maxNameLength} characters`;
  // control characters have no place in a name and would break CSV and PDF output
  for (let k = from; k < to; k++) {
    const ch = text.charCodeAt(k);
    if (ch < 32 || ch === 127) return 'full name contains control characters (tab, line break…)';
  }
  return undefined;
}

export function nameProblem(name: string): string | undefined {
  return nameProblemAt(name, 0, name.length);
}

/** A field made of a fixed number of decimal digits (SPEC §2 User). */
export interface DigitsRule {
  readonly field: 'matricule' | 'identifiant';
  readonly digits: number;
  /** The rule as a pattern, for request schemas (and so the OpenAPI document). */
  readonly re: RegExp;
  /** What a request schema answers when the pattern does not match. */
  readonly message: string;
}

function digitsRule(field: DigitsRule['field'], digits: number): DigitsRule {
  return { field, digits, re: new RegExp(`^[0-9]{${digits}}$`), message: `exactly ${digits} digits` };
}

/** The matricule: exactly 14 digits, the user's key in CSV sync. */
export const matriculeRule = digitsRule('matricule', 14);
/** The identifiant: exactly 7 digits, what the PBX sends. */
export const identifiantRule = digitsRule('identifiant', 7);

/** Value of text[from, to) when it is one or more decimal digits only, else -1. */
export function digitsValue(text: string, from = 0, to = text.length): number {
  if (to === from) return -1;
  let v = 0;
  for (let k = from; k < to; k++) {
    const d = text.charCodeAt(k) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/**
 * Value of text[from, to) when it follows the rule (exact as a double: at most
 * 15 digits), else -1. The import keys its duplicate checks by it.
 */
export function digitsKey(rule: DigitsRule, text: string, from = 0, to = text.length): number {
  return to - from === rule.digits ? digitsValue(text, from, to) : -1;
}

/** What a value that does not follow the rule is told. */
export function digitsMessage(rule: DigitsRule, value: string): string {
  return `${rule.field} must be ${rule.message} (got ${value.length === 0 ? 'nothing' : `"${value}"`})`;
}

export function digitsProblem(rule: DigitsRule, value: string): string | undefined {
  return digitsKey(rule, value) >= 0 ? undefined : digitsMessage(rule, value);
}

export function matriculeProblem(value: string): string | undefined {
  return digitsProblem(matriculeRule, value);
}

export function identifiantProblem(value: string): string | undefined {
  return digitsProblem(identifiantRule, value);
}

const maxForfaitDigits = String(maxForfaitMinutes).length;

/** Forfait minutes written as digits (0 to maxForfaitMinutes): their value, else -1. */
export function forfaitMinutesValue(text: string, from = 0, to = text.length): number {
  if (to - from > maxForfaitDigits) return -1;
  const v = digitsValue(text, from, to);
  return v <= maxForfaitMinutes ? v : -1;
}

export interface UserView {
  id: string;
  tenantId: string;
  fullName: string;
  matricule: string;
  identifiant: string;
  generalState: string | null;
  accountStatus: AccountStatus;
  forfaitMinutes: number;
  forfaitPeriod: string | null;
  usedSeconds: number;
  totalCallSeconds: number;
  balance: string;
  billingEnabled: boolean;
  authorizedNumbers: (string | null)[];
  createdAt: string;
  updatedAt: string;
}

/**
 * The 10 slots as read from the database. postgres.js 3.4 parses a NULL element
 * of a text[] as the string "NULL" (its array parser has no NULL case); a
 * stored number is never that string, so it is read back as an empty slot.
 */
export function slotsFromDb(numbers: readonly (string | null)[]): (string | null)[] {
  const out: (string | null)[] = [];
  for (let i = 0; i < slotCount; i++) {
    const n = numbers[i] ?? null;
    out.push(n === null || n === 'NULL' ? null : n);
  }
  return out;
}

/** Display form of the 10 slots in the tenant's numberDisplay. */
export function displayNumbers(numbers: readonly (string | null)[], tenant: Pick<DirectoryTenant, 'numberDisplay' | 'country'>): (string | null)[] {
  return slotsFromDb(numbers).map((n) => (n === null ? null : formatNumber(n, tenant.numberDisplay, tenant.country)));
}

/** balance as a 4-decimal string ("10.0000"): numeric(20,4) comes back as text already. */
export function userView(u: User, tenant: Pick<DirectoryTenant, 'numberDisplay' | 'country'>): UserView {
  return {
    id: u.id,
    tenantId: u.tenantId,
    fullName: u.fullName,
    matricule: u.matricule,
    identifiant: u.identifiant,
    generalState: u.generalState,
    accountStatus: u.accountStatus,
    forfaitMinutes: u.forfaitMinutes,
    forfaitPeriod: u.forfaitPeriod,
    usedSeconds: u.usedSeconds,
    totalCallSeconds: Number(u.totalCallSeconds),
    balance: u.balance,
    billingEnabled: u.billingEnabled,
    authorizedNumbers: displayNumbers(u.authorizedNumbers, tenant),
    createdAt: u.createdAt.toISOString(),
    updatedAt: u.updatedAt.toISOString(),
  };
}

/**
 * The 10 slots as a text[] parameter. postgres.js would send a JS null inside
 * an array as the string "NULL"; an explicit array literal keeps it a NULL.
 */
export function numbersParam(numbers: readonly (string | null)[]): RawBuilder<(string | null)[]> {
  const items: string[] = [];
  for (let i = 0; i < slotCount; i++) {
    const n = numbers[i] ?? null;
    items.push(n === null ? 'NULL' : `"${n.replace(/["\\]/g, (ch) => `\\${ch}`)}"`);
  }
  return sql<(string | null)[]>`${`{${items.join(',')}}`}::text[]`;
}
