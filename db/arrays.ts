/**
 * Array parameters for set-based statements: one parameter per column, expanded
 * with unnest() or matched with `= any(…)` on the server. The literal is built
 * here in one pass per value (PostgreSQL parses a whole batch column in one go),
 * and passed as one bound text parameter cast to its array type.
 */
import { sql, type RawBuilder } from 'kysely';

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

/**
 * `= any($n::type[])` for a Kysely where: `.where('callId', '=', anyOf('text', ids))`.
 * One parameter whatever the number of values (an `in (…)` list of 50,000 would
 * pass PostgreSQL's 65,535 parameters).
 */
export function anyOf(type: 'text' | 'uuid' | 'bigint', values: readonly string[]): RawBuilder<string> {
  return sql<string>`any(${textArray(values)}::${sql.raw(type)}[])`;
}
