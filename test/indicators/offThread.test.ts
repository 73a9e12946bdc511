// Issue #24: an indicators request is run by a worker thread on a connection of
// its own, not by the thread (and the pool) that answer the PBX; the app's
// close ends that thread and its connection. Checked in PostgreSQL, not timed.
import pino from 'pino';
import { afterAll, describe, expect, it, inject } from 'vitest';
import { createApp } from '../../api/app.js';
import { defaultConfig } from '../../api/context.js';
import { connect } from '../../db/connection.js';
import { indicators } from '../../services/indicators/query.js';
import { call, testDb, unlimited } from '../support/app.js';
import { testIssuer } from '../support/issuer.js';
import { cdrTenant, cdrUser } from '../cdrs/helpers.js';
import { postCdrs, prng, randomCdrs } from './data.js';

// a pool named for this file: its indicator workers' connections are told apart from other files' apps
const NAME = 'forfait-offthread-test';
const pool = connect(inject('databaseUrl'), { max: 4, settings: { application_name: NAME } });
afterAll(() => pool.close());

/** The backends of the app's indicator workers: named after its pool's application_name. */
async function workerBackends(): Promise<number> {
  const [row] = await testDb().sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = ${`${NAME}-indicators`}`;
  return row!.n;
}

describe('indicators off the server’s thread (issue #24)', () => {
  it('are answered from a worker’s connection, the same figures as the service gives on this thread; closing the app ends it', async () => {
    const own = createApp({ ...pool, logger: pino({ level: 'silent' }), config: { ...defaultConfig, issuer: testIssuer, rateLimits: unlimited } });
    try {
      const t = await cdrTenant(own);
      const users = await Promise.all([0, 1].map(() => cdrUser(t.id, { balance: '1000', forfaitMinutes: 10 })));
      const cdrs = randomCdrs(prng(7), 200, users.map((u) => u.identifiant), { start: '2026-10-18T00:00:00', days: 10, zone: 'Europe/Paris' }, 'off');
      await postCdrs(own, t.adminKey, cdrs);
      const before = await workerBackends();
      const q = { from: '2026-10-18', to: '2026-10-28', granularity: 'hour' as const, top: 5 };
      const res = await call(own, 'GET', `/v1/indicators?${new URLSearchParams({ ...q, top: '5' })}`, { key: t.adminKey });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json');
      // the worker opened its connection for the request, and keeps it for the next
      expect(before).toBe(0);
      expect(await workerBackends()).toBe(1);
      const tenant = { id: t.id, timezone: 'Europe/Paris', currency: 'EUR', locale: 'fr' };
      const here = await indicators(testDb().sql, tenant, q);
      expect(res.json).toEqual(here);
      expect((res.json as { series: unknown[] }).series).toHaveLength(241); // ten days of hours, and the second 02:00 of 25 October
      expect((res.json as { outgoing: { calls: number } }).outgoing.calls + (res.json as { incoming: { calls: number } }).incoming.calls).toBeGreaterThan(0);
      await own.close();
      // the thread and its connection are gone (PostgreSQL sees the socket close shortly after)
      for (let i = 0; i < 200 && (await workerBackends()) > 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await workerBackends()).toBe(0);
    } finally {
      await own.close().catch(() => undefined);
    }
  });
});
