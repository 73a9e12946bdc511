/**
 * Export spacing (seed 003, "Deux exportations parallèles par session seront
 * retardées de 5 secondes"): two exports from the same caller (API key or
 * session) start at least `intervalMs` apart; the second waits out the rest.
 * While one waits, a third from that caller is refused (429 with Retry-After):
 * during the spacing only one request per caller is let through.
 * The clock and the sleep are injectable (tests never wait for real time).
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import { BusyError } from '../shared/errors.js';

export interface SpacingOptions {
  intervalMs: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export class ExportSpacing {
  private readonly last = new Map<string, number>();
  private readonly waiting = new Set<string>();
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: SpacingOptions) {
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => sleepFor(ms));
  }

  /** Resolves when `caller` may start its export (at once, or `intervalMs` after its previous one started). */
  async wait(caller: string): Promise<void> {
    const now = this.now();
    const { intervalMs } = this.options;
    if (this.last.size > 10_000) for (const [k, t] of this.last) if (now - t >= intervalMs) this.last.delete(k);
    const last = this.last.get(caller);
    if (last === undefined || now - last >= intervalMs) {
      this.last.set(caller, now);
      return;
    }
    if (this.waiting.has(caller)) {
      throw new BusyError('TOO_MANY_REQUESTS', `an export of this caller is already waiting its ${intervalMs / 1000} s spacing: try again later`, Math.max(1, Math.ceil((last + intervalMs - now) / 1000)));
    }
    const at = last + intervalMs;
    this.last.set(caller, at);
    this.waiting.add(caller);
    try {
      await this.sleep(at - now);
    } finally {
      this.waiting.delete(caller);
    }
  }
}
