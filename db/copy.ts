/**
 * COPY … FROM STDIN inside a Kysely transaction (through `rawSql(trx)`), and
 * the text-format values it takes. A batch's CDRs and ledger entries and a
 * tariff's rates go in through COPY: PostgreSQL then inserts them in groups
 * (one heap write and one WAL record per page, not per row) and parses one line
 * per row instead of one array element per column.
 */
import type postgres from 'postgres';

const NEEDS_ESCAPE = /[\\\t\n\r]/;
const ESCAPE = /[\\\t\n\r]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** A value of COPY's text format: `\N` for NULL, tabs, line breaks and backslashes escaped. */
export function copyValue(v: string | null): string {
  if (v === null) return '\\N';
  return NEEDS_ESCAPE.test(v) ? v.replace(ESCAPE, (c) => ESCAPES[c]!) : v;
}

/** "-12.3400": numeric(20,4) text of an integer amount of 1/10000 units (a Money4 cost, a safe integer). */
export function units4Text(units: number): string {
  if (units === 0) return '0.0000';
  const negative = units < 0;
  const abs = negative ? -units : units;
  const whole = Math.floor(abs / 10_000);
  const frac = abs - whole * 10_000;
  const f = frac < 10 ? '000' + frac : frac < 100 ? '00' + frac : frac < 1000 ? '0' + frac : String(frac);
  return (negative ? '-' : '') + whole + '.' + f;
}

// Instants: "2026-11-03 09:15:00.250Z" (UTC) with the day's prefix cached: CDR files
// are in time order, so consecutive rows share their day.
let dayKey = NaN;
let dayPrefix = '';
const two = (n: number) => (n < 10 ? '0' + n : String(n));

/** An epoch-ms instant as a timestamptz literal PostgreSQL reads without ambiguity. */
export function instantText(ms: number): string {
  const day = Math.floor(ms / 86_400_000);
  if (day !== dayKey) {
    dayKey = day;
    dayPrefix = new Date(day * 86_400_000).toISOString().slice(0, 11);
  }
  let rest = ms - day * 86_400_000;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = Math.floor(rest / 1000);
  const milli = rest - s * 1000;
  const base = dayPrefix + two(h) + ':' + two(m) + ':' + two(s);
  return milli === 0 ? base + 'Z' : base + '.' + String(milli).padStart(3, '0') + 'Z';
}

/** The rows of one COPY, produced in chunks of text lines (each ending with "\n"), or the bytes of a file (an archive restored). */
export type CopyChunks = Iterable<Buffer> | AsyncIterable<Buffer>;

const CHUNK_BYTES = 256 * 1024;

/**
 * Lines written straight into UTF-8 chunks: a line goes from a string to bytes
 * once, instead of being appended to an ever longer string that is flattened
 * and encoded again when written. Each chunk is a new buffer (the stream may
 * hold a chunk until the socket takes it).
 */
export class CopyBuffer {
  private buf = Buffer.allocUnsafe(CHUNK_BYTES);
  private off = 0;

  /** Adds a line (with its "\n"); returns a full chunk to send, if any. */
  add(line: string): Buffer | undefined {
    // 3 bytes per UTF-16 unit at most: the line always fits in a fresh chunk
    const most = line.length * 3;
    let full: Buffer | undefined;
    if (this.off + most > this.buf.length) {
      full = this.take();
      if (most > this.buf.length) this.buf = Buffer.allocUnsafe(most);
    }
    this.off += this.buf.write(line, this.off, 'utf8');
    return full;
  }

  /** What is buffered, or undefined when empty. */
  take(): Buffer | undefined {
    if (this.off === 0) return undefined;
    const chunk = this.buf.subarray(0, this.off);
    this.buf = Buffer.allocUnsafe(CHUNK_BYTES);
    this.off = 0;
    return chunk;
  }
}

/**
 * Runs `COPY <target> FROM STDIN` (text format) in the transaction and writes the
 * chunks. Resolves once PostgreSQL has stored every row; rejects with
 * PostgreSQL's error (a unique violation, say) wherever in the stream it happens.
 *
 * postgres.js resolves the COPY query with the stream as soon as COPY starts, so
 * an error PostgreSQL reports after the last chunk (rows are inserted in groups,
 * the last group when the stream ends) reaches neither the stream nor that
 * promise: it goes to the query's reject, which is watched here too. Without
 * that the stream would never finish and the batch would hang.
 */
export async function copyIn(tx: postgres.Sql, statement: string, chunks: CopyChunks): Promise<void> {
  let failed: (err: unknown) => void = () => undefined;
  const failure = new Promise<never>((_, reject) => {
    failed = reject;
  });
  failure.catch(() => undefined);
  const query = tx.unsafe(statement) as unknown as postgres.PendingQuery<postgres.Row[]> & { reject?: (err: unknown) => void };
  const reject = query.reject;
  if (typeof reject === 'function') {
    query.reject = (err: unknown) => {
      failed(err);
      reject.call(query, err);
    };
  }
  const stream = await query.writable();
  const finished = new Promise<void>((resolve, rejectFinish) => {
    stream.on('finish', resolve);
    stream.on('error', rejectFinish);
  });
  finished.catch(() => undefined);
  const drained = () =>
    Promise.race([
      new Promise<void>((resolve) => stream.once('drain', resolve)),
      finished,
      failure,
    ]);
  try {
    for await (const chunk of chunks) {
      if (stream.destroyed) break;
      if (!stream.write(chunk)) await drained();
    }
  } catch (err) {
    // The rows could not be produced: abort the COPY (CopyFail) and wait for
    // PostgreSQL's answer, so the connection is out of COPY mode when the
    // transaction rolls back; otherwise the ROLLBACK is refused and the
    // connection never goes back to the pool.
    stream.destroy(err instanceof Error ? err : new Error(String(err)));
    await Promise.race([finished, failure]).catch(() => undefined);
    throw err;
  }
  stream.end();
  await Promise.race([finished, failure]);
}
