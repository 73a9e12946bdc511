/**
 * The CDR storage jobs (issue 22): monthly partitions made ahead (the current
 * UTC month and the next two, so the month boundary never waits on a partition
 * being made), and the archive of months past each tenant's retention.
 */
import type { Db } from '../db/connection.js';
import { ensureMonths, monthStartMs } from '../db/repositories/cdrPartitions.js';
import { addMonths, archiveDueMonths, type ArchiveRun } from '../services/archives/archive.js';

/** Months made ahead of `now`, its own included. */
export const MONTHS_AHEAD = 2;

export async function ensurePartitionsAhead(db: Db, now: Date): Promise<number[]> {
  const first = monthStartMs(now.getTime());
  const months = Array.from({ length: MONTHS_AHEAD + 1 }, (_, k) => addMonths(first, k));
  await ensureMonths(db, months);
  return months;
}

export async function archiveCdrs(db: Db, dir: string, now: Date): Promise<ArchiveRun> {
  return archiveDueMonths(db, { dir, now });
}
