import pino from 'pino';
import postgres from 'postgres';
import { afterAll, describe, expect, inject, it, vi } from 'vitest';
import { createApp } from '../../api/app.js';
import { defaultConfig } from '../../api/context.js';
import { kyselyOn } from '../../db/connection.js';
import { call } from '../support/app.js';
import { newTenant } from '../support/factory.js';
import { newUser } from '../support/accounts.js';
import { expectPoolWhole } from '../support/pool.js';

const POOL = 2;
const NAME = `forfait-listen-${process.pid}`;
/** A pool of its own, named, so its LISTEN connection can be found and killed. */
const sql = postgres(inject('databaseUrl'), { max: POOL, onnotice: () => undefined, connection: { application_name: NAME } });
const app = createApp({ db: kyselyOn(sql), sql, logger: pino({ level: 'silent' }), config: defaultConfig });
afterAll(async () => {
  await app.close();
  await sql.end({ timeout: 1 });
});

describe('the account book’s LISTEN connection fails (issue #24.1)', () => {
  it('changes through the API still answer, the pool stays whole, and LISTEN comes back', async () => {
    const t = await newTenant(app);
    const u = await newUser(t.id, { balance: '1' }, app);
    // the book of the tenant is loaded: the API's writes now wait for its barrier
    expect((await call(app, 'POST', '/v1/authorize', { key: t.adminKey, json: { identifiant: u.identifiant, callee: '0142000000' } })).status).toBe(200);
    const killed = await sql<{ ok: boolean }[]>`
      SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = ${NAME} AND query ILIKE 'listen%'`;
    expect(killed.length).toBe(1);
    const topup = await call(app, 'POST', `/v1/users/${u.id}/ledger`, { key: t.adminKey, json: { kind: 'topup', amount: '2', idempotencyKey: 'after-kill' } });
    expect(topup.status, topup.text).toBe(201);
    expect(topup.json.balance).toBe('3.0000');
    await expectPoolWhole(sql, POOL);
    // postgres.js listens again on a new connection: a barrier is answered by NOTIFY again, well before its 2 s fallback
    await vi.waitFor(
      async () => {
        const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = ${NAME} AND query ILIKE 'listen%'`;
        expect(row!.n).toBe(1);
      },
      { timeout: 10_000, interval: 200 },
    );
    const started = performance.now();
    await app.authorization.book.barrier();
    expect(performance.now() - started).toBeLessThan(1500);
  });
});
