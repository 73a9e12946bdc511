/**
 * Per-user history benchmark (issue 22): one user's month of calls read the way
 * `GET /v1/cdrs?userId=&from=&to=` (first page of 100) and `GET /v1/users/{id}/calls.csv`
 * read them, with 10,000,000 CDRs of the tenant in that month (October 2026,
 * 10,000 users: ~1,000 calls each) — over real HTTP, random users (seeded), p50/p95.
 *
 *   npm run bench -- history        (HISTORY_QUERIES=200 by default)
 *   CLUSTERED=1 npm run bench -- history   (October rewritten in user order first, as the cdr-cluster
 *                                           job does to a closed month; the data set stays so)
 *
 * The data set is built once into var/bench-history/ (benchmarks/data/history.ts)
 * and reused. Anchor: the same user's month by a bare indexed SELECT on one
 * connection (what the index alone costs), same run.
 * Last line: BENCH history value=<p95 ms of the list> unit=ms anchor=<p95 ms of the SELECT> ratio
 */
import { serve } from '@hono/node-server';
import type { Server } from 'node:http';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { createApp } from '../api/app.js';
import { defaultConfig } from '../api/context.js';
import { freePort } from '../db/embedded.js';
import { clusterOnUsers, userIndexes } from '../db/repositories/cdrPartitions.js';
import { random } from '../test/fixtures/random.js';
import { openHistoryData } from './data/history.js';
import { benchLine } from './support.js';

const QUERIES = Number(process.env.HISTORY_QUERIES ?? 200);

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export async function main(): Promise<void> {
  const data = await openHistoryData(10_000_000);
  try {
    const { db, sql, tenantId, key, userIds } = data;
    const october = (await userIndexes(db)).find((i) => i.partition === 'cdrs_y2026m10');
    if (process.env.CLUSTERED === '1' && october && !october.clustered) {
      const t0 = performance.now();
      await clusterOnUsers(db, october.partition, october.index);
      process.stdout.write(`CLUSTER ${october.partition}: ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
    }
    process.stdout.write(`October ${process.env.CLUSTERED === '1' || october?.clustered ? 'in user order (clustered)' : 'in time order'}\n`);
    const rnd = random(5);
    const pick = () => userIds[Math.floor(rnd() * userIds.length)]!;
    const from = '2026-10-01T00:00:00Z';
    const to = '2026-11-01T00:00:00Z';
    const [{ n }] = (await sql`SELECT count(*)::int AS n FROM cdrs WHERE tenant_id = ${tenantId} AND started_at >= ${from} AND started_at < ${to}`) as unknown as [{ n: number }];
    process.stdout.write(`the tenant's month: ${n} CDRs, ${userIds.length} users\n`);

    // anchor: the index alone
    const bare: number[] = [];
    for (let i = 0; i < QUERIES; i++) {
      const u = pick();
      const t0 = performance.now();
      await sql`SELECT * FROM cdrs WHERE tenant_id = ${tenantId} AND user_id = ${u} AND started_at >= ${from} AND started_at < ${to} ORDER BY started_at`;
      bare.push(performance.now() - t0);
    }

    const { app } = createApp({ db, sql, logger: pino({ level: 'warn' }), config: defaultConfig });
    const port = await freePort();
    const server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, () => resolve(s as Server));
    });
    const list: number[] = [];
    const csv: number[] = [];
    let rows = 0;
    try {
      for (let i = 0; i < QUERIES; i++) {
        const u = pick();
        let t0 = performance.now();
        const r1 = await fetch(`http://127.0.0.1:${port}/v1/cdrs?userId=${u}&from=${from}&to=${to}`, { headers: { authorization: `Bearer ${key}` } });
        const page = (await r1.json()) as { items: unknown[] };
        list.push(performance.now() - t0);
        if (r1.status !== 200 || page.items.length === 0) throw new Error(`list: ${r1.status}`);
        t0 = performance.now();
        const r2 = await fetch(`http://127.0.0.1:${port}/v1/users/${u}/calls.csv?from=${from}&to=${to}`, { headers: { authorization: `Bearer ${key}` } });
        const text = await r2.text();
        csv.push(performance.now() - t0);
        if (r2.status !== 200) throw new Error(`calls.csv: ${r2.status} ${text.slice(0, 200)}`);
        rows += text.split('\n').length - 2;
      }
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    const fmt = (v: number[]) => `p50 ${percentile(v, 50).toFixed(1)} ms, p95 ${percentile(v, 95).toFixed(1)} ms, max ${Math.max(...v).toFixed(1)} ms`;
    process.stdout.write(`SELECT (index only, one connection): ${fmt(bare)}\n`);
    process.stdout.write(`GET /v1/cdrs?userId= (first page of 100): ${fmt(list)}\n`);
    process.stdout.write(`GET /v1/users/{id}/calls.csv (${Math.round(rows / QUERIES)} rows a user on average): ${fmt(csv)}\n`);
    process.stdout.write(`${benchLine('history', Number(percentile(list, 95).toFixed(2)), 'ms', Number(percentile(bare, 95).toFixed(2)))}\n`);
    process.stdout.write(`BENCH history-csv value=${percentile(csv, 95).toFixed(2)} unit=ms\n`);
  } finally {
    await data.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
