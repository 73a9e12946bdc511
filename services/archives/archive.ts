/**
 * CDR retention (issue 22): each tenant keeps `cdr_retention_months` whole UTC
 * months before the current one in the database; an older month of a tenant is
 * archived, then removed, and a monthly partition left empty is dropped.
 *
 * Nothing is removed before its archive is written, fsynced, read back and
 * verified:
 *
 * 1. one REPEATABLE READ transaction sees the tenant's month as one snapshot;
 * 2. COPY (SELECT …) TO STDOUT of those rows → gzip → `<dir>/<tenant>/<YYYY-MM>.csv.gz.tmp`
 *    (SHA-256 computed on the way), fsync, rename, fsync of the folder;
 * 3. the file is read back from disk: its SHA-256 and its number of CSV records
 *    must equal what was written and what the snapshot counted;
 * 4. the manifest `<YYYY-MM>.sha256` (sha256sum's format: `sha256sum -c` checks
 *    it) is written the same way, and the file recorded in cdr_archives with its
 *    row count and the sum of its rows' ids;
 * 5. only then the rows the snapshot saw are deleted, and the transaction commits.
 *
 * A crash before 5 commits leaves the rows where they were (the next run writes
 * the archive again); the snapshot means a late CDR that arrives meanwhile is
 * neither archived nor deleted, and is archived later as part 2.
 *
 * The file is the CDR export's columns in its order (services/exports/cdrExport.ts)
 * with the stored values as they are (numbers in E.164, instants in UTC, no
 * formula guard: an archive is restored, not opened in a spreadsheet), followed
 * by every other column of cdrs but tenant_id — so a restore puts back the very
 * rows, their ids included (ledger entries name CDRs by id).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { parse } from 'fast-csv';
import { sql } from 'kysely';
import { rawSql, type Db, type Trx } from '../../db/connection.js';
import { listPartitions, monthStartMs } from '../../db/repositories/cdrPartitions.js';
import { CDR_EXPORT_COLUMNS, copyOut } from '../exports/cdrExport.js';

/** Where the job may be stopped by a test: the archive written, then verified (before any row is removed). */
export type ArchivePoint = 'written' | 'verified';

export interface ArchiveOptions {
  /** The archive folder (FORFAIT_ARCHIVE_DIR, default var/archive). */
  dir: string;
  /** The clock: months before (its UTC month − retention) are archived. */
  now: Date;
  /** Only these tenants (a command run for one tenant; tests). */
  tenantIds?: readonly string[];
  /** Called at each point, awaited (a test kills the process there). */
  at?: (point: ArchivePoint, file: string) => Promise<void> | void;
}

export interface ArchivedMonth {
  tenantId: string;
  month: string;
  part: number;
  file: string;
  rows: number;
}

export interface ArchiveRun {
  archived: ArchivedMonth[];
  /** Rows removed from cdrs (archived by this run or before). */
  removed: number;
  /** Partitions dropped, empty. */
  dropped: string[];
}

/** "2025-06" of a month's first instant. */
export function monthText(monthMs: number): string {
  return new Date(monthMs).toISOString().slice(0, 7);
}

/** A "YYYY-MM" month as the `month` date of cdr_archives, to compare with. */
export function monthDate(month: string) {
  return sql<Date>`${`${month}-01`}::date`;
}

export function addMonths(monthMs: number, n: number): number {
  const d = new Date(monthMs);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, 1);
}

/** Archives and removes every tenant month past its retention, then drops the partitions left empty. */
export async function archiveDueMonths(db: Db, options: ArchiveOptions): Promise<ArchiveRun> {
  const run: ArchiveRun = { archived: [], removed: 0, dropped: [] };
  const nowMonth = monthStartMs(options.now.getTime());
  let tq = db.selectFrom('tenants').select(['id', 'cdrRetentionMonths']).orderBy('id');
  if (options.tenantIds !== undefined) tq = tq.where('id', 'in', options.tenantIds.length > 0 ? [...options.tenantIds] : ['00000000-0000-0000-0000-000000000000']);
  const tenants = await tq.execute();
  for (const p of await listPartitions(db)) {
    const month = p.month.getTime();
    let touched = false;
    for (const t of tenants) {
      if (month >= addMonths(nowMonth, -t.cdrRetentionMonths)) continue;
      const has = await sql<{ has: boolean }>`
        SELECT EXISTS (SELECT 1 FROM cdrs WHERE tenant_id = ${t.id} AND started_at >= ${new Date(month)} AND started_at < ${new Date(addMonths(month, 1))}) AS has`.execute(db);
      if (!has.rows[0]!.has) continue;
      const done = await archiveTenantMonth(db, t.id, month, options);
      if (done.archived) run.archived.push(done.archived);
      run.removed += done.removed;
      touched = true;
    }
    // an old partition left empty is dropped (a late CDR of its month makes it again)
    if ((touched || options.tenantIds === undefined) && month < addMonths(nowMonth, -1) && (await dropIfEmpty(db, p.name))) run.dropped.push(p.name);
  }
  return run;
}

/** Archives one tenant's month (unless its rows are exactly those archived already) and removes the rows. */
export async function archiveTenantMonth(db: Db, tenantId: string, monthMs: number, options: ArchiveOptions): Promise<{ archived?: ArchivedMonth; removed: number }> {
  const from = new Date(monthMs);
  const to = new Date(addMonths(monthMs, 1));
  const month = monthText(monthMs);
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => {
      const stats = await sql<{ rows: string; idSum: string }>`
        SELECT count(*)::text AS rows, COALESCE(sum(id), 0)::text AS "idSum" FROM cdrs
         WHERE tenant_id = ${tenantId} AND started_at >= ${from} AND started_at < ${to}`.execute(trx);
      const { rows, idSum } = stats.rows[0]!;
      if (rows === '0') return { removed: 0 };
      const parts = await trx
        .selectFrom('cdrArchives')
        .select(['part', 'file', 'sha256', 'rows', 'idSum'])
        .where('tenantId', '=', tenantId)
        .where('month', '=', monthDate(month))
        .orderBy('part')
        .execute();
      const archivedRows = parts.reduce((s, x) => s + BigInt(x.rows), 0n);
      const archivedIds = parts.reduce((s, x) => s + BigInt(x.idSum), 0n);
      let archived: ArchivedMonth | undefined;
      // rows exactly those archived already (a month restored for an audit, or a run stopped after its record): no new file
      if (!(parts.length > 0 && archivedRows === BigInt(rows) && archivedIds === BigInt(idSum))) {
        const part = (parts.at(-1)?.part ?? 0) + 1;
        const file = `${tenantId}/${month}${part > 1 ? `.${part}` : ''}.csv.gz`;
        const written = await writeArchive(trx, options.dir, file, tenantId, from, to);
        await options.at?.('written', file);
        await verifyArchive(path.join(options.dir, file), written.sha256, Number(rows));
        await writeManifest(options.dir, tenantId, month, [...parts.map((x) => ({ file: x.file, sha256: x.sha256 })), { file, sha256: written.sha256 }]);
        await options.at?.('verified', file);
        await trx
          .insertInto('cdrArchives')
          .values({ tenantId, month: `${month}-01`, part, file, sha256: written.sha256, rows, idSum, bytes: written.bytes, verifiedAt: new Date() })
          .execute();
        archived = { tenantId, month, part, file, rows: Number(rows) };
      }
      // the rows this snapshot saw, and only those (REPEATABLE READ: a CDR stored since is not seen, so stays)
      const removed = await trx
        .deleteFrom('cdrs')
        .where('tenantId', '=', tenantId)
        .where('startedAt', '>=', from)
        .where('startedAt', '<', to)
        .executeTakeFirst();
      if (String(removed.numDeletedRows) !== rows) throw new Error(`archive of ${tenantId} ${month}: ${rows} rows archived, ${removed.numDeletedRows} deleted`);
      // their keys near the month's edges go with them (a restored month is read, not rated again)
      await trx.deleteFrom('cdrBoundaryKeys').where('tenantId', '=', tenantId).where('startedAt', '>=', from).where('startedAt', '<', to).execute();
      return { ...(archived ? { archived } : {}), removed: Number(rows) };
    });
}

/** Drops a partition if it holds no row, under the lock that keeps a batch from writing into it meanwhile. */
async function dropIfEmpty(db: Db, partition: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    await sql`SET LOCAL lock_timeout = '5s'`.execute(trx);
    await sql`LOCK TABLE ${sql.table(partition)} IN ACCESS EXCLUSIVE MODE`.execute(trx);
    const any = await sql<{ one: number }>`SELECT 1 AS one FROM ${sql.table(partition)} LIMIT 1`.execute(trx);
    if (any.rows.length > 0) return false;
    await sql`DROP TABLE ${sql.table(partition)}`.execute(trx);
    return true;
  });
}

/** Every column of cdrs but tenant_id: the export's first, in its order, then the others in table order. */
export async function archiveColumns(db: Db | Trx): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    SELECT attname AS name FROM pg_attribute WHERE attrelid = 'cdrs'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`.execute(db);
  const stored = rows.map((r) => r.name).filter((n) => n !== 'tenant_id');
  const exported = CDR_EXPORT_COLUMNS.filter((c) => c !== 'reference');
  return [...exported, ...stored.filter((n) => !(exported as readonly string[]).includes(n))];
}

async function fsyncPath(p: string): Promise<void> {
  const h = await open(p, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Writes bytes to `final` through a temporary file: fsynced, renamed, the folder fsynced. */
async function durableWrite(final: string, write: (out: Writable) => Promise<void>): Promise<void> {
  await mkdir(path.dirname(final), { recursive: true });
  const tmp = `${final}.tmp`;
  try {
    await write(createWriteStream(tmp));
    await fsyncPath(tmp);
    await rename(tmp, final);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncPath(path.dirname(final));
}

/** COPY of the tenant's month, in the snapshot of `trx`, gzipped into `file`: its SHA-256 and size. */
async function writeArchive(trx: Trx, dir: string, file: string, tenantId: string, from: Date, to: Date): Promise<{ sha256: string; bytes: number }> {
  const raw = await rawSql(trx);
  const reference = await trx.selectFrom('tenants').select('reference').where('id', '=', tenantId).executeTakeFirstOrThrow();
  // COPY takes no parameters: the values are settings of this transaction, each bound (as the export does)
  await raw`SELECT set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, YMD', true),
                   set_config('forfait_archive.tenant', ${tenantId}, true), set_config('forfait_archive.reference', ${reference.reference?.trim() || tenantId}, true),
                   set_config('forfait_archive.from', ${from.toISOString()}, true), set_config('forfait_archive.to', ${to.toISOString()}, true)`;
  const columns = await archiveColumns(trx);
  const select = `SELECT (SELECT current_setting('forfait_archive.reference')) AS reference, ${columns.map((c) => `"${c}"`).join(', ')}
    FROM cdrs WHERE tenant_id = (SELECT current_setting('forfait_archive.tenant')::uuid)
     AND started_at >= (SELECT current_setting('forfait_archive.from')::timestamptz)
     AND started_at < (SELECT current_setting('forfait_archive.to')::timestamptz)
    ORDER BY started_at, id`;
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  await durableWrite(path.join(dir, file), async (out) => pipeline(await copyOut(raw, select), createGzip(), tap, out));
  return { sha256: hash.digest('hex'), bytes };
}

/** Reads the file back from disk: its SHA-256 must be `sha256` and it must hold `rows` CSV records after its header. */
export async function verifyArchive(file: string, sha256: string, rows: number): Promise<void> {
  const hash = createHash('sha256');
  let records = 0;
  // a missing file, or one gunzip or the CSV reader refuses, is named (not a bare "incorrect data check")
  const unreadable = (err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`archive ${file}: ${code === 'ENOENT' ? 'missing' : `unreadable (${(err as Error).message})`}`, { cause: err });
  };
  await pipeline(
    createReadStream(file),
    new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    }),
    createGunzip(),
    parse({ headers: true }),
    new Writable({
      objectMode: true,
      write(_row, _enc, done) {
        records++;
        done();
      },
    }),
  ).catch(unreadable);
  const actual = hash.digest('hex');
  if (actual !== sha256) throw new Error(`archive ${file}: SHA-256 ${actual}, expected ${sha256}`);
  if (records !== rows) throw new Error(`archive ${file}: ${records} rows, expected ${rows}`);
}

/** `<dir>/<tenant>/<YYYY-MM>.sha256`: one "<hex>  <file name>" line per part (what `sha256sum -c` reads). */
async function writeManifest(dir: string, tenantId: string, month: string, parts: { file: string; sha256: string }[]): Promise<void> {
  const text = parts.map((p) => `${p.sha256}  ${path.basename(p.file)}\n`).join('');
  await durableWrite(path.join(dir, tenantId, `${month}.sha256`), async (out) => {
    await new Promise<void>((resolve, reject) => {
      out.once('error', reject);
      out.end(text, () => resolve());
    });
  });
}

/** The manifest's SHA-256 of each file name of a tenant's month. */
export async function readManifest(dir: string, tenantId: string, month: string): Promise<Map<string, string>> {
  const text = await readFile(path.join(dir, tenantId, `${month}.sha256`), 'utf8');
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
    if (m) out.set(m[2]!, m[1]!);
  }
  return out;
}
