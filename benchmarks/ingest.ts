/**
 * Ingest benchmark (issue 6): 1,000,000 native CDRs in one CSV file through
 * POST /v1/cdrs/import over real HTTP into a tenant of 10,000 users — parsing,
 * validation, rating, CDR rows, ledger entries and balances — against a raw
 * COPY of the same file into an unindexed table of the same database, in the
 * same run.
 *
 *   npm run bench -- ingest        (CDRS=200000 for a shorter run)
 *   BENCH_PROFILE=/tmp/ingest.cpuprofile npm run bench -- ingest   (where the server's thread spends the import)
 *   HISTORY=10000000 npm run bench -- ingest   (issue 22: the tenant already holds 10M, or 50M, CDRs
 *                                                of earlier months: benchmarks/data/history.ts, built once)
 *
 * Last line: BENCH ingest value=<rows/s> unit=rows/s anchor=<COPY rows/s> ratio=<value/anchor>
 * Exits non-zero if the result is not exact (a CDR missing or twice, a balance ≠ its ledger).
 */
import { serve } from '@hono/node-server';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { Server } from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { createApp } from '../api/app.js';
import { defaultConfig } from '../api/context.js';
import type { DbHandle } from '../db/connection.js';
import { freePort } from '../db/embedded.js';
import { insertKey } from '../services/access/access.js';
import { defaultReseller } from '../services/access/bootstrap.js';
import { putTariff } from '../services/tariffs/tariffs.js';
import { createTenant } from '../services/tenants/tenants.js';
import { SYNTHETIC_TARIFF, writeSyntheticCdrs } from '../test/fixtures/cdrs/generate.js';
import { openHistoryData } from './data/history.js';
import { benchLine, cpuSeconds, freshDatabase, postmasterPid, profiled } from './support.js';

const ROWS = Number(process.env.CDRS ?? 1_000_000);
const HISTORY = Number(process.env.HISTORY ?? 0);
/** WITHOUT_USER_INDEX=1: cdrs_user_idx dropped first, to measure what the per-user index costs an import (issue 22). */
const WITHOUT_USER_INDEX = process.env.WITHOUT_USER_INDEX === '1';
/** BENCH_PROFILE=<file.cpuprofile>: the import under V8's profiler (node:inspector), its summary printed; the figure is then not a measurement. */
const PROFILE = process.env.BENCH_PROFILE;
const USERS = 10_000;

/** The bench's database and tenant: fresh and empty, or the history data set (its November emptied from a previous run). */
async function setup(): Promise<{ db: DbHandle & { dataDir: string }; tenantId: string; key: string; ledgerFrom: string }> {
  if (HISTORY > 0) {
    const data = await openHistoryData(HISTORY);
    // the file's CDRs from a previous run: November, and its first hour (still October in UTC)
    await data.sql`DROP TABLE IF EXISTS cdrs_y2026m11`;
    await data.sql`DELETE FROM cdrs WHERE tenant_id = ${data.tenantId} AND started_at >= '2026-10-31T23:00:00Z' AND call_id LIKE 'bench-%'`;
    await data.sql`DELETE FROM cdr_boundary_keys WHERE tenant_id = ${data.tenantId} AND call_id LIKE 'bench-%'`;
    await data.sql`UPDATE users SET used_seconds = 0, forfait_period = NULL WHERE tenant_id = ${data.tenantId}`;
    const [h] = await data.sql<{ n: string; last: string }[]>`
      SELECT (SELECT count(*) FROM cdrs WHERE tenant_id = ${data.tenantId})::text AS n, (SELECT COALESCE(max(id), 0) FROM ledger_entries)::text AS last`;
    process.stdout.write(`history: the tenant holds ${h!.n} CDRs (earlier months)\n`);
    const dataDir = await mkdtemp(path.join(tmpdir(), 'forfait-bench-file-'));
    await data.sql`VACUUM ANALYZE users`;
    return { db: { ...data, dataDir, close: async () => { await data.close(); await rm(dataDir, { recursive: true, force: true }); } }, tenantId: data.tenantId, key: data.pbxKey, ledgerFrom: h!.last };
  }
  const db = await freshDatabase();
  // tenant, tariff, 10,000 users with 120 forfait minutes and 50.00 each (given through the ledger)
  const resellerId = await defaultReseller(db.db);
  await putTariff(db.db, resellerId, 'bench', SYNTHETIC_TARIFF);
  const { tenant } = await createTenant(db.db, resellerId, { name: 'Bench SA', productType: 'entreprise', tariffId: 'bench', country: 'FR' }, 'bench');
  await db.sql`
    INSERT INTO users (tenant_id, full_name, matricule, identifiant, forfait_minutes, balance)
    SELECT ${tenant.id}, 'User ' || g, lpad(g::text, 14, '0'), (2000000 + g)::text, 120, 50
      FROM generate_series(0, ${USERS - 1}) g`;
  await db.sql`
    INSERT INTO ledger_entries (tenant_id, user_id, kind, amount, balance_after, reason)
    SELECT tenant_id, id, 'topup', 50, 50, 'bench' FROM users WHERE tenant_id = ${tenant.id}`;
  const { key } = await insertKey(db.db, { principal: 'pbx', name: 'bench', tenantId: tenant.id });
  if (WITHOUT_USER_INDEX) await db.sql`DROP INDEX cdrs_user_idx`;
  await db.sql`VACUUM ANALYZE`;
  return { db, tenantId: tenant.id, key, ledgerFrom: '0' };
}

export async function main(): Promise<void> {
  const { db, tenantId, key, ledgerFrom } = await setup();
  const tenant = { id: tenantId };
  const file = path.join(db.dataDir, 'cdrs.csv');
  try {
    const identifiants = Array.from({ length: USERS }, (_, i) => String(2_000_000 + i));
    await writeSyntheticCdrs(file, ROWS, identifiants, { seed: 7, prefix: 'bench' });
    const bytes = (await stat(file)).size;
    process.stdout.write(`file: ${ROWS} CDRs, ${(bytes / 1e6).toFixed(1)} MB\n`);

    // anchor: the same file, raw COPY into an unindexed table with the same column types
    await db.sql`CREATE TABLE copy_anchor (call_id text, identifiant text, caller text, callee text, direction text,
      started_at timestamptz, answered_at timestamptz, duration_seconds integer, disposition text, site text, line text)`;
    const copyStarted = performance.now();
    const copy = await db.sql`COPY copy_anchor FROM STDIN WITH (FORMAT csv, HEADER true)`.writable();
    await pipeline(createReadStream(file), copy);
    const copySeconds = (performance.now() - copyStarted) / 1000;
    const anchor = ROWS / copySeconds;
    process.stdout.write(`anchor: raw COPY ${copySeconds.toFixed(2)} s, ${Math.round(anchor)} rows/s\n`);
    await db.sql`DROP TABLE copy_anchor`;
    await db.sql`CHECKPOINT`;

    // the real thing, over HTTP
    const { app } = createApp({ db: db.db, sql: db.sql, logger: pino({ level: 'warn' }), config: defaultConfig });
    const port = await freePort();
    const server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, () => resolve(s as Server));
    });
    const postmaster = await postmasterPid(db.sql);
    const cpuBefore = cpuSeconds(postmaster);
    const started = performance.now();
    const post = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/v1/cdrs/import?format=native`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'text/csv', 'content-length': String(bytes) },
        body: Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>,
        duplex: 'half',
      } as RequestInit);
      return { res, answer: (await res.json()) as { accepted: number; duplicates: number; rejectedCount: number } };
    };
    const run = PROFILE ? await profiled(post, { file: PROFILE }) : { result: await post(), report: '' };
    const { res, answer } = run.result;
    const where = run.report;
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = cpuSeconds(postmaster);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (res.status !== 200) throw new Error(`import failed: ${res.status} ${JSON.stringify(answer)}`);
    const value = ROWS / seconds;
    process.stdout.write(`import: ${seconds.toFixed(2)} s, ${JSON.stringify(answer)}\n`);
    if (PROFILE) process.stdout.write(`the import under the profiler (${PROFILE}; its figures are not a measurement):\n${where}\n`);
    // where the import's CPU went (the machine has 2 cores: which side bounds it)
    const perCdr = (k: 'node' | 'loop' | 'pg') => (((cpuAfter[k] - cpuBefore[k]) * 1e6) / ROWS).toFixed(1);
    process.stdout.write(
      `CPU per CDR: server ${perCdr('node')} µs (main thread ${perCdr('loop')}, busy ${(((cpuAfter.loop - cpuBefore.loop) / seconds) * 100).toFixed(0)} % of the import), PostgreSQL ${perCdr('pg')} µs\n`,
    );

    // exact, or no figure
    const [check] = await db.sql<{ cdrs: string; calls: string; bad: string; ledger: string }[]>`
      SELECT (SELECT count(*) FROM cdrs WHERE tenant_id = ${tenant.id} AND started_at >= '2026-10-31T23:00:00Z' AND call_id LIKE 'bench-%')::text AS cdrs,
             (SELECT count(*) FROM ledger_entries WHERE tenant_id = ${tenant.id} AND kind = 'call' AND id > ${ledgerFrom}::bigint)::text AS calls,
             (SELECT count(*) FROM users u WHERE tenant_id = ${tenant.id}
                AND balance <> (SELECT sum(amount) FROM ledger_entries l WHERE l.tenant_id = u.tenant_id AND l.user_id = u.id))::text AS bad,
             (SELECT count(*) FROM cdrs WHERE tenant_id = ${tenant.id} AND cost > 0 AND started_at >= '2026-10-31T23:00:00Z' AND call_id LIKE 'bench-%')::text AS ledger`;
    process.stdout.write(`check: ${check!.cdrs} CDRs, ${check!.calls} call entries (${check!.ledger} CDRs with a cost), ${check!.bad} balances off their ledger\n`);
    if (answer.accepted !== ROWS || Number(check!.cdrs) !== ROWS || check!.calls !== check!.ledger || check!.bad !== '0') {
      throw new Error('the ingestion is not exact');
    }
    process.stdout.write(benchLine(HISTORY > 0 ? `ingest-history-${HISTORY}` : 'ingest', Math.round(value), 'rows/s', Math.round(anchor)) + '\n');
  } finally {
    await db.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
