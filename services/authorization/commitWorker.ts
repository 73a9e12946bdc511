// The reservation writer's PostgreSQL side, in a worker thread. The main
// thread, which answers the PBX, writes each reservation's JSON into a ring in
// shared memory (ring.ts); this worker takes every row there, inserts them in
// one statement, publishes how far it has committed, and goes straight on to
// the rows that arrived meanwhile. The wire protocol, the statement and its
// result stay off the event loop that serves HTTP.
import { errorCode, isUniqueViolation } from '../../db/errors.js';
import { parentPort, workerData } from 'node:worker_threads';
import postgres from 'postgres';
import { noDelaySocket, reconnectBackoff } from '../../db/noDelaySocket.js';
import { INSERTED_VALUES, RECORD_COLUMNS, TABLE_COLUMNS } from './reservationRow.js';
import { CTRL, ringLayout } from './ring.js';

/**
 * The writer's connection settings as postgres.js parsed them: it takes its
 * hosts and ports back as the arrays it made, which its Options type (one host
 * string, "a,b" for several) does not say.
 */
export type WorkerConnection = Omit<postgres.Options<Record<string, never>>, 'host' | 'port'> & { host: string[]; port: number[] };

/** What the writer starts the worker with. */
export interface CommitWorkerData {
  connection: WorkerConnection;
  ring: SharedArrayBuffer;
  ringBytes: number;
  ringSlots: number;
  maxBatch: number;
  minCycleMs: number;
}

/** What the worker posts: 'ready' once its connection is up, a bare number after a clean commit (read COMMITTED), an object when some rows need more than "inserted". */
export type WorkerReply = 'ready' | number | Report;
type Report = { upTo: number; refused: string[] } | { upTo: number; error: { message: string; code?: string } };

/** What the writer posts: the acknowledgement of a report, or the end. */
export type WriterMessage = { ack: number } | { close: true };

const { connection, ring, ringBytes, ringSlots, maxBatch, minCycleMs } = workerData as CommitWorkerData;
const { ctrl, stats, ends, data } = ringLayout(ringBytes, ringSlots, ring);

/** Event loop utilization (‰) from which the worker lets rows gather. */
const BUSY_PERMILLE = 800;

// `socket` (TCP_NODELAY, see db/noDelaySocket.js) is a postgres.js option its type declarations lack
const settings: WorkerConnection & { socket: typeof noDelaySocket } = {
  ...connection,
  socket: noDelaySocket,
  backoff: reconnectBackoff,
  onnotice: () => undefined,
};
const sql = postgres(settings as unknown as postgres.Options<Record<string, never>>);

/** The batch's rows (the ring's JSON array) as a relation, typed as the columns they go into. */
const batch = (json: string) => sql`json_to_recordset(${json}::text::json) as v(${sql.unsafe(RECORD_COLUMNS)})`;

/** The INSERT of every row of `rows`, a relation with the columns of `batch`. */
const insertFrom = (rows: postgres.PendingQuery<postgres.Row[]>) =>
  sql`insert into reservations (${sql.unsafe(TABLE_COLUMNS)}) select ${sql.unsafe(INSERTED_VALUES)} from ${rows}`;

/**
 * A plain INSERT: the owner's memory already answers a callId it holds, so a
 * conflict can only come from a callId of a call that is over, which is rare.
 * ON CONFLICT would cost every reservation a speculative insertion (~5 µs of
 * PostgreSQL each, a fifth of the insert); a conflict instead fails the whole
 * statement, which rolls back, and the batch goes again through `insertRefusing`.
 */
async function insert(json: string): Promise<string[]> {
  try {
    await insertFrom(batch(json));
    return [];
  } catch (err) {
    if (isUniqueViolation(err)) return insertRefusing(json);
    throw err;
  }
}

/** The batch again, keeping what does not conflict; the ids not inserted (their callId was already used). */
async function insertRefusing(json: string): Promise<string[]> {
  const refused = await sql<{ id: string }[]>`
    with v as (select * from ${batch(json)}),
    ins as (${insertFrom(sql`v`)} on conflict (tenant_id, call_id) do nothing returning id)
    select v."id"::text as id from v where v."id" not in (select id from ins)`;
  return refused.map((r) => r.id);
}

/** How often a batch is tried again after its connection was lost (each time on a new connection). */
const RECONNECTS = 3;


/**
 * A failure of the connection rather than of the statement: postgres.js lost
 * it (CONNECTION_*), or the server ended it (class 08, 57P01–57P03: an
 * administrator's pg_terminate_backend, a shutdown, a crash recovery). The
 * statement may or may not have committed before it went; postgres.js opens a
 * new connection for the next query (which may first meet the old one's
 * FATAL message: a lost connection can be seen twice).
 */
function connectionLost(err: unknown): boolean {
  const code = errorCode(err);
  return code !== undefined && (code.startsWith('CONNECTION_') || code.startsWith('08') || /^57P0[123]$/.test(code));
}

/**
 * After a lost connection: undefined when none of the batch's rows is stored
 * (its statement did not commit), else the ids of those that are not (the
 * callIds `insertRefusing` refused, when that was the statement that committed).
 */
async function notStored(json: string): Promise<string[] | undefined> {
  const rows = await sql<{ id: string; stored: boolean }[]>`
    select v."id"::text as id, r.id is not null as stored
    from ${batch(json)} left join reservations r on r.tenant_id = v."tenantId" and r.id = v."id"`;
  if (!rows.some((r) => r.stored)) return undefined;
  return rows.filter((r) => !r.stored).map((r) => r.id);
}

/**
 * `insert`, surviving a lost connection: the batch's rows are looked for on a
 * new connection; if they are there, it was committed before the connection
 * went; if none is, it is inserted again. Only when the database stays out of
 * reach is the batch failed, after a last look (the last INSERT too may have
 * committed before its connection went): an allow is never answered without
 * its reservation, nor, while PostgreSQL can be asked, a stored reservation
 * answered as an error.
 */
async function insertSurviving(json: string): Promise<string[]> {
  for (let attempt = 0; ; attempt++) {
    try {
      const refused = attempt > 0 ? await notStored(json) : undefined;
      return refused ?? (await insert(json));
    } catch (err) {
      if (!connectionLost(err)) throw err;
      if (attempt === RECONNECTS) {
        const refused = await notStored(json).catch(() => undefined);
        if (refused) return refused;
        throw err;
      }
    }
  }
}

let closing = false;
let acked: ((upTo: number) => void) | undefined;

parentPort?.on('message', (msg: WriterMessage) => {
  if ('ack' in msg) acked?.(msg.ack);
  else {
    closing = true;
    Atomics.notify(ctrl, CTRL.WRITTEN);
  }
});

/**
 * Hands the main thread rows that were not simply inserted, and waits until it
 * has settled them: only then is `upTo` published as committed, so the main
 * thread never takes them for inserted ones.
 */
function report(reply: Report): Promise<number> {
  return new Promise((resolve) => {
    acked = resolve;
    parentPort?.postMessage(reply);
  });
}

/** The rows between two offsets of the ring, as one JSON array. */
function rowsJson(from: number, to: number): string {
  // a row can wrap in the middle of a character: join the bytes before decoding
  const text = to > from ? data.toString('utf8', from, to) : Buffer.concat([data.subarray(from, ringBytes), data.subarray(0, to)]).toString('utf8');
  return `[${text.slice(0, -1)}]`; // each row ends with a comma
}

async function run(): Promise<void> {
  // connect now: the first reservation after a start must not wait for the connection (writer.ready())
  await sql`select 1`;
  parentPort?.postMessage('ready' satisfies WorkerReply);
  let consumed = 0; // rows taken from the ring (an int32 that wraps, like WRITTEN)
  let readOff = 0;
  let cycleStart = -Infinity;
  while (!closing) {
    let written = Atomics.load(ctrl, CTRL.WRITTEN);
    if (written === consumed) {
      Atomics.store(ctrl, CTRL.WAITING, 1);
      written = Atomics.load(ctrl, CTRL.WRITTEN);
      if (written === consumed) {
        const wait = Atomics.waitAsync(ctrl, CTRL.WRITTEN, written);
        if (wait.async) await wait.value;
      }
      Atomics.store(ctrl, CTRL.WAITING, 0);
      continue;
    }
    // while the event loop is busy, let rows gather for minCycleMs since the previous commit started (see writer.ts)
    const early = minCycleMs - (performance.now() - cycleStart);
    if (early > 0.05 && Atomics.load(ctrl, CTRL.LOAD) >= BUSY_PERMILLE) {
      Atomics.wait(ctrl, CTRL.NAP, 0, early);
      written = Atomics.load(ctrl, CTRL.WRITTEN);
    }
    cycleStart = performance.now();
    const upTo = ((written - consumed) | 0) > maxBatch ? (consumed + maxBatch) | 0 : written;
    const end = ends[(upTo - 1) & (ringSlots - 1)]!;
    const json = rowsJson(readOff, end);
    consumed = upTo;
    readOff = end;
    /** What the main thread must settle itself (refused rows, a failed commit); none when all were inserted. */
    let reply: Report | undefined;
    try {
      const refused = await insertSurviving(json);
      stats[0] = stats[0]! + 1;
      stats[1] = stats[1]! + performance.now() - cycleStart;
      if (refused.length > 0) reply = { upTo, refused };
    } catch (err) {
      reply = { upTo, error: { message: err instanceof Error ? err.message : String(err), code: errorCode(err) } };
    }
    if (reply) await report(reply);
    Atomics.store(ctrl, CTRL.COMMITTED, upTo);
    // wakes the main thread if it is idle (under load it has often read COMMITTED already); a reply was its own wake-up
    if (!reply) parentPort?.postMessage(upTo satisfies WorkerReply);
  }
  await sql.end({ timeout: 5 });
  parentPort?.close();
}

void run();
