// The shared memory the reservation writer (main thread) and its commit worker
// exchange rows through.

/** Int32 cells at the head of the buffer. */
export const CTRL = {
  /** Rows the main thread has written (wraps as an int32). */
  WRITTEN: 0,
  /** Rows the worker has committed (wraps as an int32). */
  COMMITTED: 1,
  /** 1 while the worker waits for rows: the main thread then notifies WRITTEN. */
  WAITING: 2,
  /** Always 0: the worker sleeps on it (Atomics.wait with a timeout). */
  NAP: 3,
  /** The main thread's event loop utilization over the last 100 ms, in ‰ (the worker batches more when it is busy). */
  LOAD: 4,
} as const;
const CTRL_BYTES = 32;
const STATS_BYTES = 16;

export interface RingLayout {
  sab: SharedArrayBuffer;
  ctrl: Int32Array;
  /** Commits so far, and the sum of their statements' ms (written by the worker). */
  stats: Float64Array;
  /** Per slot (row number & (slots - 1)): the data offset just past that row. */
  ends: Int32Array;
  /** The rows' JSON, each followed by a comma, wrapping at its end. */
  data: Buffer;
}

/** The ring laid out over `sab` (a new buffer when absent). */
export function ringLayout(bytes: number, slots: number, sab = new SharedArrayBuffer(CTRL_BYTES + STATS_BYTES + 4 * slots + bytes)): RingLayout {
  return {
    sab,
    ctrl: new Int32Array(sab, 0, CTRL_BYTES / 4),
    stats: new Float64Array(sab, CTRL_BYTES, STATS_BYTES / 8),
    ends: new Int32Array(sab, CTRL_BYTES + STATS_BYTES, slots),
    data: Buffer.from(sab, CTRL_BYTES + STATS_BYTES + 4 * slots, bytes),
  };
}
