import { describe, expect, it } from 'vitest';
import { LoadingCache } from '../../services/shared/loadingCache.js';

function deferred<V>() {
  let resolve!: (v: V) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<V>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('LoadingCache (the account books and tariff indexes behind the PBX hot path)', () => {
  it('loads a key once for concurrent callers, and peeks it only once it has loaded', async () => {
    const loads: string[] = [];
    const pending = deferred<number>();
    const cache = new LoadingCache<number>((key) => {
      loads.push(key);
      return pending.promise;
    });
    const a = cache.get('t1');
    const b = cache.get('t1');
    expect(a).toBe(b);
    expect(cache.peek('t1')).toBeUndefined();
    pending.resolve(42);
    expect(await a).toBe(42);
    expect(cache.peek('t1')).toBe(42);
    expect(loads).toEqual(['t1']);
  });

  it('forgets a failed load, so the next call loads again', async () => {
    let n = 0;
    const cache = new LoadingCache<number>(async () => {
      if (++n === 1) throw new Error('database down');
      return n;
    });
    await expect(cache.get('t1')).rejects.toThrow('database down');
    expect(cache.has('t1')).toBe(false);
    expect(await cache.get('t1')).toBe(2);
    expect(cache.peek('t1')).toBe(2);
  });

  it('does not bring back a key deleted while it was loading', async () => {
    const first = deferred<number>();
    let calls = 0;
    const cache = new LoadingCache<number>(() => (++calls === 1 ? first.promise : Promise.resolve(7)));
    const stale = cache.get('p1');
    cache.delete('p1'); // e.g. the tariff was uploaded again meanwhile
    first.resolve(1);
    await stale;
    expect(cache.peek('p1')).toBeUndefined();
    expect(await cache.get('p1')).toBe(7);
    expect(cache.peek('p1')).toBe(7);
  });
});
