/**
 * Values loaded once per key: concurrent callers share the load, and once it
 * has settled the value can be read without waiting (`peek`: the PBX's hot path
 * must not wait a turn of the event loop for what is already in memory). A
 * failed load is forgotten, so the next call tries again; a key deleted while
 * it loads does not come back when that load settles.
 */
export class LoadingCache<V> {
  private readonly loading = new Map<string, Promise<V>>();
  private readonly loaded = new Map<string, V>();

  constructor(private readonly load: (key: string) => Promise<V>) {}

  get(key: string): Promise<V> {
    const hit = this.loading.get(key);
    if (hit) return hit;
    const started = this.load(key);
    this.loading.set(key, started);
    started.then(
      (value) => {
        if (this.loading.get(key) === started) this.loaded.set(key, value);
      },
      () => {
        if (this.loading.get(key) === started) this.loading.delete(key);
      },
    );
    return started;
  }

  /** The value when it is loaded already, else undefined (then `get` loads it). */
  peek(key: string): V | undefined {
    return this.loaded.get(key);
  }

  /** Whether the key is loaded or loading. */
  has(key: string): boolean {
    return this.loading.has(key);
  }

  get size(): number {
    return this.loading.size;
  }

  /** Every load, settled or not. */
  all(): Promise<V>[] {
    return [...this.loading.values()];
  }

  delete(key: string): void {
    this.loading.delete(key);
    this.loaded.delete(key);
  }

  clear(): void {
    this.loading.clear();
    this.loaded.clear();
  }
}
