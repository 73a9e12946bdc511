/**
 * The CDR history the `history` and `ingest` (HISTORY=…) benchmarks start from,
 * built once inside PostgreSQL into var/bench-history/ and reused (it takes
 * tens of minutes on 2 cores): one tenant "Bench SA", the ingest benchmark's
 * tariff and 10,000 users (identifiants 2000000–2009999), and
 *
 *   level 10,000,000: 10,000,000 CDRs in October 2026 (the history benchmark's month);
 *   level 50,000,000: 40,000,000 more, 3,333,334 a month from October 2025 to September 2026.
 *
 * Each month is written into a bare table by INSERT … SELECT generate_series,
 * indexed afterwards (sorted index builds) and attached as the month's
 * partition with the same indexes cdrs_ensure_month() gives (migration 0050).
 * The rows look like the ingest file's: 3 in 4 answered, durations up to 15
 * minutes, mobile and fixed numbers, two sites; ids from the cdrs sequence.
 * Ledger entries of the history are not generated (the benchmarks measure cdrs).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { connect, type DbHandle } from '../../db/connection.js';
import { startEmbedded } from '../../db/embedded.js';
import { migrateToLatest } from '../../db/migrate.js';
import { partitionName } from '../../db/repositories/cdrPartitions.js';
import { insertKey } from '../../services/access/access.js';
import { defaultReseller } from '../../services/access/bootstrap.js';
import { putTariff } from '../../services/tariffs/tariffs.js';
import { createTenant } from '../../services/tenants/tenants.js';
import { SYNTHETIC_TARIFF } from '../../test/fixtures/cdrs/generate.js';

const DIR = path.resolve(import.meta.dirname, '../../var/bench-history');
const USERS = 10_000;
const PBX_KEY = 'ffk_0000000000000022_bench-history-pbx-key-0000';
const ADMIN_KEY = 'ffk_0000000000000023_bench-history-admin-key-000';

export interface HistoryData extends DbHandle {
  tenantId: string;
  /** An administrateur key of the tenant (reads). */
  key: string;
  /** A pbx key of the tenant (imports). */
  pbxKey: string;
  userIds: string[];
}

const LEVELS: { total: number; months: { month: number; rows: number }[] }[] = [
  { total: 10_000_000, months: [{ month: Date.UTC(2026, 9, 1), rows: 10_000_000 }] },
  {
    total: 50_000_000,
    months: Array.from({ length: 12 }, (_, k) => ({ month: Date.UTC(2025, 9 + k, 1), rows: k < 11 ? 3_333_333 : 40_000_000 - 11 * 3_333_333 })),
  },
];

async function state(): Promise<{ tenantId?: string; built: number }> {
  return JSON.parse(await readFile(path.join(DIR, 'bench-state.json'), 'utf8').catch(() => '{"built":0}')) as { tenantId?: string; built: number };
}

/** One month of history written beside cdrs, indexed, then attached as its partition. */
async function buildMonth(h: DbHandle, tenantId: string, monthMs: number, rows: number): Promise<void> {
  const part = partitionName(monthMs);
  const from = new Date(monthMs);
  const d = new Date(monthMs);
  const to = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1));
  const step = (to.getTime() - from.getTime()) / 1000 / rows; // seconds between calls
  const t0 = Date.now();
  await h.sql.begin(async (tx) => {
    await tx`SET LOCAL maintenance_work_mem = '1GB'`;
    await tx.unsafe(`CREATE TABLE ${part} (LIKE cdrs INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)`);
    await tx.unsafe(`
      INSERT INTO ${part} (tenant_id, id, call_id, user_id, identifiant, caller, callee, direction, started_at, answered_at,
        duration_seconds, disposition, site, line, destination, class, billable_seconds, forfait_seconds, charged_seconds, cost, rated_at)
      SELECT $1::uuid, nextval(pg_get_serial_sequence('cdrs', 'id')), 'hist-' || to_char($2::timestamptz, 'YYYYMM') || '-' || g,
             u.ids[(1 + (g * 7919) % ${USERS})::int], u.idents[(1 + (g * 7919) % ${USERS})::int], '+3314000' || right(u.idents[(1 + (g * 7919) % ${USERS})::int], 4),
             CASE WHEN g % 2 = 0 THEN '+33612' || lpad(((g * 104729) % 1000000)::text, 6, '0') ELSE '+33142' || lpad(((g * 15485863) % 1000000)::text, 6, '0') END,
             'out', $2::timestamptz + make_interval(secs => g * $3::float8),
             CASE WHEN g % 4 = 0 THEN NULL ELSE $2::timestamptz + make_interval(secs => g * $3::float8 + 3) END,
             CASE WHEN g % 4 = 0 THEN 0 ELSE (1 + (g * 31) % 900)::int END,
             CASE WHEN g % 4 = 0 THEN 'no_answer' ELSE 'answered' END,
             CASE WHEN g % 2 = 0 THEN 'Paris' ELSE 'Lyon' END, 'L' || (g % 500),
             CASE WHEN g % 2 = 0 THEN 'France mobile' ELSE 'France fixe' END, CASE WHEN g % 2 = 0 THEN 'mobile' ELSE 'fixed' END,
             CASE WHEN g % 4 = 0 THEN 0 ELSE (60 + (g * 31) % 900)::int END, 0, CASE WHEN g % 4 = 0 THEN 0 ELSE (60 + (g * 31) % 900)::int END,
             CASE WHEN g % 4 = 0 THEN 0 ELSE round(((60 + (g * 31) % 900) * 0.002)::numeric, 4) END, $2::timestamptz + interval '1 month'
        FROM generate_series(0::bigint, $4::bigint - 1) AS g,
             (SELECT array_agg(id ORDER BY identifiant) AS ids, array_agg(identifiant ORDER BY identifiant) AS idents FROM users WHERE tenant_id = $1::uuid) AS u`,
      [tenantId, from.toISOString(), step, rows],
    );
    await tx.unsafe(`CREATE UNIQUE INDEX ${part}_call_id_uq ON ${part} (tenant_id, call_id)`);
    await tx.unsafe(`ALTER TABLE ${part} ADD PRIMARY KEY (tenant_id, id, started_at)`);
    await tx.unsafe(`CREATE INDEX ON ${part} (tenant_id, started_at)`);
    await tx.unsafe(`CREATE INDEX ON ${part} (tenant_id, user_id, started_at)`);
    await tx.unsafe(`ALTER TABLE cdrs ATTACH PARTITION ${part} FOR VALUES FROM ('${from.toISOString()}') TO ('${to.toISOString()}')`);
  });
  await h.sql.unsafe(`VACUUM ANALYZE ${part}`);
  process.stdout.write(`history: ${part} ${rows} CDRs in ${Math.round((Date.now() - t0) / 1000)} s\n`);
}

/** The data set with at least `total` CDRs of history (built now if missing), its server started. */
export async function openHistoryData(total: number): Promise<HistoryData> {
  await mkdir(DIR, { recursive: true });
  const server = await startEmbedded({ dataDir: DIR, ephemeral: true, settings: { shared_buffers: '1GB', max_wal_size: '8GB' } });
  const h = connect(server.url, { max: 20 });
  await migrateToLatest(h.db);
  let s = await state();
  if (s.tenantId === undefined) {
    const resellerId = await defaultReseller(h.db);
    await putTariff(h.db, resellerId, 'bench', SYNTHETIC_TARIFF);
    const { tenant } = await createTenant(h.db, resellerId, { name: 'Bench SA', productType: 'entreprise', tariffId: 'bench', country: 'FR' }, 'bench');
    await h.sql`
      INSERT INTO users (tenant_id, full_name, matricule, identifiant, forfait_minutes, balance)
      SELECT ${tenant.id}, 'User ' || g, lpad(g::text, 14, '0'), (2000000 + g)::text, 120, 50 FROM generate_series(0, ${USERS - 1}) g`;
    await h.sql`
      INSERT INTO ledger_entries (tenant_id, user_id, kind, amount, balance_after, reason)
      SELECT tenant_id, id, 'topup', 50, 50, 'bench' FROM users WHERE tenant_id = ${tenant.id}`;
    await insertKey(h.db, { principal: 'pbx', name: 'bench-pbx', tenantId: tenant.id, fixedKey: PBX_KEY });
    await insertKey(h.db, { principal: 'user', name: 'bench-admin', roles: ['administrateur'], tenantId: tenant.id, fixedKey: ADMIN_KEY });
    s = { tenantId: tenant.id, built: 0 };
    await writeFile(path.join(DIR, 'bench-state.json'), JSON.stringify(s));
  }
  const tenantId = s.tenantId!;
  for (const level of LEVELS) {
    if (level.total > total || s.built >= level.total) continue;
    for (const m of level.months) {
      const exists = await h.sql`SELECT 1 FROM pg_class WHERE relname = ${partitionName(m.month)}`;
      if (exists.length === 0) await buildMonth(h, tenantId, m.month, m.rows);
    }
    s = { tenantId, built: level.total };
    await writeFile(path.join(DIR, 'bench-state.json'), JSON.stringify(s));
    await h.sql`CHECKPOINT`;
  }
  const users = await h.sql<{ id: string }[]>`SELECT id FROM users WHERE tenant_id = ${tenantId} ORDER BY identifiant`;
  return {
    ...h,
    tenantId,
    key: ADMIN_KEY,
    pbxKey: PBX_KEY,
    userIds: users.map((u) => u.id),
    async close() {
      await h.close();
      await server.stop();
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // `tsx benchmarks/data/history.ts 50000000`: build the data set only
  const data = await openHistoryData(Number(process.argv[2] ?? 10_000_000));
  await data.close();
}
