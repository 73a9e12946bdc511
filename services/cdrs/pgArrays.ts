/**
 * Array literals for set-based statements: one parameter per column, expanded
 * with unnest() on the server. Building the literal here costs one pass per
 * value and lets PostgreSQL parse a whole batch column in one go.
 */
import { units4Text } from './copy.js';

const NEEDS_ESCAPE = /[\\"]/;
const ESCAPE = /[\\"]/g;

/** '{"a","b",NULL}' for `$n::text[]` (and casts of it: uuid[], timestamptz[], numeric[]). */
export function textArray(values: readonly (string | null)[]): string {
  const parts = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v === null) parts[i] = 'NULL';
    else parts[i] = '"' + (NEEDS_ESCAPE.test(v) ? v.replace(ESCAPE, '\\$&') : v) + '"';
  }
  return '{' + parts.join(',') + '}';
}

/** '{1,2,3}' for `$n::int[]` / `$n::bigint[]`; integers only. */
export function intArray(values: readonly number[]): string {
  for (const v of values) if (!Number.isSafeInteger(v)) throw new RangeError(`not an integer: ${v}`);
  return '{' + values.join(',') + '}';
}

// ---- exact decimal amounts as bigint 1/10000 units --------------------------

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
