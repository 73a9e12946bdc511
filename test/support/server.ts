import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import path from 'node:path';
import { freePort } from '../../db/embedded.js';

/** A real `forfait serve` in a child process, on its own data folder (embedded PostgreSQL). */
const root = path.resolve(import.meta.dirname, '../..');

export interface ServerProcess {
  child: ChildProcess;
  port: number;
  output(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

export function spawnServer(dataDir: string, port: number, env: Record<string, string> = {}, args: string[] = []): ServerProcess {
  let out = '';
  const child = spawn(process.execPath, [path.join(root, 'bin/forfait.js'), 'serve', '--port', String(port), '--host', '127.0.0.1', ...args], {
    cwd: root,
    env: { ...process.env, FORFAIT_DATA_DIR: dataDir, DATABASE_URL: '', FORFAIT_BOOTSTRAP_KEY: '', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, port, output: () => out, exited };
}

/** Whether the server's process has ended (by itself or by a signal). */
function hasEnded(server: ServerProcess): boolean {
  return server.child.exitCode !== null || server.child.signalCode !== null;
}

/** Waits for a 200 on /health; gives up at once when `server`, the process that should answer, has exited. */
export async function healthy(port: number, ms = 120_000, server?: ServerProcess): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (server && hasEnded(server)) throw new Error(`the server exited (${server.child.exitCode ?? server.child.signalCode}) before /health of port ${port} answered 200`);
    const ok = await fetch(`http://127.0.0.1:${port}/health`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no 200 on /health of port ${port}`);
}

export async function api(port: number, key: string, method: string, p: string, json?: unknown) {
  const res = await fetch(`http://127.0.0.1:${port}${p}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(json !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: json !== undefined ? JSON.stringify(json) : undefined,
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : undefined) as any, text };
}

/** The URL of the embedded PostgreSQL a data folder's server runs (from its password file and postmaster.pid). */
export async function embeddedUrl(dataDir: string): Promise<string> {
  const password = (await readFile(path.join(dataDir, 'pg-password'), 'utf8')).trim();
  const port = (await readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[3];
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/forfait`;
}

/** The postmaster's pid (its process group: the server runs detached in its own group). */
export async function postmasterPid(dataDir: string): Promise<number> {
  return Number((await readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0]);
}

/**
 * `forfait serve` on a free port, up and healthy. A port found free can be taken
 * by another process before the server binds it (another test's outgoing
 * connection gets it as its local port): the server then exits with EADDRINUSE,
 * and this starts it again on another port, up to 3 times.
 */
export async function spawnHealthy(dataDir: string, env: Record<string, string> = {}, ms = 120_000): Promise<{ server: ServerProcess; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const server = spawnServer(dataDir, port, env);
    try {
      await healthy(port, ms, server);
      return { server, port };
    } catch (err) {
      if (hasEnded(server) && attempt < 3 && server.output().includes('EADDRINUSE')) continue;
      server.child.kill('SIGKILL');
      throw new Error(`${String(err)}\n${server.output()}`);
    }
  }
}

/** A `forfait serve` on a free port with its own data folder (`dir/data`), up and healthy, and its reseller key. */
export async function startServerIn(dir: string): Promise<{ server: ServerProcess; base: string; resellerKey: string }> {
  const { server, port } = await spawnHealthy(path.join(dir, 'data'));
  const resellerKey = (await readFile(path.join(dir, 'data', 'bootstrap-key'), 'utf8')).trim();
  return { server, base: `http://127.0.0.1:${port}`, resellerKey };
}

/** A server that accepts connections and never answers: what a PBX's HTTP timeout is about. */
export async function silentServer(): Promise<{ url: string; close(): void }> {
  const sockets = new Set<Socket>();
  const silent = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
    close() {
      for (const s of sockets) s.destroy();
      silent.close();
    },
  };
}
