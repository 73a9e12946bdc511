/**
 * `forfait archives restore --tenant --month`: puts a tenant's archived month
 * back into cdrs for an audit. Each part is checked first — its SHA-256 against
 * the manifest and against cdr_archives — then COPYed, gunzipped as it is read,
 * into a temporary table whose columns are the file's header (each one a column
 * of cdrs, or the export's `reference`), and inserted with its ids; a row
 * already in cdrs (a month restored twice) is skipped. All parts in one
 * transaction: a bad part restores nothing. The next archive run finds the
 * rows equal to what was archived and removes them without a new file.
 */
import { recordAudit, type Actor } from '../audit/audit.js';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import { sql } from 'kysely';
import { copyIn } from '../../db/copy.js';
import { rawSql, type Db } from '../../db/connection.js';
import { ensureMonths } from '../../db/repositories/cdrPartitions.js';
import { freezeCallDetails } from '../invoices/frozenCalls.js';
import { NotFoundError, ValidationError } from '../shared/errors.js';
import { archiveColumns, monthDate, readManifest, verifyArchive } from './archive.js';

export interface RestoreResult {
  tenantId: string;
  month: string;
  parts: number;
  /** Rows put back. */
  restored: number;
  /** Rows of the archive already in cdrs. */
  present: number;
}

const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;

/** The header of a gzipped CSV file: its column names. */
async function headerOf(file: string): Promise<string[]> {
  const lines = createInterface({ input: createReadStream(file).pipe(createGunzip()) });
  try {
    for await (const line of lines) return line.split(',').map((c) => c.replace(/^"|"$/g, ''));
  } finally {
    lines.close();
  }
  return [];
}

export async function restoreMonth(db: Db, dir: string, tenantId: string, month: string, actor: Actor): Promise<RestoreResult> {
  const m = MONTH.exec(month);
  if (!m) throw new ValidationError('invalid month', [{ field: 'month', value: month, message: 'a month as YYYY-MM' }]);
  const parts = await db
    .selectFrom('cdrArchives')
    .select(['part', 'file', 'sha256', 'rows'])
    .where('tenantId', '=', tenantId)
    .where('month', '=', monthDate(month))
    .orderBy('part')
    .execute();
  if (parts.length === 0) throw new NotFoundError('archive');
  const manifest = await readManifest(dir, tenantId, month);
  const allowed = new Set([...(await archiveColumns(db)), 'reference']);
  for (const p of parts) {
    const file = path.join(dir, p.file);
    if (manifest.get(path.basename(p.file)) !== p.sha256) throw new Error(`archive ${p.file}: its manifest line does not match the recorded SHA-256`);
    await verifyArchive(file, p.sha256, Number(p.rows));
  }
  await ensureMonths(db, [Date.UTC(Number(m[1]), Number(m[2]) - 1, 1)]);
  return db.transaction().execute(async (trx) => {
    const raw = await rawSql(trx);
    let restored = 0;
    let total = 0;
    await sql`CREATE TEMP TABLE restored_cdrs (reference text, LIKE cdrs) ON COMMIT DROP`.execute(trx);
    await sql`ALTER TABLE restored_cdrs ALTER COLUMN tenant_id DROP NOT NULL`.execute(trx);
    for (const p of parts) {
      const file = path.join(dir, p.file);
      const header = await headerOf(file);
      const bad = header.filter((c) => !allowed.has(c));
      if (bad.length > 0) throw new Error(`archive ${p.file}: unknown columns ${bad.join(', ')}`);
      await copyIn(raw, `COPY restored_cdrs (${header.map((c) => `"${c}"`).join(', ')}) FROM STDIN WITH (FORMAT csv, HEADER true)`, createReadStream(file).pipe(createGunzip()));
      total += Number(p.rows);
    }
    const columns = (await archiveColumns(trx)).map((c) => `"${c}"`).join(', ');
    const inserted = await sql<{ n: string }>`
      WITH ins AS (
        INSERT INTO cdrs (tenant_id, ${sql.raw(columns)}) OVERRIDING SYSTEM VALUE
        SELECT ${tenantId}::uuid, ${sql.raw(columns)} FROM restored_cdrs ON CONFLICT DO NOTHING RETURNING 1)
      SELECT count(*)::text AS n FROM ins`.execute(trx);
    restored = Number(inserted.rows[0]!.n);
    // invoice items of the month issued before invoices froze their details (migration 0150) get them now
    await freezeCallDetails(trx, tenantId);
    await trx.updateTable('cdrArchives').set({ restoredAt: sql`now()` }).where('tenantId', '=', tenantId).where('month', '=', monthDate(month)).execute();
    const result = { tenantId, month, parts: parts.length, restored, present: total - restored };
    await recordAudit(trx, actor, { tenantId, action: 'archive.restore', targetType: 'archive', targetId: month, after: result });
    return result;
  });
}
