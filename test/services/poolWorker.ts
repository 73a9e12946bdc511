// The worker module of test/services/workerPool.test.ts.
import { readFileSync } from 'node:fs';
import { threadId, workerData } from 'node:worker_threads';
import { serveTasks } from '../../services/shared/workerPool.js';

serveTasks(
  {
    echo: (payload: { text: string }) => ({ result: { text: payload.text, threadId } }),
    bytes: (n: number) => {
      const out = new Uint8Array(n).fill(7);
      return { result: out, transfer: [out.buffer] };
    },
    // field 19 of /proc/thread-self/stat is this thread's nice value
    nice: () => ({ result: Number(readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1]!.split(' ')[16]) }),
    hold: (gate: SharedArrayBuffer) => {
      Atomics.wait(new Int32Array(gate), 0, 0);
      return { result: 'released' };
    },
    fail: () => {
      throw new RangeError('no such page');
    },
    crash: () => process.exit(3),
  },
  workerData as { nice?: number },
);
