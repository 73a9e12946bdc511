/**
 * `npm run bench -- isolation` (issue #24): does reporting stall the PBX?
 *
 * One server (the product's app, one process, its embedded PostgreSQL) and one
 * tenant: 2,000 users, 150,000 CDRs from October 2025 to October 2026 with
 * their rollups, and its October 2026 invoice (a 1,000-user annex). The PBX's
 * load is paced, as a PBX sends it: wrk with 32 connections that each wait
 * 10 ms between an answer and the next `POST /v1/authorize` (~3,000 calls/s,
 * far below what the server can take), so the p99 shows how long an answer
 * waits rather than how the cores are shared at saturation.
 *
 *   1. alone: the paced load only (the anchor);
 *   2. with reports: the same load while, for as long, wrk loops 4 worst-case
 *      `GET /v1/indicators` (the largest accepted: 10,000 hourly points,
 *      top=100) on 4 connections and the invoice's PDF on 1 (another wrk process,
 *      so no client code runs on the server's thread).
 *
 * Both are measured in the same run, twice in turn, the best p99 of each kept
 * (as benchmarks/authorize.ts keeps the best of 2); the longest event-loop delay of each phase
 * and the share of time its thread was busy are printed beside them.
 * BENCH_SECONDS sets each phase's length (default 10); REPORTS_ALONE=1 also
 * runs the reports without the PBX's load (what they cost the server's thread);
 * BENCH_THREADS=1 prints, for each phase, the CPU of every thread on the machine
 * (server threads with their nice value, PostgreSQL backends by application
 * name, the kernel's workers): who the PBX's thread shares the cores with.
 *
 * Last line: BENCH isolation value=<p99 with reports, ms> unit=ms anchor=<p99 alone, ms> ratio=<value/anchor>
 * (lower is better; the issue's target is a ratio of 2 at most).
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver, performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { DateTime } from 'luxon';
import pino from 'pino';
import type postgres from 'postgres';
import { createApp } from '../api/app.js';
import { defaultConfig } from '../api/context.js';
import type { Db } from '../db/connection.js';
import { closeRenderPool } from '../reports/renderPool.js';
import { insertKey } from '../services/access/access.js';
import { defaultReseller } from '../services/access/bootstrap.js';
import { addCdrRangeToRollups } from '../services/indicators/rollups.js';
import { testIssuer } from '../test/support/issuer.js';
import { runInvoices } from '../services/invoices/run.js';
import { putTariff } from '../services/tariffs/tariffs.js';
import { createTenant } from '../services/tenants/tenants.js';
import { benchLine, freshDatabase, procTimes, profiled, readStat } from './support.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const PBX_CONNECTIONS = 32;
const PACE_MS = 10;
const USERS = 2000;
const CDRS = 150_000;
const ZONE = 'Europe/Paris';
/** BENCH_PROFILE=<file.cpuprofile>: before the measured rounds, the reports alone under V8's profiler (node:inspector), its summary printed. */
const PROFILE = process.env.BENCH_PROFILE;
const execFileAsync = promisify(execFile);
const log = (s: string) => process.stdout.write(`${s}\n`);

interface LoadResult {
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  max: number;
  errors: number;
}

/** "1.23ms" / "850.00us" / "2.01s" → ms. */
function millis(text: string | undefined): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text ?? '');
  if (!m) return NaN;
  return Number(m[1]) * { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2] as 'us' | 'ms' | 's' | 'm'];
}

/** One wrk process for `seconds` (its own process: the server's thread runs no client code). */
async function load(url: string, connections: number, seconds: number, script: string, timeout = '2s'): Promise<LoadResult> {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, `--timeout`, timeout, '--latency', '-s', script, url];
  const { stdout } = await execFileAsync('wrk', args, { encoding: 'utf8' });
  const field = (re: RegExp) => re.exec(stdout)?.[1];
  const errors = /Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout);
  const timeouts = /timeout (\d+)/.exec(stdout);
  return {
    requests: Number(field(/(\d+) requests in/) ?? 0),
    rps: Number(field(/Requests\/sec:\s+([\d.]+)/) ?? 0),
    p50: millis(field(/\s50%\s+(\S+)/)),
    p99: millis(field(/\s99%\s+(\S+)/)),
    max: millis(field(/Latency(?:\s+\S+){2}\s+(\S+)/)),
    errors: Number(errors?.[1] ?? 0) + Number(timeouts?.[1] ?? 0),
  };
}

/** The wrk scripts written by this run, removed at its end. */
const scripts: string[] = [];

/** A wrk script: fixed method, headers and bodies (round robin), and a pause before each request. */
function wrkScript(name: string, o: { method: string; key: string; bodies?: string[]; pauseMs?: number }): string {
  const file = path.join(tmpdir(), `forfait-isolation-${name}-${process.pid}.lua`);
  scripts.push(file);
  const bodies = o.bodies ?? [];
  writeFileSync(
    file,
    [
      `wrk.method = "${o.method}"`,
      `wrk.headers["Authorization"] = "Bearer ${o.key}"`,
      bodies.length ? 'wrk.headers["Content-Type"] = "application/json"' : '',
      `local bodies = {${bodies.map((b) => `[[${b}]]`).join(',')}}`,
      'local n = #bodies',
      'local i = 0',
      'request = function()',
      '  if n == 0 then return wrk.format() end',
      '  i = i % n + 1',
      '  return wrk.format(nil, nil, nil, bodies[i])',
      'end',
      o.pauseMs ? `delay = function() return ${o.pauseMs} end` : '',
    ].join('\n'),
  );
  return file;
}

/** CPU seconds (user + system) used so far by this process's main thread, the event loop that answers the PBX (its tid is the pid). */
function mainThreadCpu(): number {
  return procTimes(process.pid, `/proc/${process.pid}/task/${process.pid}/stat`).own;
}

interface Loop {
  /** CPU seconds the server's main thread used meanwhile (load-insensitive, unlike the delays). */
  cpu: number;
  /** Longest delay of a timer, ms. */
  delay: number;
  /** Share of the time the server's thread was running code, not waiting. */
  busy: number;
  /** Longest garbage collection of the server's heap, ms. */
  gc: number;
}

/** CPU ticks of every thread on the machine, by "pid/tid name nice=N" (from /proc; threads that ended are gone). */
function threadTicks(): Map<string, number> {
  const ticks = new Map<string, number>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // ended meanwhile
    }
    for (const tid of tids) {
      const stat = readStat(`/proc/${pid}/task/${tid}/stat`); // undefined: ended meanwhile
      if (stat) ticks.set(`${pid}/${tid} ${stat.name} nice=${stat.fields[16]}`, stat.fields[11]! + stat.fields[12]!);
    }
  }
  return ticks;
}

/** BENCH_THREADS=1: the threads that used the cores during a phase, busiest first, PostgreSQL backends named. */
async function printThreads(before: Map<string, number>, seconds: number, sql: postgres.Sql): Promise<void> {
  const after = threadTicks();
  const backends = new Map(
    (await sql<{ pid: number; name: string }[]>`SELECT pid, application_name || ' ' || backend_type AS name FROM pg_stat_activity`).map((r) => [r.pid, r.name]),
  );
  const shares = [...after].map(([k, v]) => [k, (v - (before.get(k) ?? 0)) / 100 / seconds] as const).filter(([, v]) => v >= 0.01);
  shares.sort((a, b) => b[1] - a[1]);
  log(`   threads, share of a core (${shares.reduce((sum, [, v]) => sum + v, 0).toFixed(2)} cores in all):`);
  for (const [k, v] of shares.slice(0, 16)) log(`     ${(v * 100).toFixed(1).padStart(5)} %  ${k} ${backends.get(Number(k.split('/')[0])) ?? ''}`);
}

/** Runs `f` and tells how the server's event loop fared meanwhile. */
async function watchLoop<T>(f: () => Promise<T>, sql?: postgres.Sql): Promise<[T, Loop]> {
  const h = monitorEventLoopDelay({ resolution: 5 });
  const before = performance.eventLoopUtilization();
  const cpu = mainThreadCpu();
  let gc = 0;
  const gcs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gc = Math.max(gc, e.duration);
  });
  gcs.observe({ entryTypes: ['gc'] });
  const threads = process.env.BENCH_THREADS && sql ? { ticks: threadTicks(), at: performance.now() } : undefined;
  h.enable();
  const result = await f();
  h.disable();
  gcs.disconnect();
  if (threads && sql) await printThreads(threads.ticks, (performance.now() - threads.at) / 1000, sql);
  return [result, { cpu: mainThreadCpu() - cpu, delay: h.max / 1e6, busy: performance.eventLoopUtilization(before).utilization, gc }];
}

/** The tenant, its users, a year of CDRs with their rollups, and its October 2026 invoice. */
export async function provision(db: Db, sql: postgres.Sql): Promise<{ tenantId: string; invoiceId: string }> {
  const resellerId = await defaultReseller(db);
  const tariff = ['prefix,destination,class,price_per_minute,connection_fee,first_increment,next_increment,forfait_eligible', '331,France fixe,fixed,0.02,0,60,60,true', '336,France mobile,mobile,0.20,0.10,60,1,true'];
  await putTariff(db, resellerId, 'isolation', tariff.join('\n'));
  const { tenant } = await createTenant(db, resellerId, { name: 'Isolation SA', productType: 'entreprise', tariffId: 'isolation', country: 'FR', timezone: ZONE }, 'bench');
  await sql`
    INSERT INTO users (tenant_id, full_name, matricule, identifiant, forfait_minutes, balance, authorized_numbers)
    SELECT ${tenant.id}, 'Utilisateur ' || u, lpad(u::text, 14, '0'), (3000000 + u)::text, 120, 500,
           ARRAY['+3361' || lpad(u::text, 7, '0'), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL]
      FROM generate_series(1, ${USERS}) u`;
  await sql`UPDATE user_status_events SET at = '2025-09-01T00:00:00Z' WHERE tenant_id = ${tenant.id}`;
  // the monthly partitions these rows go to (migration 0050), as the batch writer would make them
  await sql`SELECT cdrs_ensure_month(m) FROM generate_series(timestamptz '2025-09-15Z', timestamptz '2026-12-15Z', interval '1 month') m`;
  const [range] = await sql.begin(async (tx) => {
    await tx`SET LOCAL session_replication_role = replica`;
    return tx<{ min: string; max: string }[]>`
      WITH ins AS (
        INSERT INTO cdrs (tenant_id, call_id, user_id, identifiant, caller, callee, direction, started_at, answered_at, duration_seconds,
                          disposition, site, line, destination, class, billable_seconds, forfait_seconds, charged_seconds, cost)
        SELECT ${tenant.id}, 'iso-' || g, u.id, u.identifiant, '+3314' || lpad((g % 300)::text, 7, '0'),
               CASE WHEN out THEN '+3361' || lpad((g % 9000)::text, 7, '0') ELSE '+33140000000' END,
               CASE WHEN out THEN 'out' ELSE 'in' END, at, CASE WHEN ok THEN at + interval '4 seconds' END, CASE WHEN ok THEN dur ELSE 0 END,
               CASE WHEN ok THEN 'answered' ELSE 'no_answer' END, 'Site ' || (g % 12), 'L' || lpad((g % 700)::text, 4, '0'),
               CASE WHEN out THEN (ARRAY['France fixe', 'France mobile'])[g % 2 + 1] END, CASE WHEN out THEN (ARRAY['fixed', 'mobile'])[g % 2 + 1] END,
               CASE WHEN out AND ok THEN dur ELSE 0 END, 0, CASE WHEN out AND ok THEN dur ELSE 0 END,
               CASE WHEN out AND ok THEN round(dur * 0.0033, 4) ELSE 0 END
          FROM (SELECT g, g % 10 < 7 AS out, g % 10 <> 3 AS ok, (g * 37) % 600 + 5 AS dur,
                       timestamptz '2025-10-01T00:00:00+02:00' + (g::bigint * 34_128_000 / ${CDRS}) * interval '1 second' AS at
                  FROM generate_series(1, ${CDRS}) g) c
          JOIN users u ON u.tenant_id = ${tenant.id} AND u.matricule = lpad((c.g % ${USERS} + 1)::text, 14, '0')
        RETURNING id)
      SELECT min(id)::text AS min, max(id)::text AS max FROM ins`;
  });
  await sql.begin((tx) => addCdrRangeToRollups(tx, tenant.id, BigInt(range!.min), BigInt(range!.max) + 1n));
  const run = await runInvoices(db, { tenantId: tenant.id }, '2026-10', { issuer: testIssuer, now: new Date('2026-11-01T06:00:00Z') });
  const invoiceId = run.created[0];
  if (invoiceId === undefined) throw new Error(`no invoice: ${JSON.stringify(run.skipped)}`);
  await sql`VACUUM ANALYZE`;
  return { tenantId: tenant.id, invoiceId };

}

export async function main(): Promise<void> {
  if (spawnSync('wrk', ['--version']).error !== undefined) {
    log('installing wrk (Debian package)…');
    execFileSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk'], { stdio: 'inherit' });
  }
  const database = await freshDatabase();
  const { db, sql } = database;
  const app = createApp({ db, sql, logger: pino({ level: 'warn' }), config: defaultConfig });
  const server = serve({ fetch: app.app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const { tenantId, invoiceId } = await provision(db, sql);
    const pbx = await insertKey(db, { principal: 'pbx', name: 'pbx', tenantId });
    const manager = await insertKey(db, { principal: 'user', name: 'manager', tenantId, roles: ['comptable'] });
    const from = DateTime.fromISO('2025-10-01', { zone: ZONE });
    const indicatorsUrl = `${base}/v1/indicators?from=2025-10-01&to=${encodeURIComponent(from.plus({ hours: 10_000 }).toISO()!)}&granularity=hour&top=100`;
    const pdfUrl = `${base}/v1/invoices/${invoiceId}.pdf`;
    const get = async (url: string) => {
      const res = await fetch(url, { headers: { authorization: `Bearer ${manager.key}` } });
      if (res.status !== 200) throw new Error(`${url}: ${res.status} ${await res.text()}`);
      return Buffer.from(await res.arrayBuffer());
    };
    const series = (JSON.parse((await get(indicatorsUrl)).toString()) as { series: unknown[] }).series.length;
    const pdf = await get(pdfUrl);
    log(`${USERS} users, ${CDRS.toLocaleString('en')} CDRs; indicators: ${series} hourly points; invoice PDF ${(pdf.length / 1024).toFixed(0)} KiB (${(pdf.toString('latin1').match(/\/Type \/Page\b/g) ?? []).length} pages)`);

    // ---- the PBX: authorized numbers mostly, some not, some unknown users
    const bodies: string[] = [];
    for (let k = 0; k < 4000; k++) {
      const u = 1 + ((k * 7919) % USERS);
      const callee = k % 10 === 9 ? '0698765432' : `061${String(u).padStart(7, '0')}`;
      bodies.push(JSON.stringify({ identifiant: k % 20 === 19 ? '9999999' : String(3_000_000 + u), callee }));
    }
    const authorize = wrkScript('authorize', { method: 'POST', key: pbx.key, bodies, pauseMs: PACE_MS });
    const report = wrkScript('report', { method: 'GET', key: manager.key });
    const pbxLoad = (seconds: number) => load(`${base}/v1/authorize`, PBX_CONNECTIONS, seconds, authorize);

    // warm-up: the JIT, the book, and the major GC that provisioning leaves due (it fell in the anchor otherwise)
    await pbxLoad(5);
    const reportsAlone = () => watchLoop(() => Promise.all([load(indicatorsUrl, 4, SECONDS, report, '60s'), load(pdfUrl, 1, SECONDS, report, '60s')]));
    const reportsLine = (i: LoadResult, p: LoadResult, l: Loop) =>
      `${i.requests} indicators p50 ${i.p50} ms, ${p.requests} PDFs p50 ${p.p50} ms; main thread: ${((l.cpu * 1000) / Math.max(1, i.requests + p.requests)).toFixed(1)} ms CPU per report, ` +
      `event loop ≤ ${l.delay.toFixed(1)} ms, busy ${(l.busy * 100).toFixed(0)} %, GC ≤ ${l.gc.toFixed(1)} ms`;
    if (process.env.REPORTS_ALONE) {
      const [[i, p], l] = await reportsAlone();
      log(`reports alone: ${reportsLine(i, p, l)}`);
      // each kind by itself: the main thread's CPU per request of each (what a report costs the PBX's thread)
      for (const [name, url, connections] of [['indicators', indicatorsUrl, 4], ['PDFs', pdfUrl, 1]] as const) {
        const [r, one] = await watchLoop(() => load(url, connections, SECONDS, report, '60s'));
        log(`${name} alone: ${r.requests} (p50 ${r.p50.toFixed(0)} ms); main thread ${((one.cpu * 1000) / Math.max(1, r.requests)).toFixed(1)} ms CPU each, event loop ≤ ${one.delay.toFixed(1)} ms, GC ≤ ${one.gc.toFixed(1)} ms`);
      }
    }
    if (PROFILE) {
      // where the main thread's time goes while reports run alone (the profiler's own cost included: not a measurement)
      const { result, report: where } = await profiled(reportsAlone, { file: PROFILE });
      log(`reports alone under the profiler (${PROFILE}): ${reportsLine(result[0][0], result[0][1], result[1])}\n${where}`);
    }
    const line = (name: string, r: LoadResult, loop: Loop) =>
      `${name.padEnd(22)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  max ${r.max.toFixed(1)} ms  errors ${r.errors}  ` +
      `main thread ${((loop.cpu * 1e6) / Math.max(1, r.requests)).toFixed(0)} µs CPU/call, event loop: delay ≤ ${loop.delay.toFixed(1)} ms, busy ${(loop.busy * 100).toFixed(0)} %, GC ≤ ${loop.gc.toFixed(1)} ms`;
    log(`wrk -t1 -c${PBX_CONNECTIONS} -d${SECONDS}s, each connection pausing ${PACE_MS} ms between calls`);
    // two rounds, alone and with reports in turn, the best p99 of each side kept: the cores are shared with
    // other processes, whose bursts land in one phase or the other
    const best = { alone: Infinity, busy: Infinity };
    let errors = 0;
    for (let round = 1; round <= 2; round++) {
      const [alone, aloneLoop] = await watchLoop(() => pbxLoad(SECONDS), sql);
      const [[busy, indicators, pdfs], busyLoop] = await watchLoop(() =>
        Promise.all([pbxLoad(SECONDS), load(indicatorsUrl, 4, SECONDS, report, '60s'), load(pdfUrl, 1, SECONDS, report, '60s')]),
        sql,
      );
      log(line(`${round}. authorize alone`, alone, aloneLoop));
      log(line(`${round}. authorize + reports`, busy, busyLoop));
      // the main thread's CPU the reports added: the phase's, less what its authorizations cost at the alone phase's rate
      const added = busyLoop.cpu - (aloneLoop.cpu * busy.requests) / Math.max(1, alone.requests);
      log(
        `   reports meanwhile: ${indicators.requests} indicators (p50 ${indicators.p50.toFixed(0)} ms, errors ${indicators.errors}), ${pdfs.requests} PDFs (p50 ${pdfs.p50.toFixed(0)} ms, errors ${pdfs.errors}); ` +
          `main thread ${((added * 1000) / Math.max(1, indicators.requests + pdfs.requests)).toFixed(1)} ms CPU per report`,
      );
      best.alone = Math.min(best.alone, alone.p99);
      best.busy = Math.min(best.busy, busy.p99);
      errors += alone.errors + busy.errors + indicators.errors + pdfs.errors;
    }
    if (errors > 0) throw new Error('errors during the run: no figure');
    log(`best p99: alone ${best.alone.toFixed(2)} ms, with reports ${best.busy.toFixed(2)} ms (target: at most 2 × alone)`);
    log(benchLine('isolation', best.busy, 'ms', best.alone));
  } finally {
    for (const f of scripts.splice(0)) rmSync(f, { force: true });
    server.close();
    await closeRenderPool();
    await app.close();
    await database.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
