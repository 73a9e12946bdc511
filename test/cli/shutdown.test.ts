/**
 * Issue #24: "shutdown never leaves PostgreSQL behind". Wave 1 waited for every
 * request in flight before stopping; a client that keeps an upload open (or a
 * download unread) held the shutdown until its 30 s forced exit, which left
 * the embedded PostgreSQL running without its owner. Now requests get
 * FORFAIT_SHUTDOWN_GRACE_S to finish, then their connections are cut, and the
 * embedded PostgreSQL is stopped in every case: its postmaster and every
 * process of its group are gone when `forfait serve` has exited.
 */
import { existsSync } from 'node:fs';
import { createServer, request, type ClientRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { api, postmasterPid, spawnHealthy, spawnServer } from '../support/server.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Whether any process of the group (the embedded PostgreSQL runs in its own, led by the postmaster) is alive. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function started() {
  const dir = await mkdtemp(path.join(tmpdir(), 'forfait-shutdown-'));
  dirs.push(dir);
  const dataDir = path.join(dir, 'data');
  const { server, port } = await spawnHealthy(dataDir, { FORFAIT_SHUTDOWN_GRACE_S: '2' }, 90_000);
  const resellerKey = (await readFile(path.join(dataDir, 'bootstrap-key'), 'utf8')).trim();
  const tenant = await api(port, resellerKey, 'POST', '/v1/tenants', { name: 'Shutdown SA', productType: 'pro' });
  expect(tenant.status, tenant.text).toBe(201);
  return { dataDir, port, server, resellerKey, adminKey: tenant.json.adminKey as string, pg: await postmasterPid(dataDir) };
}

type Started = Awaited<ReturnType<typeof started>>;

/** An upload that starts and never ends: the request stays in flight until the server cuts it. */
function stalledUpload(port: number, key: string, method: string, p: string, first: string): { req: ClientRequest; closed: Promise<void> } {
  const req = request({
    host: '127.0.0.1',
    port,
    method,
    path: p,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'text/csv', 'transfer-encoding': 'chunked' },
  });
  const closed = new Promise<void>((resolve) => {
    req.on('error', () => resolve());
    req.on('close', () => resolve());
  });
  req.write(first);
  return { req, closed };
}

const cdrHeader = 'call_id,identifiant,caller,callee,direction,started_at,answered_at,duration_seconds,disposition,site,line\n';
const cdrLines = Array.from({ length: 2000 }, (_, i) => `stall-${i},,0612345678,0142000000,in,2026-11-20T10:00:00+01:00,,42,answered,Lyon,L1\n`).join('');

describe('forfait serve stops its PostgreSQL however its requests end (issue #24)', () => {
  it('a port already in use: the server says EADDRINUSE, exits non-zero, and stops the PostgreSQL it started', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'forfait-shutdown-'));
    dirs.push(dir);
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as AddressInfo).port;
    try {
      const server = spawnServer(path.join(dir, 'data'), port);
      const code = await server.exited;
      expect(code, server.output()).not.toBe(0);
      expect(server.output()).toContain('EADDRINUSE');
      // it got as far as starting its PostgreSQL (the key is printed after the migrations), and stopped it
      expect(server.output()).toContain('bootstrap reseller key');
      // PostgreSQL removes its pid file when it stops: a PostgreSQL left running keeps it
      expect(existsSync(path.join(dir, 'data', 'pg', 'postmaster.pid')), 'the embedded PostgreSQL was left running').toBe(false);
    } finally {
      taken.close();
    }
  }, 120_000);

  for (const [signal, what, start] of [
    ['SIGTERM', 'a CDR import that never ends', (s: Started) => stalledUpload(s.port, s.adminKey, 'POST', '/v1/cdrs/import?format=native', cdrHeader + cdrLines)],
    ['SIGINT', 'a tariff upload that never ends', (s: Started) => stalledUpload(s.port, s.resellerKey, 'PUT', '/v1/tariffs/stalled', 'prefix,destination,class,price_per_minute\n33,France,fixed,0.02\n')],
  ] as const) {
    it(`${signal} during ${what}: the request is cut after the grace, the server exits 0, no postgres process is left`, async () => {
      const s = await started();
      const upload = start(s);
      // the request is in flight: the server has answered nothing, the socket is open
      await new Promise((r) => setTimeout(r, 300));
      expect(groupAlive(s.pg)).toBe(true);
      s.server.child.kill(signal);
      const code = await s.server.exited;
      expect(code, s.server.output()).toBe(0);
      await upload.closed;
      expect(groupAlive(s.pg), `postgres processes of ${s.dataDir} still running`).toBe(false);
      await expect(stat(path.join(s.dataDir, 'pg', 'postmaster.pid'))).rejects.toThrow();
      expect(s.server.output()).toMatch(/cut|closing/i);
    }, 180_000);
  }
});
