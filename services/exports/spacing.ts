/**
 * Export spacing (seed 003, "Deux exportations parallèles par session seront
 * retardées de 5 secondes. Pendant la période de limitation de débit, une
 * seule demande sera autorisée par session"): an export asked by a caller (API
 * key or session) while another of its exports is still running starts
 * `intervalMs` after that one started; while it waits, a third is refused
 * (429 with Retry-After). Exports one after the other are not delayed.
 * The clock and the sleep are injectable (tests never wait for real time).
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import { BusyError } from '../shared/errors.js';

export interface SpacingOptions {
  intervalMs: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

interface CallerState {
  /** exports started and not yet ended */
  running: number;
  /** when the latest started (or will start, for one waiting) */
  lastStart: number;
  waiting: boolean;
}

export class ExportSpacing {
  private readonly callers = new Map<string, CallerState>();
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: SpacingOptions) {
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => sleepFor(ms));
  }

  /**
   * Resolves when `caller`'s export may start, with the function to call when
   * it ends (however it ends).
   */
  async start(caller: string): Promise<() => void> {
    const now = this.now();
    const { intervalMs } = this.options;
    let state = this.callers.get(caller);
    if (state === undefined) {
      state = { running: 0, lastStart: now, waiting: false };
      this.callers.set(caller, state);
    } else if (state.running > 0) {
      if (state.waiting) {
        const retryAfter = Math.max(1, Math.ceil((state.lastStart + intervalMs - now) / 1000));
        throw new BusyError('TOO_MANY_REQUESTS', `an export of this caller is already waiting its ${intervalMs / 1000} s spacing: try again later`, retryAfter);
      }
      const at = state.lastStart + intervalMs;
      if (at > now) {
        state.waiting = true;
        state.lastStart = at;
        try {
          await this.sleep(at - now);
        } finally {
          state.waiting = false;
        }
      } else state.lastStart = now;
    } else state.lastStart = now;
    state.running++;
    let ended = false;
    const s = state;
    return () => {
      if (ended) return;
      ended = true;
      s.running--;
      if (s.running === 0 && !s.waiting && this.callers.get(caller) === s) this.callers.delete(caller);
    };
  }
}
