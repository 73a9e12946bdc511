/** The archive files of a tenant (GET /v1/archives): what the archive job wrote, newest month first. */
import { sql } from 'kysely';
import type { Db } from '../../db/connection.js';
import { NotFoundError } from '../shared/errors.js';
import { monthDate } from './archive.js';

export interface ArchiveView {
  month: string;
  part: number;
  /** Path under the archive folder: `<tenantId>/<YYYY-MM>[.<part>].csv.gz`; its manifest is `<tenantId>/<YYYY-MM>.sha256`. */
  file: string;
  sha256: string;
  rows: number;
  bytes: number;
  verifiedAt: string;
  restoredAt: string | null;
}

function query(db: Db, tenantId: string) {
  return db
    .selectFrom('cdrArchives')
    .select(['part', 'file', 'sha256', 'rows', 'bytes', 'verifiedAt', 'restoredAt', sql<string>`to_char(month, 'YYYY-MM')`.as('month')])
    .where('tenantId', '=', tenantId)
    .orderBy('month', 'desc')
    .orderBy('part');
}

function view(r: Awaited<ReturnType<ReturnType<typeof query>['execute']>>[number]): ArchiveView {
  return {
    month: r.month,
    part: r.part,
    file: r.file,
    sha256: r.sha256,
    rows: Number(r.rows),
    bytes: Number(r.bytes),
    verifiedAt: r.verifiedAt.toISOString(),
    restoredAt: r.restoredAt?.toISOString() ?? null,
  };
}

export async function listArchives(db: Db, tenantId: string): Promise<ArchiveView[]> {
  return (await query(db, tenantId).execute()).map(view);
}

/** The parts of one archived month of the tenant; 404 when it has none (another tenant's month included). */
export async function archivedMonth(db: Db, tenantId: string, month: string): Promise<ArchiveView[]> {
  const rows = await query(db, tenantId).where('month', '=', monthDate(month)).execute();
  if (rows.length === 0) throw new NotFoundError('archive');
  return rows.map(view);
}
