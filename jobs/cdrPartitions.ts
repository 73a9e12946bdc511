/**
 * The CDR storage jobs (issue 22): monthly partitions made ahead (the current
 * UTC month and the next two, so the month boundary never waits on a partition
 * being made), and the archive of months past each tenant's retention.
 */
import type { Db } from '../db/connection.js';
import { clusterOnUsers, ensureMonths, listPartitions, monthStartMs, userIndexes } from '../db/repositories/cdrPartitions.js';
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

/**
 * Closed months rewritten in user order (issue 22): a user's month of calls read
 * cold is ~1,000 pages when rows lie in time order, a few dozen once clustered
 * (benchmarks/RESULTS.md, "history"). A month is closed `graceDays` after it
 * ended (late CDRs mostly in, invoices issued); each is clustered once (CLUSTER
 * marks the index), at night, as it locks the partition while it rewrites it;
 * only the last two closed months, so a first start does not rewrite years.
 */
export async function clusterClosedMonths(db: Db, now: Date, graceDays = 3): Promise<string[]> {
  // months that ended graceDays ago or more, the last two of them (older ones are left as they are)
  const closedBefore = monthStartMs(now.getTime() - graceDays * 86_400_000);
  const oldest = addMonths(closedBefore, -2);
  const months = new Map((await listPartitions(db)).map((p) => [p.name, p.month.getTime()]));
  const done: string[] = [];
  for (const ix of await userIndexes(db)) {
    const month = months.get(ix.partition);
    if (month === undefined || ix.clustered || addMonths(month, 1) > closedBefore || month < oldest) continue;
    await clusterOnUsers(db, ix.partition, ix.index);
    done.push(ix.partition);
  }
  return done;
}
