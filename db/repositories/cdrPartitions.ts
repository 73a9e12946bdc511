/**
 * The monthly partitions of `cdrs` (migration 0050): one per UTC month, made by
 * the database function cdrs_ensure_month() — ahead by the `cdr-partitions` job,
 * on demand by the batch writer before it writes a month it has not seen.
 */
import { sql } from 'kysely';
import type { Db, Trx } from '../connection.js';

/** The first instant of the UTC month holding `ms`, as epoch ms: the key of a partition. */
export function monthStartMs(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/** "cdrs_y2026m11": the partition of the UTC month starting at `monthMs` (as cdrs_ensure_month names it). */
export function partitionName(monthMs: number): string {
  const d = new Date(monthMs);
  return `cdrs_y${d.getUTCFullYear()}m${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

/**
 * Makes the partitions of these months (first instants of UTC months), each in
 * its own short statement outside any batch transaction: ATTACH takes a lock
 * on cdrs that only other partition changes wait for.
 */
export async function ensureMonths(db: Db, months: Iterable<number>): Promise<void> {
  for (const m of months) await sql`SELECT cdrs_ensure_month(${new Date(m).toISOString()}::timestamptz)`.execute(db);
}

export interface PartitionInfo {
  name: string;
  /** First instant of its UTC month. */
  month: Date;
}

/** The partitions of cdrs, oldest first. */
export async function listPartitions(db: Db | Trx): Promise<PartitionInfo[]> {
  const { rows } = await sql<{ name: string }>`
    SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'cdrs'::regclass ORDER BY c.relname`.execute(db);
  const out: PartitionInfo[] = [];
  for (const r of rows) {
    const m = /^cdrs_y(\d{4})m(\d{2})$/.exec(r.name);
    if (m) out.push({ name: r.name, month: new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, 1)) });
  }
  return out;
}

/**
 * The partitions known to exist in this process. The batch writer asks the
 * database only for months not in it; a partition dropped meanwhile (archived)
 * makes the COPY fail with "no partition", which clears it (`forget`).
 */
export class KnownMonths {
  private readonly known = new Set<number>();

  /** The months of the `instants` (epoch ms) not known to have a partition. */
  missing(count: number, instant: (i: number) => number): number[] {
    const out = new Set<number>();
    // CDR files are in time order: most rows fall in the month of the one before
    let lo = 0;
    let hi = -1;
    for (let i = 0; i < count; i++) {
      const ms = instant(i);
      if (ms >= lo && ms < hi) continue;
      const m = monthStartMs(ms);
      const d = new Date(m);
      lo = m;
      hi = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
      if (!this.known.has(m)) out.add(m);
    }
    return [...out];
  }

  add(months: Iterable<number>): void {
    for (const m of months) this.known.add(m);
  }

  forget(): void {
    this.known.clear();
  }
}

/** The partitions' copies of cdrs_user_idx, and whether each has been clustered on (CLUSTER marks it). */
export async function userIndexes(db: Db): Promise<{ partition: string; index: string; clustered: boolean }[]> {
  const { rows } = await sql<{ partition: string; index: string; clustered: boolean }>`
    SELECT i.indrelid::regclass::text AS partition, i.indexrelid::regclass::text AS index, i.indisclustered AS clustered
      FROM pg_inherits h JOIN pg_index i ON i.indexrelid = h.inhrelid
     WHERE h.inhparent = 'cdrs_user_idx'::regclass ORDER BY 1`.execute(db);
  return rows;
}

/**
 * Rewrites a partition in the order of its user index: a user's month then sits
 * on a few pages instead of one page per call. Takes the partition's ACCESS
 * EXCLUSIVE lock while it rewrites (reads and late CDRs of that month wait).
 */
export async function clusterOnUsers(db: Db, partition: string, index: string): Promise<void> {
  await sql`CLUSTER ${sql.table(partition)} USING ${sql.ref(index)}`.execute(db);
  await sql`ANALYZE ${sql.table(partition)}`.execute(db);
}

const DAY_MS = 86_400_000;

/**
 * A start within one day of its UTC month's edge (first or last 24 hours): its
 * call id also goes to cdr_boundary_keys, the key that keeps a call once when two
 * of its records start in two months (migration 0052; its backfill says the same).
 */
export function nearMonthEdge(ms: number): boolean {
  const d = new Date(ms);
  const from = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  const to = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  return ms - from < DAY_MS || to - ms <= DAY_MS;
}

/** PostgreSQL's "no partition of relation … found for row" (23514). */
export function isNoPartition(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: string; message?: string };
  return e.code === '23514' && typeof e.message === 'string' && e.message.includes('no partition');
}

/** The keys that make a call id exactly once: a partition's `cdrs_yYYYYmMM_call_id_uq` (its month), `cdr_boundary_keys_pk` (across a month's edge). */
export function isCallIdKey(constraint: string | undefined): boolean {
  return constraint !== undefined && (constraint === 'cdr_boundary_keys_pk' || /^cdrs_y\d{4}m\d{2}_call_id_uq$/.test(constraint));
}
