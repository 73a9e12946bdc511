/**
 * Issue 23: the forwarding hop, measured inside `npm run bench -- authorize`
 * (BENCH_FORWARD=0 leaves it out). The benchmark's server, which owns the
 * tenant, joins the cluster; a second server, a `forfait serve` process of its
 * own on the same database (compiled, as `npm start` runs it), is then asked
 * the same requests: it owns nothing,
 * so each goes to the owner over a kept-alive connection and back
 * (api/forward.ts). What the hop adds is that run's latency less the direct
 * one's, on the same machine in the same minute.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { App } from '../api/app.js';
import { freePort } from '../db/embedded.js';

const root = path.resolve(import.meta.dirname, '..');

export async function throughNonOwner<R>(o: {
  owner: App;
  ownerPort: number;
  databaseUrl: string;
  /** A short run to warm the second server up, then the measured one, both against `url`. */
  warm: (url: string) => Promise<unknown>;
  measure: (url: string) => Promise<R>;
}): Promise<R> {
  await o.owner.cluster.join(`http://127.0.0.1:${o.ownerPort}`);
  const dataDir = await mkdtemp(path.join(tmpdir(), 'forfait-bench-forward-'));
  const port = await freePort();
  // the compiled server, as `npm start` runs it (built from the sources first, as the tests do)
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  const child = spawn(process.execPath, [path.join(root, 'bin/forfait.js'), 'serve', '--port', String(port), '--host', '127.0.0.1'], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: o.databaseUrl, FORFAIT_DATA_DIR: dataDir, FORFAIT_BOOTSTRAP_KEY: '', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const until = Date.now() + 120_000;
    for (;;) {
      const up = await fetch(`http://127.0.0.1:${port}/health`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (up) break;
      if (Date.now() > until) throw new Error('the second server did not start');
      await new Promise((r) => setTimeout(r, 200));
    }
    const url = `http://127.0.0.1:${port}/v1/authorize`;
    await o.warm(url);
    return await o.measure(url);
  } finally {
    child.kill('SIGTERM');
    await exited;
    await rm(dataDir, { recursive: true, force: true });
  }
}
