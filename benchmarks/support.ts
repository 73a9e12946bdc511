import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type postgres from 'postgres';
import { connect, type DbHandle } from '../db/connection.js';
import { startEmbedded } from '../db/embedded.js';
import { migrateToLatest } from '../db/migrate.js';

/**
 * A fresh embedded PostgreSQL, migrated, with production durability settings
 * (fsync on): benchmarks measure what a real deployment would see.
 */
export async function freshDatabase(): Promise<DbHandle & { url: string; dataDir: string }> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'forfait-bench-'));
  const server = await startEmbedded({ dataDir, ephemeral: true });
  const handle = connect(server.url, { max: 20 });
  await migrateToLatest(handle.db);
  return {
    ...handle,
    url: server.url,
    dataDir,
    async close() {
      await handle.close();
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The closing line every benchmark prints (SPEC §12). */
export function benchLine(name: string, value: number, unit: string, anchor: number): string {
  const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(n < 10 ? 3 : 1));
  return `BENCH ${name} value=${fmt(value)} unit=${unit} anchor=${fmt(anchor)} ratio=${(value / anchor).toFixed(3)}`;
}

/** One node of a V8 CPU profile (the inspector's Profiler.Profile). */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

/**
 * Where the main thread's time went while `during` ran: a V8 CPU profile taken
 * from inside the process (node:inspector), written to `file` when given (open it
 * in Chrome's DevTools or speedscope), and its top `top` functions by self time
 * with the share of samples of each and of each package/directory. The sampling
 * itself costs the thread a little (interval 250 µs); use it to find, not to measure.
 */
export async function profiled<T>(during: () => Promise<T>, options: { file?: string; top?: number } = {}): Promise<{ result: T; report: string }> {
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  const post = <R>(method: string, params?: object) =>
    new Promise<R>((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res as R))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 250 });
  await post('Profiler.start');
  const stop = async () => {
    const { profile } = await post<{ profile: { nodes: ProfileNode[] } }>('Profiler.stop');
    session.disconnect();
    return profile;
  };
  let result: T;
  try {
    result = await during();
  } catch (err) {
    await stop();
    throw err;
  }
  const profile = await stop();
  if (options.file) {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(options.file, JSON.stringify(profile));
  }
  return { result, report: summarizeProfile(profile.nodes, options.top ?? 25) };
}

/** A profile's self time by function and by where its code lives (node_modules/<package>, the project's directory, node itself). */
function summarizeProfile(nodes: ProfileNode[], top: number): string {
  const byFunction = new Map<string, number>();
  const byPlace = new Map<string, number>();
  let total = 0;
  for (const n of nodes) {
    const hits = n.hitCount ?? 0;
    if (hits === 0) continue;
    total += hits;
    const { functionName, url, lineNumber } = n.callFrame;
    const file = url.replace(/^file:\/\//, '');
    const short = file.includes('node_modules/') ? file.slice(file.lastIndexOf('node_modules/') + 13) : file.replace(/^.*\/(api|services|engine|db|reports|benchmarks)\//, '$1/');
    const key = `${functionName || '(anonymous)'} ${short ? `${short}:${lineNumber + 1}` : ''}`.trim();
    byFunction.set(key, (byFunction.get(key) ?? 0) + hits);
    const place = !file
      ? functionName.startsWith('(') ? functionName : '(native)'
      : file.includes('node_modules/')
        ? `node_modules/${/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1]}`
        : file.startsWith('node:')
          ? 'node:internal'
          : short.split('/')[0]!;
    byPlace.set(place, (byPlace.get(place) ?? 0) + hits);
  }
  const pct = (h: number) => `${((h * 100) / Math.max(1, total)).toFixed(1).padStart(5)} %`;
  const sorted = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
  return [
    `profile: ${total} samples`,
    ...sorted(byPlace, 15).map(([k, h]) => `  ${pct(h)}  ${k}`),
    'top functions by self time:',
    ...sorted(byFunction, top).map(([k, h]) => `  ${pct(h)}  ${k}`),
  ].join('\n');
}

/** A /proc stat file (a process's or a thread's): its name and the fields after it (`fields[0]` is field 3, the state); undefined when it is gone. */
export function readStat(file: string): { name: string; fields: number[] } | undefined {
  let stat: string;
  try {
    stat = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const close = stat.lastIndexOf(')');
  return { name: stat.slice(stat.indexOf('(') + 1, close), fields: stat.slice(close + 2).split(' ').map(Number) };
}

/** utime+stime (all threads; one thread's with a task's file) and cutime+cstime (waited-for children) of a process, in seconds; 0 when gone. */
export function procTimes(pid: number, file = `/proc/${pid}/stat`): { own: number; children: number; ppid: number } {
  const f = readStat(file)?.fields;
  if (!f) return { own: 0, children: 0, ppid: 0 };
  return { own: (f[11]! + f[12]!) / 100, children: (f[13]! + f[14]!) / 100, ppid: f[1]! };
}

/**
 * CPU seconds used so far by this process (the servers, all threads), by its
 * waited-for children (wrk) and by the database's processes: the machine is
 * shared, so CPU per request tells more than requests per second alone.
 */
export function cpuSeconds(postmaster: number): { node: number; loop: number; wrk: number; pg: number } {
  const self = procTimes(process.pid);
  // the main thread (its tid is the pid): the event loop that serves HTTP; the rest is the commit worker and V8's GC and compiler threads
  const loop = procTimes(process.pid, `/proc/${process.pid}/task/${process.pid}/stat`).own;
  let pg = procTimes(postmaster).own;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const t = procTimes(Number(entry));
    if (t.ppid === postmaster) pg += t.own;
  }
  return { node: self.own, loop, wrk: self.children, pg };
}

/** The database's postmaster (the parent of its processes), from its data directory: this machine's PostgreSQL only. */
export async function postmasterPid(sql: postgres.Sql): Promise<number> {
  const [row] = await sql<{ dir: string }[]>`SELECT current_setting('data_directory') AS dir`;
  return Number(readFileSync(path.join(row!.dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}
