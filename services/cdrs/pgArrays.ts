/**
 * Exact decimal amounts as bigint 1/10000 units: numeric(20,4) text in, text
 * out. (The array parameters that shared this file are db/arrays.ts now.)
 */
import { units4Text } from '../../db/copy.js';

/** numeric(20,4) text ("-12.3400", "5") → bigint of 1/10000 units. */
export function toUnits4(s: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d{0,4}))?$/.exec(s.trim());
  if (m === null) throw new RangeError(`not a 4-decimal amount: ${s}`);
  const units = BigInt(m[2]! + (m[3] ?? '').padEnd(4, '0'));
  return m[1] === '-' ? -units : units;
}

const SAFE_UNITS = BigInt(Number.MAX_SAFE_INTEGER);

/** bigint of 1/10000 units → "-12.3400". */
export function fromUnits4(u: bigint): string {
  // every real balance is a safe integer of units: number arithmetic, no bigint division
  if (u <= SAFE_UNITS && u >= -SAFE_UNITS) return units4Text(Number(u));
  const negative = u < 0n;
  const digits = (negative ? -u : u).toString().padStart(5, '0');
  return `${negative ? '-' : ''}${digits.slice(0, -4)}.${digits.slice(-4)}`;
}
