import { BusyError } from '../shared/errors.js';

export interface ExportQueueOptions {
  /** Exports running at once for the whole server (SPEC §7: 3). */
  running: number;
  /** Exports allowed to wait (SPEC §7: 10); the next is refused with 429. */
  waiting: number;
  /** How long one may wait before it is given up with 408 (SPEC §7: 30 s). */
  maxWaitMs: number;
}

export const specExportLimits: ExportQueueOptions = { running: 3, waiting: 10, maxWaitMs: 30_000 };

/**
 * A bounded semaphore for the heavy CSV exports: at most `running` at once,
 * at most `waiting` in a FIFO queue, refusals as BusyError (429 with a
 * Retry-After, or 408 after waiting too long).
 */
export class ExportQueue {
  private active = 0;
  private queue: { grant: () => void; timer: NodeJS.Timeout }[] = [];

  constructor(private readonly options: ExportQueueOptions = specExportLimits) {}

  get stats() {
    return { running: this.active, waiting: this.queue.length };
  }

  /** Resolves with a release function once the export may run. */
  async acquire(): Promise<() => void> {
    if (this.active < this.options.running) {
      this.active++;
      return this.releaser();
    }
    if (this.queue.length >= this.options.waiting) {
      const retryAfter = Math.max(1, Math.ceil(this.options.maxWaitMs / 1000 / 2));
      throw new BusyError('TOO_MANY_REQUESTS', `${this.active} exports running and ${this.queue.length} waiting: try again later`, retryAfter);
    }
    return new Promise((resolve, reject) => {
      const entry = {
        grant: () => {
          clearTimeout(entry.timer);
          this.active++;
          resolve(this.releaser());
        },
        timer: setTimeout(() => {
          this.queue = this.queue.filter((e) => e !== entry);
          reject(new BusyError('REQUEST_TIMEOUT', `waited ${this.options.maxWaitMs / 1000} s for an export slot`));
        }, this.options.maxWaitMs),
      };
      this.queue.push(entry);
    });
  }

  /** Runs fn inside a slot, releasing it however fn ends. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      const next = this.queue.shift();
      next?.grant();
    };
  }
}
