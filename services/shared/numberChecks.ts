/**
 * Numbers outside the ranges the metadata knows, met by the paths that accept
 * them (CDRs rated, authorizations decided): counted here, in the process, and
 * read by the metrics endpoint (api/metrics.ts, forfait_unknown_range_numbers_total).
 * A rising count says the number metadata (libphonenumber-js) needs updating.
 */
export type NumberCheckPath = 'cdrs' | 'authorize';

const counts: Record<NumberCheckPath, number> = { cdrs: 0, authorize: 0 };

export function countUnknownRange(path: NumberCheckPath, n = 1): void {
  counts[path] += n;
}

/** The counts since the process started. */
export function unknownRangeCounts(): Readonly<Record<NumberCheckPath, number>> {
  return counts;
}
