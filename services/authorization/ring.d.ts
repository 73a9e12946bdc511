/** Int32 cells at the head of the ring's buffer (see ring.js). */
export const CTRL: Readonly<{ WRITTEN: 0; COMMITTED: 1; WAITING: 2; NAP: 3; LOAD: 4 }>;

export interface RingLayout {
  sab: SharedArrayBuffer;
  ctrl: Int32Array;
  stats: Float64Array;
  ends: Int32Array;
  data: Buffer;
}

/** The ring the reservation writer and its commit worker share (see ring.js). */
export function ringLayout(bytes: number, slots: number, sab?: SharedArrayBuffer): RingLayout;
