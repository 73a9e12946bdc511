import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../db/embedded.js';
import { api, healthy, spawnServer } from '../support/server.js';

/**
 * The README's promise, as a user lives it: `forfait serve` on a fresh data
 * folder starts an embedded PostgreSQL, prints and stores the bootstrap key,
 * stops with exit code 0 on Ctrl-C (SIGINT) and keeps the data for the next
 * start, where the jobs run (here: a CDR file dropped in the spool folder).
 */
let dataDir: string;

afterAll(async () => {
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('forfait serve', () => {
  it('starts on a fresh folder, writes the bootstrap key, exits 0 on SIGINT and keeps data', async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'forfait-serve-'));
    const port = await freePort();
    const first = spawnServer(dataDir, port, { LOG_LEVEL: 'info' });
    await healthy(port, 60_000).catch((err: unknown) => {
      throw new Error(`${String(err)}\n--- server output ---\n${first.output()}`);
    });
    const keyFile = path.join(dataDir, 'bootstrap-key');
    const key = (await readFile(keyFile, 'utf8')).trim();
    expect(key).toMatch(/^ffk_[0-9a-f]{16}_/);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    expect(first.output()).toContain(key);
    // the portal's first person: printed once too, with the address to open, and kept 0600 beside the key
    const printed = /Forfait portal sign-in[^\n]*\n\s+open:\s+(\S+)\n\s+email:\s+(\S+)\n\s+password:\s+(\S+)\n/.exec(first.output());
    expect(printed, first.output()).not.toBeNull();
    const [, open, email, password] = printed!;
    expect(open).toBe(`http://127.0.0.1:${port}/portal`);
    const credentials = (await readFile(path.join(dataDir, 'bootstrap-credentials'), 'utf8')).trim().split('\n');
    expect(credentials).toEqual([email, password]);
    expect(email).toBe('admin@forfait.local');
    expect((await stat(path.join(dataDir, 'bootstrap-credentials'))).mode & 0o777).toBe(0o600);
    // the new user follows only what was printed: the address leads to the sign-in form…
    const opened = await fetch(open!, { redirect: 'manual' });
    expect(opened.status).toBe(302);
    const form = await fetch(new URL(opened.headers.get('location')!, open).href, { redirect: 'manual' }).then((r) => r.text());
    expect(form).toContain('name="email"');
    expect(form).toContain('name="password"');
    // …and the printed email and password sign in to the built server (npm start), which opens on the reseller's tenants
    const signIn = await fetch(`http://127.0.0.1:${port}/portal/signin`, {
      method: 'POST',
      redirect: 'manual',
      headers: { origin: `http://127.0.0.1:${port}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ email: email!, password: password! }).toString(),
    });
    expect(signIn.status).toBe(303);
    const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
    const home = await fetch(`http://127.0.0.1:${port}/portal`, { redirect: 'manual', headers: { cookie } });
    expect(home.headers.get('location')).toBe('/portal/tenants');
    const css = await fetch(`http://127.0.0.1:${port}/portal/assets/portal.css`, { headers: { cookie } });
    expect(css.status).toBe(200);

    const created = await api(port, key, 'POST', '/v1/tenants', { name: 'Persisted SA', productType: 'pro' });
    expect(created.status).toBe(201);
    first.child.kill('SIGINT');
    expect(await first.exited).toBe(0);

    // a PBX drops a CDR file while the server is down; the next start rates it
    const spool = path.join(dataDir, 'spool', 'cdr', created.json.tenant.id);
    await mkdir(spool, { recursive: true });
    const file = path.join(spool, 'calls.csv');
    await writeFile(
      file,
      'call_id,identifiant,caller,callee,direction,started_at,answered_at,duration_seconds,disposition,site,line\n' +
        'spooled-1,,0612345678,0142000000,in,2026-11-20T10:00:00+01:00,2026-11-20T10:00:02+01:00,42,answered,Lyon,L1\n',
    );
    const past = new Date(Date.now() - 60_000);
    await utimes(file, past, past);

    // a new port: the first one may have been handed to another test's server meanwhile
    const port2 = await freePort();
    const second = spawnServer(dataDir, port2);
    await healthy(port2, 60_000).catch((err: unknown) => {
      throw new Error(`${String(err)}\n--- server output ---\n${second.output()}`);
    });
    expect(second.output()).not.toContain(key); // shown once only
    expect(second.output()).not.toContain(credentials[1]);
    const list = await api(port2, key, 'GET', '/v1/tenants');
    expect(list.json.items.map((t: { name: string }) => t.name)).toContain('Persisted SA');
    let done: string[] = [];
    for (let i = 0; i < 100 && !done.some((f) => f.endsWith('calls.csv')); i++) {
      await new Promise((r) => setTimeout(r, 200));
      done = await readdir(path.join(spool, 'done')).catch(() => []);
    }
    expect(done.some((f) => f.endsWith('calls.csv'))).toBe(true);
    const cdrs = await api(port2, created.json.adminKey, 'GET', '/v1/cdrs');
    expect(cdrs.json.items.map((c: { callId: string }) => c.callId)).toEqual(['spooled-1']);

    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    // the embedded server is gone with it: nothing holds the data folder
    await expect(stat(path.join(dataDir, 'pg', 'postmaster.pid'))).rejects.toThrow();
  }, 180_000);
});
