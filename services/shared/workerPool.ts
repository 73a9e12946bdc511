/**
 * A small pool of worker threads for CPU-heavy reporting work (PDF rendering,
 * CSV building): the thread that answers the PBX's `/v1/authorize` must never
 * run it (issue #24). Tasks are plain messages answered in order of arrival by
 * the first free worker; a bounded queue refuses more (BusyError, 429) rather
 * than piling work up.
 *
 * Workers run at the lowest CPU priority (nice 19, Linux): on a machine whose
 * cores are shared with the server's own thread and PostgreSQL, a report takes
 * what they leave instead of an equal share, so a running PDF slows the
 * answers to the PBX as little as possible. Elsewhere the priority stays as is.
 *
 * The entry of a worker is a module beside the caller, named without its
 * extension: the compiled `name.js` when it exists (the build's dist/), else
 * `name.ts` behind tsx's loader (running from source: `tsx`, vitest). A worker
 * module calls `serveTasks` with its handlers.
 */
import { existsSync, readlinkSync } from 'node:fs';
import { availableParallelism, setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parentPort, Worker, type Transferable } from 'node:worker_threads';
import { BusyError } from './errors.js';

/** What a handler answers: a structured-cloneable result, and the buffers to move rather than copy. */
export interface TaskResult<R> {
  result: R;
  transfer?: Transferable[];
}

type Handlers = Record<string, (payload: never) => TaskResult<unknown> | Promise<TaskResult<unknown>>>;

interface Request {
  id: number;
  kind: string;
  payload: unknown;
}

type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; name: string; message: string };

export interface WorkerPoolOptions {
  /** How many threads at most (started on demand). Default: one less than the cores, at least 1, at most 2. */
  size?: number;
  /** How many tasks may wait for a free thread before the next is refused. */
  maxQueue?: number;
  /** Niceness of the workers' threads (Linux); 0 leaves it. */
  nice?: number;
  /** More of the workers' workerData (plain data: a database's connection options). */
  workerData?: Record<string, unknown>;
}

/** The URL a worker is started from: `name.js` beside `callerUrl`, else `name.ts` through tsx's loader. */
export function workerEntry(callerUrl: string, name: string): URL {
  const js = new URL(`./${name}.js`, callerUrl);
  if (existsSync(fileURLToPath(js))) return js;
  const ts = new URL(`./${name}.ts`, callerUrl);
  // a data: module cannot resolve a package name: both are given as file URLs
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import { register } from ${JSON.stringify(tsx)};\nregister();\nawait import(${JSON.stringify(ts.href)});\n`;
  return new URL(`data:text/javascript,${encodeURIComponent(boot)}`);
}

interface Slot {
  worker: Worker;
  busy: Pending | undefined;
}

interface Pending {
  id: number;
  kind: string;
  payload: unknown;
  transfer: Transferable[];
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

export class WorkerPool {
  private readonly size: number;
  private readonly maxQueue: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly entry: () => URL,
    private readonly options: WorkerPoolOptions = {},
  ) {
    this.size = Math.max(1, options.size ?? Math.min(2, availableParallelism() - 1));
    this.maxQueue = options.maxQueue ?? 32;
  }

  /** Runs `kind` with `payload` on a worker; `transfer` lists buffers of the payload to move there. */
  run<R>(kind: string, payload: unknown, transfer: Transferable[] = []): Promise<R> {
    if (this.closed) return Promise.reject(new Error('worker pool closed'));
    if (this.queue.length >= this.maxQueue) {
      return Promise.reject(new BusyError('TOO_MANY_REQUESTS', 'too many reports are being made: try again shortly', 2));
    }
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, kind, payload, transfer, resolve: resolve as (v: unknown) => void, reject });
      this.dispatch();
    });
  }

  /** Tasks waiting for a thread, and threads at work (for tests and metrics). */
  get load(): { waiting: number; running: number; threads: number } {
    return { waiting: this.queue.length, running: this.slots.filter((s) => s.busy).length, threads: this.slots.length };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new Error('worker pool closed'));
    await Promise.all(this.slots.splice(0).map((s) => s.worker.terminate()));
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => s.busy === undefined);
      if (slot === undefined) {
        if (this.slots.length >= this.size) return;
        slot = this.start();
      }
      const task = this.queue.shift()!;
      slot.busy = task;
      slot.worker.ref(); // a task in flight keeps the process alive, an idle worker does not
      slot.worker.postMessage({ id: task.id, kind: task.kind, payload: task.payload } satisfies Request, task.transfer);
    }
  }

  private start(): Slot {
    const worker = new Worker(this.entry(), { workerData: { ...this.options.workerData, nice: this.options.nice ?? 19 } });
    const slot: Slot = { worker, busy: undefined };
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const task = slot.busy;
      if (task === undefined || task.id !== reply.id) return;
      slot.busy = undefined;
      worker.unref();
      if (reply.ok) task.resolve(reply.result);
      else task.reject(Object.assign(new Error(reply.message), { name: reply.name }));
      this.dispatch();
    });
    const lost = (err: Error) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      slot.busy?.reject(err);
      slot.busy = undefined;
      if (!this.closed) this.dispatch();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(this.closed ? 'worker pool closed' : `report worker exited (code ${code})`)));
    this.slots.push(slot);
    return slot;
  }
}

/** Lowers the calling thread's priority (Linux: a thread's id is a pid for setpriority). */
function lowerPriority(nice: number): void {
  if (nice === 0) return;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, nice);
  } catch {
    // not Linux, or not allowed: the worker runs at the process's priority
  }
}

/** In a worker module: answers the pool's tasks with `handlers`, one at a time. */
export function serveTasks(handlers: Handlers, workerData: { nice?: number } = {}): void {
  const port = parentPort;
  if (port === null) throw new Error('serveTasks runs in a worker thread');
  lowerPriority(workerData.nice ?? 0);
  port.on('message', async ({ id, kind, payload }: Request) => {
    try {
      const handler = handlers[kind];
      if (handler === undefined) throw new Error(`no handler for ${kind}`);
      const { result, transfer } = await handler(payload as never);
      port.postMessage({ id, ok: true, result } satisfies Reply, transfer ?? []);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      port.postMessage({ id, ok: false, name: e.name, message: e.message } satisfies Reply);
    }
  });
}
