import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startEmbedded } from '../../db/embedded.js';
import { Dec, parseNumber } from '../../engine/index.js';
import { groupRatesByPrefix, referenceLookupGrouped, referenceRateCall } from '../../engine/reference.js';
import { parseTariffCsv } from '../../services/tariffs/tariffs.js';
import { SYNTHETIC_TARIFF, writeSyntheticCdrs } from '../fixtures/cdrs/generate.js';

/**
 * SIGKILL in the middle of a 1,000,000-CDR import, restart, import the same
 * file again: every CDR is rated exactly once and every balance and counter
 * equals a reference computed independently from the file (decimal.js rating,
 * the engine's reference look-up). A batch half applied (CDRs without their
 * ledger entries or counters) or applied twice changes some user's balance,
 * used seconds or total seconds, or the ledger entry count, and fails this test.
 */
const root = path.resolve(import.meta.dirname, '../..');
const ROWS = Number(process.env.CRASH_CDRS ?? 1_000_000);
const USERS = 20;
const TOPUP = '500';
const FORFAIT_MINUTES = 600;
let dir: string;

function serve(dataDir: string, port: number): ChildProcess {
  const child = spawn(process.execPath, [path.join(root, 'bin/forfait.js'), 'serve', '--port', String(port), '--host', '127.0.0.1', '--no-jobs'], {
    cwd: root,
    env: { ...process.env, FORFAIT_DATA_DIR: dataDir, DATABASE_URL: '', FORFAIT_BOOTSTRAP_KEY: '', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return child;
}

async function healthy(port: number): Promise<void> {
  const until = Date.now() + 120_000;
  while (Date.now() < until) {
    const ok = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status === 200, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('server did not start');
}

async function api(port: number, key: string, method: string, p: string, json?: unknown, body?: string | ReadableStream<Uint8Array>, headers: Record<string, string> = {}) {
  const res = await fetch(`http://127.0.0.1:${port}${p}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(json !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: json !== undefined ? JSON.stringify(json) : body,
    ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
  } as RequestInit);
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, text };
}

function importFile(port: number, key: string, file: string, bytes: number) {
  return api(port, key, 'POST', '/v1/cdrs/import?format=native', undefined, Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>, {
    'content-type': 'text/csv',
    'content-length': String(bytes),
  });
}

interface Expected {
  balance: InstanceType<typeof Dec>;
  usedSeconds: number;
  totalSeconds: number;
  paidCalls: number;
}

/** The file rated from scratch with the decimal.js reference, per user in started_at order. */
async function reference(file: string): Promise<{ byIdentifiant: Map<string, Expected>; calls: number }> {
  const parsed = await parseTariffCsv(SYNTHETIC_TARIFF);
  if (!parsed.ok) throw new Error('tariff');
  const byPrefix = groupRatesByPrefix(parsed.rates);
  const free = new Set(['112', '15', '17', '18', '114', '115', '119']);
  const lines = (await readFile(file, 'utf8')).trimEnd().split('\n').slice(1);
  const perUser = new Map<string, { at: number; callId: string; callee: string; d: number; answered: boolean }[]>();
  for (const line of lines) {
    const [callId, ident, , callee, , startedAt, , d, disposition] = line.split(',');
    const n = parseNumber(callee!, 'FR');
    if (!n.ok) throw new Error(`bad callee in fixture: ${callee}`);
    const list = perUser.get(ident!) ?? [];
    list.push({ at: Date.parse(startedAt!), callId: callId!, callee: n.e164, d: Number(d), answered: disposition === 'answered' });
    perUser.set(ident!, list);
  }
  const byIdentifiant = new Map<string, Expected>();
  for (const [ident, calls] of perUser) {
    calls.sort((a, b) => a.at - b.at || (a.callId < b.callId ? -1 : 1));
    let remaining = FORFAIT_MINUTES * 60;
    const e: Expected = { balance: new Dec(TOPUP), usedSeconds: 0, totalSeconds: 0, paidCalls: 0 };
    for (const c of calls) {
      const digits = c.callee.replace('+', '');
      const rate = referenceLookupGrouped(byPrefix, digits, c.at);
      if (!rate) throw new Error(`no rate for ${c.callee}`);
      const r = referenceRateCall({ durationSeconds: c.d, answered: c.answered, rate, remainingForfaitSeconds: remaining, billingEnabled: true, freeNumber: free.has(c.callee) });
      remaining -= r.forfaitSeconds;
      e.usedSeconds += r.forfaitSeconds;
      e.totalSeconds += r.billableSeconds;
      e.balance = e.balance.minus(r.cost);
      if (new Dec(r.cost).greaterThan(0)) e.paidCalls++;
    }
    byIdentifiant.set(ident, e);
  }
  return { byIdentifiant, calls: lines.length };
}

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('crash in the middle of a 1,000,000-CDR import', () => {
  it('SIGKILL, restart, same file again: every CDR rated once, every balance equal to the reference', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'forfait-crash-'));
    const dataDir = path.join(dir, 'data');
    const file = path.join(dir, 'cdrs.csv');
    const identifiants = Array.from({ length: USERS }, (_, i) => String(3_000_000 + i));
    // October and November in UTC (the first hour of 1 November in Paris is October), and a late month made on demand
    await writeSyntheticCdrs(file, ROWS, identifiants, { seed: 11, prefix: 'crash', lateEvery: 97 });
    const bytes = (await stat(file)).size;

    const port = await freePort();
    let server = serve(dataDir, port);
    await healthy(port);
    const reseller = (await readFile(path.join(dataDir, 'bootstrap-key'), 'utf8')).trim();
    expect((await api(port, reseller, 'PUT', '/v1/tariffs/crash', undefined, SYNTHETIC_TARIFF, { 'content-type': 'text/csv' })).status).toBe(200);
    const tenant = await api(port, reseller, 'POST', '/v1/tenants', { name: 'Crash SA', productType: 'pro', tariffId: 'crash', country: 'FR' });
    expect(tenant.status).toBe(201);
    const admin: string = tenant.json.adminKey;
    for (const ident of identifiants) {
      const u = await api(port, admin, 'POST', '/v1/users', { fullName: `U ${ident}`, matricule: `1000000${ident}`, identifiant: ident, forfaitMinutes: FORFAIT_MINUTES });
      expect(u.status, u.text).toBe(201);
      const top = await api(port, admin, 'POST', `/v1/users/${u.json.id}/ledger`, { kind: 'topup', amount: TOPUP, idempotencyKey: `seed-${ident}` });
      expect(top.status, top.text).toBe(201);
    }

    // first import: killed once some batches are committed
    const exited = new Promise((r) => server.once('exit', r));
    const first = importFile(port, admin, file, bytes).catch(() => 'killed');
    for (;;) {
      const page = await api(port, admin, 'GET', '/v1/cdrs?limit=1');
      if (page.json?.items?.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // soon after the first commit: later batches are in flight (a lane commits while the other writes)
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 300)));
    server.kill('SIGKILL');
    await exited;
    expect(await first).toBe('killed');

    // restart (the orphaned PostgreSQL is stopped and started again), same file again, on a new
    // port: the first one may have been handed to another test's server meanwhile
    const port2 = await freePort();
    server = serve(dataDir, port2);
    await healthy(port2);
    const db = await startEmbedded({ dataDir }); // shares the running server's PostgreSQL
    const sql = postgres(db.url, { max: 2, onnotice: () => undefined });
    try {
      const [before] = await sql<{ n: string }[]>`SELECT count(*)::text AS n FROM cdrs`;
      const committed = Number(before!.n);
      expect(committed, 'the kill happened after some batches').toBeGreaterThan(0);
      expect(committed, 'the kill happened before the end').toBeLessThan(ROWS);

      const second = await importFile(port2, admin, file, bytes);
      expect(second.status, second.text).toBe(200);
      expect(second.json.accepted).toBe(ROWS - committed);
      expect(second.json.duplicates).toBe(committed);
      expect(second.json.rejectedCount).toBe(0);

      const ref = await reference(file);
      const [totals] = await sql<{ cdrs: string; ids: string; calls: string; cdrsWithCost: string; distinctCdrs: string }[]>`
        SELECT (SELECT count(*) FROM cdrs)::text AS cdrs, (SELECT count(DISTINCT call_id) FROM cdrs)::text AS ids,
               (SELECT count(*) FROM ledger_entries WHERE kind = 'call')::text AS calls,
               (SELECT count(*) FROM cdrs WHERE cost > 0)::text AS "cdrsWithCost",
               (SELECT count(DISTINCT cdr_id) FROM ledger_entries WHERE kind = 'call')::text AS "distinctCdrs"`;
      expect(Number(totals!.cdrs)).toBe(ref.calls);
      expect(Number(totals!.ids)).toBe(ref.calls);
      expect(totals!.calls).toBe(totals!.cdrsWithCost);
      expect(totals!.distinctCdrs).toBe(totals!.calls);
      // the rows are in three monthly partitions, one of them (June 2025) made on demand by the import
      const months = await sql<{ part: string; n: number }[]>`SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM cdrs GROUP BY 1 ORDER BY 1`;
      expect(months.map((m) => m.part)).toEqual(['cdrs_y2025m06', 'cdrs_y2026m10', 'cdrs_y2026m11']);
      expect(months[0]!.n).toBe(Math.ceil(ROWS / 97));

      const users = await sql<{ identifiant: string; balance: string; usedSeconds: number; totalCallSeconds: string; ledger: string; paid: string; broken: string }[]>`
        SELECT u.identifiant, u.balance::text,
               -- the file's calls are of one month, not the user's current one: its forfait_usage row (issue 17)
               (SELECT COALESCE(sum(used_seconds), 0)::int FROM forfait_usage f WHERE f.user_id = u.id) AS "usedSeconds", u.total_call_seconds::text AS "totalCallSeconds",
               (SELECT sum(amount) FROM ledger_entries l WHERE l.user_id = u.id)::text AS ledger,
               (SELECT count(*) FROM ledger_entries l WHERE l.user_id = u.id AND kind = 'call')::text AS paid,
               (SELECT count(*) FROM (SELECT balance_after, sum(amount) OVER (ORDER BY id) AS run FROM ledger_entries l WHERE l.user_id = u.id) x
                 WHERE balance_after <> run)::text AS broken
          FROM users u`;
      expect(users).toHaveLength(USERS);
      for (const u of users) {
        const e = ref.byIdentifiant.get(u.identifiant)!;
        expect({ who: u.identifiant, balance: new Dec(u.balance).toFixed(4), used: u.usedSeconds, total: Number(u.totalCallSeconds), paid: Number(u.paid) }).toEqual({
          who: u.identifiant,
          balance: e.balance.toFixed(4),
          used: e.usedSeconds,
          total: e.totalSeconds,
          paid: e.paidCalls,
        });
        expect(new Dec(u.ledger).equals(new Dec(u.balance))).toBe(true);
        expect(u.broken).toBe('0');
      }
    } finally {
      await sql.end();
      const stopped = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await stopped;
    }
  }, 600_000);
});
