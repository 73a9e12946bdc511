import type { Selectable } from 'kysely';
import type { ReservationTable } from '../../db/schema.js';

/**
 * A reservation as the writer hands it to the commit worker: the columns of
 * `reservations` it is inserted with (status, created_at and released_at take
 * their defaults), named and typed as db/schema.ts has them, except two that
 * cross the ring in a cheaper form.
 */
export type ReservationRow = Pick<
  Selectable<ReservationTable>,
  'tenantId' | 'id' | 'userId' | 'callId' | 'callee' | 'rateId' | 'maxSeconds' | 'holdForfaitSeconds' | 'holdMoney'
> & {
  /** When the reservation expires, in ms since the epoch (to_timestamp in the INSERT). */
  expiresAt: number;
  /** The answer given to the PBX: the column keeps its JSON text. */
  answer: object;
};

/**
 * Each column as the worker reads it from a row's JSON (json_to_recordset
 * takes the JSON keys, which are the row's own: ReservationRow's names) and
 * the expression it is inserted as; keyed by ReservationRow, so tsc keeps the
 * two in step.
 */
const COLUMNS = {
  tenantId: { type: 'uuid' },
  id: { type: 'uuid' },
  userId: { type: 'uuid' },
  callId: { type: 'text' },
  callee: { type: 'text' },
  rateId: { type: 'bigint' },
  maxSeconds: { type: 'int' },
  holdForfaitSeconds: { type: 'int' },
  holdMoney: { type: 'numeric' },
  expiresAt: { type: 'float8', value: (v: string) => `to_timestamp(${v} / 1000)` },
  answer: { type: 'text' },
} satisfies Record<keyof ReservationRow, { type: string; value?: (v: string) => string }>;

const names = Object.keys(COLUMNS) as (keyof ReservationRow)[];
const quoted = (name: string) => `"${name}"`;
const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** `json_to_recordset`'s column definitions for a JSON array of rows: `"tenantId" uuid, …`. */
export const RECORD_COLUMNS = names.map((n) => `${quoted(n)} ${COLUMNS[n].type}`).join(', ');

/** The `reservations` columns a row fills: `tenant_id, …`. */
export const TABLE_COLUMNS = names.map(snake).join(', ');

/** What each of TABLE_COLUMNS gets, from a relation with RECORD_COLUMNS. */
export const INSERTED_VALUES = names
  .map((n) => {
    const column: { type: string; value?: (v: string) => string } = COLUMNS[n];
    return column.value ? column.value(quoted(n)) : quoted(n);
  })
  .join(', ');
