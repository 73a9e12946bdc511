import { afterEach, describe, expect, it } from 'vitest';
import { BusyError } from '../../services/shared/errors.js';
import { WorkerPool, workerEntry } from '../../services/shared/workerPool.js';

const pools: WorkerPool[] = [];
function pool(options: ConstructorParameters<typeof WorkerPool>[1] = {}): WorkerPool {
  const p = new WorkerPool(() => workerEntry(import.meta.url, 'poolWorker'), options);
  pools.push(p);
  return p;
}
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

describe('WorkerPool', () => {
  it('runs a task on another thread, from the .ts source through tsx, and moves buffers back', async () => {
    const p = pool({ size: 1 });
    const answer = await p.run<{ text: string; threadId: number }>('echo', { text: 'bonjour' });
    expect(answer.text).toBe('bonjour');
    expect(answer.threadId).toBeGreaterThan(0);
    const bytes = await p.run<Uint8Array>('bytes', 100_000);
    expect(bytes.byteLength).toBe(100_000);
    expect(bytes[99_999]).toBe(7);
    expect(p.load).toEqual({ waiting: 0, running: 0, threads: 1 });
  });

  it('runs its threads at the lowest CPU priority', async () => {
    expect(await pool().run<number>('nice', null)).toBe(19);
    expect(await pool({ nice: 0 }).run<number>('nice', null)).toBe(0);
  });

  it('gives a task’s error to its caller, and replaces a thread that died', async () => {
    const p = pool({ size: 1 });
    await expect(p.run('fail', null)).rejects.toMatchObject({ name: 'RangeError', message: 'no such page' });
    await expect(p.run('crash', null)).rejects.toThrow(/exited \(code 3\)/);
    expect((await p.run<{ text: string }>('echo', { text: 'encore' })).text).toBe('encore');
  });

  it('queues tasks beyond its threads and refuses more than its queue holds (429), before doing them', async () => {
    const p = pool({ size: 1, maxQueue: 2 });
    const gate = new SharedArrayBuffer(4);
    const held = p.run<string>('hold', gate);
    const queued = [p.run('echo', { text: 'a' }), p.run('echo', { text: 'b' })];
    await expect.poll(() => p.load).toEqual({ waiting: 2, running: 1, threads: 1 });
    const refused = await p.run('echo', { text: 'c' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BusyError);
    expect((refused as BusyError).code).toBe('TOO_MANY_REQUESTS');
    Atomics.store(new Int32Array(gate), 0, 1);
    Atomics.notify(new Int32Array(gate), 0);
    expect(await held).toBe('released');
    expect(await Promise.all(queued)).toMatchObject([{ text: 'a' }, { text: 'b' }]);
  });
});
