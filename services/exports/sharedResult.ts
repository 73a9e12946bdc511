/**
 * One export produced once for every caller asking the same within a window
 * (seed 003: "Si deux utilisateurs différents … demandent une même exportation
 * … dans la même période, le premier lancera une exportation réelle tandis que
 * le second obtiendra des données … du cache"). The key says what "the same"
 * is (tenant and filters); the result is kept `windowMs` from when it was
 * asked for, and a caller arriving while it is being produced waits for it
 * (without taking an export slot). A failure is given to the callers waiting
 * for it and forgotten: the next caller produces it again.
 */
export class SharedResults<T> {
  private readonly entries = new Map<string, { startedAt: number; value: Promise<T> }>();

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The result for `key`: the one produced within the window, or a new one from `produce`. */
  get(key: string, produce: () => Promise<T>): { value: Promise<T>; shared: boolean } {
    const now = this.now();
    for (const [k, e] of this.entries) if (now - e.startedAt >= this.windowMs) this.entries.delete(k);
    const hit = this.entries.get(key);
    if (hit) return { value: hit.value, shared: true };
    const entry = { startedAt: now, value: produce() };
    this.entries.set(key, entry);
    entry.value.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return { value: entry.value, shared: false };
  }
}
