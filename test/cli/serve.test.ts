import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../db/embedded.js';

/**
 * The README's promise, as a user lives it: `forfait serve` on a fresh data
 * folder starts an embedded PostgreSQL, prints and stores the bootstrap key,
 * stops with exit code 0 on Ctrl-C (SIGINT) and keeps the data for the next start.
 */
const root = path.resolve(import.meta.dirname, '../..');
let dataDir: string;

function start(port: number): { child: ChildProcess; output: () => string } {
  let out = '';
  const child = spawn(process.execPath, [path.join(root, 'bin/forfait.js'), 'serve', '--port', String(port), '--host', '127.0.0.1'], {
    cwd: root,
    env: { ...process.env, FORFAIT_DATA_DIR: dataDir, DATABASE_URL: '', FORFAIT_BOOTSTRAP_KEY: '', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { child, output: () => out };
}

async function healthy(port: number, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('no 200 on /health');
}

function exitCode(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

afterAll(async () => {
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('forfait serve', () => {
  it('starts on a fresh folder, writes the bootstrap key, exits 0 on SIGINT and keeps data', async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'forfait-serve-'));
    const port = await freePort();
    const first = start(port);
    await healthy(port);
    const keyFile = path.join(dataDir, 'bootstrap-key');
    const key = (await readFile(keyFile, 'utf8')).trim();
    expect(key).toMatch(/^ffk_[0-9a-f]{16}_/);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    expect(first.output()).toContain(key);

    const created = await fetch(`http://127.0.0.1:${port}/v1/tenants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Persisted SA', productType: 'pro' }),
    });
    expect(created.status).toBe(201);

    const exited = exitCode(first.child);
    first.child.kill('SIGINT');
    expect(await exited).toBe(0);

    const second = start(port);
    await healthy(port);
    expect(second.output()).not.toContain(key); // shown once only
    const list = await fetch(`http://127.0.0.1:${port}/v1/tenants`, { headers: { authorization: `Bearer ${key}` } });
    const body = (await list.json()) as { items: { name: string }[] };
    expect(body.items.map((t) => t.name)).toContain('Persisted SA');
    const exited2 = exitCode(second.child);
    second.child.kill('SIGTERM');
    expect(await exited2).toBe(0);
    // the embedded server is gone with it: nothing holds the data folder
    await expect(stat(path.join(dataDir, 'pg', 'postmaster.pid'))).rejects.toThrow();
  }, 120_000);
});
