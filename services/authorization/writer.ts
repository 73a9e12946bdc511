import { Worker } from 'node:worker_threads';
import type postgres from 'postgres';
import { sameDatabase } from '../../db/connection.js';
import type { CommitWorkerData, WorkerConnection, WorkerReply, WriterMessage } from './commitWorker.js';
import type { ReservationRow } from './reservationRow.js';
import { CTRL, ringLayout, type RingLayout } from './ring.js';

export type { ReservationRow };

/** Called once the reservation's commit is over: inserted false when its callId was already used, err when the commit failed. */
export type Committed = (inserted: boolean, err?: unknown) => void;

/** What the commit worker needs to open its own connection to the same database (one connection: one commit in flight, see the class comment). */
function connectionOf(sql: postgres.Sql): WorkerConnection {
  if (typeof sql.options.pass === 'function') throw new Error('the reservation writer needs a password given as a string');
  // named after the pool's own name ("forfait" → "forfait-reservations"), so an operator (or a test) tells servers' writers apart
  return sameDatabase(sql, `${sql.options.connection.application_name ?? 'forfait'}-reservations`) as unknown as WorkerConnection;
}

export interface WriterOptions {
  /** Bytes of the ring the rows cross to the worker in (rows that do not fit wait in memory). */
  ringBytes?: number;
  /** Rows the ring holds at most; a power of two. */
  ringSlots?: number;
  /** Rows in one INSERT at most. */
  maxBatch?: number;
  /** While the event loop is busy, a commit starts at least this long after the previous one started (see the class comment). */
  minCycleMs?: number;
}

/** One worker and the ring it reads: replaced as a whole if the worker dies. */
interface Channel {
  worker: Worker;
  layout: RingLayout;
  /** Rows written to the ring, and rows whose commit is settled (int32 counters that wrap). */
  written: number;
  answered: number;
  /** Where the next row's bytes go, and how many bytes are not yet committed. */
  writeOff: number;
  bytesOut: number;
  /** Per ring slot: the row's id, its callback, its size. */
  ids: (string | undefined)[];
  dones: (Committed | undefined)[];
  sizes: Int32Array;
  /** Rows that found the ring full, in order: they go in as commits free it. */
  overflow: { row: ReservationRow; done: Committed }[];
  /** Settles once the worker's connection is up (or the worker failed). */
  ready: Promise<void>;
}

/**
 * The commit worker's thread. Built (dist/), this module is JavaScript and
 * commitWorker.js is beside it. Run from the TypeScript sources (tsx, vitest),
 * the worker loads commitWorker.ts through tsx's loader, which a new thread
 * does not inherit from the one that starts it.
 */
function startWorker(workerData: CommitWorkerData): Worker {
  if (import.meta.url.endsWith('.js')) return new Worker(new URL('./commitWorker.js', import.meta.url), { workerData });
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const entry = JSON.stringify(new URL('./commitWorker.ts', import.meta.url).href);
  return new Worker(`import(${tsx}).then((tsx) => { tsx.register(); return import(${entry}); });`, { eval: true, workerData });
}

/**
 * Group commit of reservations in a worker thread (commitWorker.ts), which has
 * its own connection: the rows waiting when a commit starts go into one INSERT
 * (one transaction, one WAL flush), and each waiting authorization is answered
 * once that commit is over. One commit is in flight at a time.
 *
 * Rows cross to the worker through a ring in shared memory (ring.ts), not by
 * message: the event loop writes each row's JSON there as it is decided, and
 * the worker takes whatever is there as soon as its previous commit is over,
 * without waiting for the event loop, which under load is busy answering
 * requests (when the event loop handed each batch over, a commit cycle was
 * ~1.45 ms, a third of it spent waiting for the event loop's turn). The worker
 * publishes how far it has committed in the same memory; the event loop reads
 * that on each new reservation, and when the worker's message (one number per
 * commit) wakes it, whichever comes first.
 *
 * Cadence: the worker starts a commit as soon as the previous one is over and
 * a row is there, except while the event loop is busy (over 80 % in the last
 * 100 ms, which the event loop publishes in the same memory): then a commit
 * starts `minCycleMs` (1 ms) after the previous one started at the soonest, so
 * that rows gather. Each commit costs PostgreSQL ~80 µs and the worker about as
 * much besides its rows: at 64 connections, commits of ~20 rows instead of ~10
 * cost PostgreSQL ~14 instead of ~18 µs per reservation, CPU the event loop
 * shares; at 32, back-to-back commits answer sooner (p50 2.2 -> 1.6 ms).
 */
export class ReservationWriter {
  private channel: Channel | undefined;
  private idle: (() => void)[] = [];
  private readonly ringBytes: number;
  private readonly ringSlots: number;
  private readonly maxBatch: number;
  private readonly minCycleMs: number;
  private scratch = Buffer.allocUnsafe(64 * 1024);
  /** Reservations inserted so far. */
  written = 0;

  constructor(
    private readonly sql: postgres.Sql,
    options: WriterOptions = {},
  ) {
    this.ringBytes = options.ringBytes ?? 8 * 1024 * 1024;
    this.ringSlots = options.ringSlots ?? 32_768;
    this.maxBatch = options.maxBatch ?? 2000;
    this.minCycleMs = options.minCycleMs ?? 1;
    if ((this.ringSlots & (this.ringSlots - 1)) !== 0) throw new Error('ringSlots must be a power of two');
  }

  /** Group commits so far, and the mean of their statements' durations in ms (the benchmark prints them). */
  get flushes(): number {
    return this.channel ? this.channel.layout.stats[0]! : 0;
  }
  get commitMs(): number {
    return this.channel ? this.channel.layout.stats[1]! : 0;
  }

  /**
   * Queues the reservation for the next group commit; `done` is called once
   * that commit is over. A callback, not a promise: the caller (reserve) makes
   * the one promise an allow needs.
   */
  enqueue(row: ReservationRow, done: Committed): void {
    const ch = this.channel ?? this.open();
    this.settle(ch);
    if (ch.overflow.length > 0 || !this.put(ch, row, done)) ch.overflow.push({ row, done });
  }

  /**
   * Answers the reservations the worker has committed since the last look (one
   * atomic load when there are none): called for every authorization, so that
   * under load commits are noticed between two requests rather than when the
   * worker's message gets its turn of the event loop.
   */
  poll(): void {
    if (this.channel) this.settle(this.channel);
  }

  /**
   * Starts the commit worker now and resolves once its connection is up: a
   * server calls it as it starts, so that the first allow does not wait for a
   * thread and a connection (a few hundred ms on a loaded machine).
   */
  ready(): Promise<void> {
    return (this.channel ?? this.open()).ready;
  }

  /** Resolves when nothing is queued or in flight. */
  drain(): Promise<void> {
    if (this.quiet()) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Drains, then closes the worker's connection. */
  async close(): Promise<void> {
    await this.drain();
    const ch = this.channel;
    this.channel = undefined;
    if (!ch) return;
    const exited = new Promise<void>((resolve) => ch.worker.once('exit', () => resolve()));
    ch.worker.postMessage({ close: true } satisfies WriterMessage);
    await exited;
  }

  private quiet(): boolean {
    const ch = this.channel;
    return !ch || (ch.written === ch.answered && ch.overflow.length === 0);
  }

  private open(): Channel {
    const layout = ringLayout(this.ringBytes, this.ringSlots);
    const worker = startWorker({
      connection: connectionOf(this.sql),
      ring: layout.sab,
      ringBytes: this.ringBytes,
      ringSlots: this.ringSlots,
      maxBatch: this.maxBatch,
      minCycleMs: this.minCycleMs,
    });
    // never what keeps a process alive: close() ends it, and a process exiting without it loses nothing answered
    worker.unref();
    let connected!: () => void;
    let failed!: (err: unknown) => void;
    const ready = new Promise<void>((resolve, reject) => {
      connected = resolve;
      failed = reject;
    });
    ready.catch(() => undefined); // a failed worker is reported to each row it held; ready() callers see it too
    const ch: Channel = {
      worker,
      layout,
      written: 0,
      answered: 0,
      writeOff: 0,
      bytesOut: 0,
      ids: new Array<string | undefined>(this.ringSlots),
      dones: new Array<Committed | undefined>(this.ringSlots),
      sizes: new Int32Array(this.ringSlots),
      overflow: [],
      ready,
    };
    // the worker lets rows gather only while this event loop is busy (see the class comment)
    let last = performance.eventLoopUtilization();
    const load = setInterval(() => {
      const now = performance.eventLoopUtilization();
      Atomics.store(layout.ctrl, CTRL.LOAD, Math.round(performance.eventLoopUtilization(now, last).utilization * 1000));
      last = now;
    }, 100);
    load.unref();
    worker.once('exit', () => clearInterval(load));
    worker.on('message', (reply: WorkerReply) => {
      if (this.channel !== ch) return;
      if (reply === 'ready') {
        connected();
        return;
      }
      if (typeof reply === 'number') {
        this.settle(ch);
        return;
      }
      if ('error' in reply) {
        const err = Object.assign(new Error(reply.error.message), { code: reply.error.code });
        this.complete(ch, reply.upTo, () => err);
      } else {
        const refused = new Set(reply.refused);
        this.complete(ch, reply.upTo, (id) => !refused.has(id));
      }
      // the worker waits for this before it goes on (it then publishes upTo as committed)
      worker.postMessage({ ack: reply.upTo } satisfies WriterMessage);
      this.afterSettled(ch);
    });
    const fail = (err: unknown) => {
      failed(err);
      if (this.channel !== ch) return;
      this.channel = undefined;
      const lost = ch.overflow.splice(0);
      this.complete(ch, ch.written, () => err);
      for (const p of lost) p.done(false, err);
      for (const done of this.idle.splice(0)) done();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`reservation commit worker exited (${code})`)));
    this.channel = ch;
    return ch;
  }

  /** Answers the rows the worker has published as committed. */
  private settle(ch: Channel): void {
    const committed = Atomics.load(ch.layout.ctrl, CTRL.COMMITTED);
    if (((committed - ch.answered) | 0) <= 0) return;
    this.complete(ch, committed, () => true);
    this.afterSettled(ch);
  }

  /**
   * Settles the rows from `answered` up to `upTo`: outcome gives each row
   * true (inserted), false (its callId was already used) or the error that
   * failed its commit.
   */
  private complete(ch: Channel, upTo: number, outcome: (id: string) => boolean | unknown): void {
    const mask = this.ringSlots - 1;
    for (let n = (upTo - ch.answered) | 0; n > 0; n--) {
      const slot = ch.answered & mask;
      const id = ch.ids[slot]!;
      const done = ch.dones[slot]!;
      ch.ids[slot] = undefined;
      ch.dones[slot] = undefined;
      ch.bytesOut -= ch.sizes[slot]!;
      ch.answered = (ch.answered + 1) | 0;
      const o = outcome(id);
      if (o === true) {
        this.written++;
        done(true);
      } else if (o === false) done(false);
      else done(false, o);
    }
  }

  /** Moves rows that waited for room into the ring; wakes drain() once all is settled. */
  private afterSettled(ch: Channel): void {
    while (ch.overflow.length > 0 && this.put(ch, ch.overflow[0]!.row, ch.overflow[0]!.done)) ch.overflow.shift();
    if (this.idle.length > 0 && this.quiet()) for (const done of this.idle.splice(0)) done();
  }

  /**
   * Writes the row's JSON (and a comma: the worker wraps a run of rows in
   * brackets) into the ring and publishes it; false when the ring has no room
   * for it now (a row larger than the whole ring is failed at once).
   */
  private put(ch: Channel, row: ReservationRow, done: Committed): boolean {
    const { ctrl, ends, data } = ch.layout;
    if (((ch.written - ch.answered) | 0) >= this.ringSlots) return false;
    const text = JSON.stringify(row);
    let bytes = this.scratch;
    let n = bytes.write(text);
    // write stops before a character that does not fit (4 bytes at most): below that, all of it is there
    if (n < bytes.length - 4) bytes[n++] = 0x2c; // ','
    else {
      bytes = Buffer.from(`${text},`);
      n = bytes.length;
    }
    if (n >= this.ringBytes) {
      // it would never fit: fail it now rather than hold up every row behind it
      done(false, new Error(`reservation ${row.id} is ${n} bytes, more than the commit ring's ${this.ringBytes}`));
      return true;
    }
    // never fill the ring completely: equal read and write offsets mean empty
    if (ch.bytesOut + n >= this.ringBytes) return false;
    const first = Math.min(n, this.ringBytes - ch.writeOff);
    data.set(bytes.subarray(0, first), ch.writeOff);
    if (first < n) data.set(bytes.subarray(first, n), 0);
    ch.writeOff = (ch.writeOff + n) % this.ringBytes;
    const slot = ch.written & (this.ringSlots - 1);
    ends[slot] = ch.writeOff;
    ch.ids[slot] = row.id;
    ch.dones[slot] = done;
    ch.sizes[slot] = n;
    ch.bytesOut += n;
    ch.written = (ch.written + 1) | 0;
    Atomics.store(ctrl, CTRL.WRITTEN, ch.written);
    if (Atomics.load(ctrl, CTRL.WAITING) === 1) Atomics.notify(ctrl, CTRL.WRITTEN, 1);
    return true;
  }
}
