import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../db/embedded.js';
import { api, embeddedUrl, healthy, spawnServer, type ServerProcess } from '../support/server.js';

/**
 * The first authorization of a tenant after a server start must be answered
 * within a PBX's HTTP timeout (1 s, docs/pbx.md), whatever the tenant's size:
 * `forfait serve` loads the books of tenants with a PBX key as it starts. A
 * real server on its own embedded PostgreSQL, a tenant of 100,000 users; the
 * server is restarted and the first call is sent the moment /health answers.
 * The answers must be right; the times are printed, not asserted (the machine
 * is shared).
 */
const USERS = 100_000;
let dataDir: string;
let server: ServerProcess | undefined;

afterAll(async () => {
  if (server) {
    server.child.kill('SIGTERM');
    await server.exited;
  }
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function stop(s: ServerProcess): Promise<void> {
  s.child.kill('SIGTERM');
  expect(await s.exited).toBe(0);
}

/** Starts the server, and sends `first` the moment /health answers: that answer and its time from there. */
async function firstCallAfterStart(env: Record<string, string>, first: (port: number) => Promise<unknown>) {
  const port = await freePort();
  server = spawnServer(dataDir, port, env);
  await healthy(port, 120_000);
  const started = performance.now();
  const answer = await first(port);
  return { answer, ms: performance.now() - started };
}

describe('the first authorization after a start', () => {
  it('is answered rightly, at once, for a tenant of 100,000 users', { timeout: 300_000 }, async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'forfait-cold-'));
    const port = await freePort();
    server = spawnServer(dataDir, port);
    await healthy(port);
    const reseller = (await readFile(path.join(dataDir, 'bootstrap-key'), 'utf8')).trim();
    const csv = 'prefix,destination,class,price_per_minute,connection_fee,first_increment,next_increment,forfait_eligible\n336,France mobile,mobile,0.20,0.10,60,1,true\n';
    const put = await fetch(`http://127.0.0.1:${port}/v1/tariffs/cold`, { method: 'PUT', headers: { authorization: `Bearer ${reseller}`, 'content-type': 'text/csv' }, body: csv });
    expect(put.status).toBe(200);
    const tenant = await api(port, reseller, 'POST', '/v1/tenants', { name: 'Cold SA', productType: 'entreprise', tariffId: 'cold', maxCallSeconds: 600 });
    expect(tenant.status).toBe(201);
    const pbx = (await api(port, tenant.json.adminKey as string, 'POST', '/v1/keys', { name: 'pbx', principal: 'pbx' })).json.key as string;

    // 100,000 users in one statement: user i has identifiant i (7 digits) and may call +3361<i>;
    // even users have 1.00, odd ones nothing; their money comes through the ledger as any top-up's
    const sql = postgres(await embeddedUrl(dataDir), { max: 1, onnotice: () => undefined });
    try {
      const tenantId = tenant.json.tenant.id as string;
      await sql.begin(async (trx) => {
        await trx`
          insert into users (tenant_id, full_name, matricule, identifiant, forfait_minutes, balance, authorized_numbers)
          select ${tenantId}::uuid, 'User ' || i, lpad(i::text, 14, '0'), lpad(i::text, 7, '0'), 0,
                 case when i % 2 = 0 then 1 else 0 end,
                 array['+3361' || lpad(i::text, 7, '0'), null, null, null, null, null, null, null, null, null]
          from generate_series(1, ${USERS}) i`;
        await trx`
          insert into ledger_entries (tenant_id, user_id, kind, amount, balance_after, reason, idempotency_key)
          select tenant_id, id, 'topup', balance, balance, 'seed', 'seed' from users where tenant_id = ${tenantId}::uuid and balance > 0`;
      });
      const [count] = await sql<{ n: number }[]>`select count(*)::int as n from users where tenant_id = ${tenantId}::uuid`;
      expect(count?.n).toBe(USERS);
    } finally {
      await sql.end();
    }
    await stop(server);

    const authorize = (p: number, identifiant: string, callee: string) => api(p, pbx, 'POST', '/v1/authorize', { identifiant, callee });
    // user 54,322 has 1.00: at 0.20 a minute after 0.10 of connection, 4 minutes and 30 seconds
    const allowed = { decision: 'allow', maxSeconds: 270, callee: '+33610054322', destination: 'France mobile', pricePerMinute: '0.2000' };

    // a start as deployed: the books load as the server starts
    const preloaded = await firstCallAfterStart({}, (p) => authorize(p, '0054322', '0610054322'));
    expect(preloaded.answer).toMatchObject({ status: 200, json: allowed });
    // the book is the whole tenant's: the last user, one with no money, one dialling a number it may not call
    const p = server!.port;
    expect((await authorize(p, '0100000', '0610100000')).json).toMatchObject({ decision: 'allow', callee: '+33610100000' });
    expect((await authorize(p, '0054321', '0610054321')).json).toMatchObject({ decision: 'deny', reason: 'INSUFFICIENT_BALANCE' });
    expect((await authorize(p, '0054324', '0610054322')).json).toMatchObject({ decision: 'deny', reason: 'NUMBER_NOT_AUTHORIZED' });
    await stop(server!);

    // without preloading, the first call waits for its tenant's book (the same answer, later)
    const lazy = await firstCallAfterStart({ FORFAIT_PRELOAD_BOOKS: '0' }, (q) => authorize(q, '0054326', '0610054326'));
    expect(lazy.answer).toMatchObject({ status: 200, json: { ...allowed, callee: '+33610054326' } });
    await stop(server!);
    server = undefined;

    process.stdout.write(
      `first authorization after a start, tenant of ${USERS} users: ${preloaded.ms.toFixed(0)} ms with the books preloaded, ` +
        `${lazy.ms.toFixed(0)} ms loading its book on that call (PBX timeout: 1000 ms)\n`,
    );
  });
});
