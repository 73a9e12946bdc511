// The reservation writer's PostgreSQL side, in a worker thread: the main
// thread, which answers the PBX, hands over a batch as one JSON string and gets
// back, once the batch is committed, the reservation ids it did NOT insert (a
// callId the tenant had already used). The wire protocol, the statement and the
// result stay off the event loop that serves HTTP.
//
// Plain JavaScript (no TypeScript syntax) so that Node loads it as it is, from
// tsx, from a bundle or from the test runner alike.
import { parentPort, workerData } from 'node:worker_threads';
import postgres from 'postgres';
import { noDelaySocket } from '../../db/noDelaySocket.js';

/** @type {{ connection: import('postgres').Options<{}> }} */
const { connection } = workerData;

const sql = postgres({ ...connection, socket: noDelaySocket, onnotice: () => undefined });

/**
 * A plain INSERT: the owner's memory already answers a callId it holds, so a
 * conflict can only come from a callId of a call that is over, which is rare.
 * ON CONFLICT would cost every reservation a speculative insertion (~5 µs of
 * PostgreSQL each, a fifth of the insert); a conflict instead fails the whole
 * statement, which rolls back, and the batch goes again through `insertRefusing`.
 * @param {string} json
 * @returns {Promise<string[]>}
 */
async function insert(json) {
  try {
    await sql`
      insert into reservations (tenant_id, id, user_id, call_id, callee, rate_id, max_seconds,
                                hold_forfait_seconds, hold_money, expires_at, answer)
      select t, i, u, c, e, r, m, f, h, to_timestamp(x::float8 / 1000), a from json_to_recordset(${json}::text::json)
        as v(t uuid, i uuid, u uuid, c text, e text, r bigint, m int, f int, h numeric, x bigint, a text)`;
    return [];
  } catch (err) {
    if (typeof err === 'object' && err !== null && 'code' in err && err.code === '23505') return insertRefusing(json);
    throw err;
  }
}

/**
 * The batch again, keeping what does not conflict.
 * @param {string} json
 * @returns {Promise<string[]>} the ids not inserted (their callId was already used)
 */
async function insertRefusing(json) {
  const refused = await sql`
    with v as (
      select * from json_to_recordset(${json}::text::json)
        as v(t uuid, i uuid, u uuid, c text, e text, r bigint, m int, f int, h numeric, x bigint, a text)
    ), ins as (
      insert into reservations (tenant_id, id, user_id, call_id, callee, rate_id, max_seconds,
                                hold_forfait_seconds, hold_money, expires_at, answer)
      select t, i, u, c, e, r, m, f, h, to_timestamp(x::float8 / 1000), a from v
      on conflict (tenant_id, call_id) do nothing
      returning id
    )
    select v.i::text as id from v where v.i not in (select id from ins)`;
  return refused.map((r) => r.id);
}

parentPort?.on('message', (/** @type {{ seq: number, json: string } | { close: true }} */ msg) => {
  if ('close' in msg) {
    void sql.end({ timeout: 5 }).finally(() => parentPort?.close());
    return;
  }
  insert(msg.json).then(
    (refused) => parentPort?.postMessage({ seq: msg.seq, refused }),
    (/** @type {unknown} */ err) =>
      parentPort?.postMessage({
        seq: msg.seq,
        error: {
          message: err instanceof Error ? err.message : String(err),
          code: typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined,
        },
      }),
  );
});
