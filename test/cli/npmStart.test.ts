import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../db/embedded.js';
import { healthy } from '../support/server.js';

/**
 * The README's `npm start`, stopped as a terminal's Ctrl-C stops it: SIGINT to
 * the whole foreground process group (npm, the script's shell, the server). npm
 * exits with the script's code; the script `exec`s the server so no shell in
 * between dies of the signal and turns a clean shutdown into 130 (issue 18).
 */
const root = path.resolve(import.meta.dirname, '../..');
let dataDir: string | undefined;

afterAll(async () => {
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('npm start', () => {
  it('stopped by Ctrl-C (SIGINT to its process group) exits 0 after a clean shutdown', async () => {
    // dist/ is built from the sources under test by the run's global setup (test/support/build.ts)
    dataDir = await mkdtemp(path.join(tmpdir(), 'forfait-npm-start-'));
    const port = await freePort();
    let out = '';
    // detached: its own process group, as a shell gives a foreground job
    const child = spawn('npm', ['start', '--ignore-scripts', '--', '--port', String(port), '--host', '127.0.0.1', '--no-jobs'], {
      cwd: root,
      detached: true,
      env: { ...process.env, FORFAIT_DATA_DIR: dataDir, DATABASE_URL: '', FORFAIT_BOOTSTRAP_KEY: '', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await healthy(port, 90_000).catch((err: unknown) => {
      throw new Error(`${String(err)}\n--- output ---\n${out}`);
    });
    // the server runs as package.json says: V8's collector on each thread itself (docs/operations.md)
    const server = readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map((d) => {
        try {
          return readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
        } catch {
          return [];
        }
      })
      .find((argv) => argv.some((a) => a.endsWith('dist/cli/main.js')) && argv.includes(String(port)));
    expect(server, out).toBeDefined();
    expect(server).toContain('--single-threaded-gc');
    process.kill(-child.pid!, 'SIGINT');
    expect(await exited, out).toBe(0);
    expect(out).toContain('SIGINT: finishing requests in flight');
    expect(out).not.toContain('exiting now');
  }, 240_000);
});
