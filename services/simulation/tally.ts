/**
 * The sums of a what-if simulation (issue 25), pure: each CDR of a tenant goes
 * through the rerate's compute step (services/cdrs/rerateCompute.ts) and is
 * counted here with its current and its simulated cost. Amounts are integer
 * 1/10000 units (Money4) throughout; a tenant's sums stay far below 2^53.
 */
import { RerateComputer, type RerateRow, type RerateRules, type RerateUser } from '../cdrs/rerateCompute.js';
import type { PeriodUsage } from '../cdrs/forfaitUsage.js';

/** Calls, billable seconds and costs before and after, of a tenant, a user or a destination. */
export interface Sums {
  calls: number;
  currentBillableSeconds: number;
  simulatedBillableSeconds: number;
  /** 1/10000 units */
  currentCost: number;
  simulatedCost: number;
}

export interface TenantTally {
  tenantId: string;
  /** CDRs left as they are (no rate for the callee under the simulated tariff, or the user is gone): counted at their current cost. */
  skipped: number;
  /** CDRs whose rating would change. */
  changed: number;
  sums: Sums;
  users: { userId: string; sums: Sums }[];
  /** By destination under the simulated tariff (the current one for skipped CDRs; '' when none). */
  destinations: { destination: string; sums: Sums }[];
}

const emptySums = (): Sums => ({ calls: 0, currentBillableSeconds: 0, simulatedBillableSeconds: 0, currentCost: 0, simulatedCost: 0 });

function add(s: Sums, row: RerateRow, billable: number, cost: number): void {
  s.calls++;
  s.currentBillableSeconds += row.billableSeconds;
  s.simulatedBillableSeconds += billable;
  s.currentCost += row.cost;
  s.simulatedCost += cost;
}

/** One tenant's CDRs, in id order, rated again and summed. */
export class TenantTallier {
  private readonly computer: RerateComputer;
  private readonly total = emptySums();
  private readonly byUser = new Map<string, Sums>();
  private readonly byDestination = new Map<string, Sums>();
  private skipped = 0;
  private changed = 0;

  constructor(
    private readonly tenantId: string,
    rules: RerateRules,
    usage: PeriodUsage,
    private readonly users: ReadonlyMap<string, RerateUser>,
  ) {
    this.computer = new RerateComputer(rules, usage);
  }

  add(row: RerateRow): void {
    const r = this.computer.rate(row, this.users.get(row.userId));
    let billable = row.billableSeconds;
    let cost = row.cost;
    let destination = row.destination ?? '';
    if (r.kind === 'skipped') this.skipped++;
    else {
      billable = r.rated.billableSeconds;
      cost = r.kind === 'changed' ? r.cost : row.cost;
      destination = r.destination ?? '';
      if (r.kind === 'changed') this.changed++;
    }
    add(this.total, row, billable, cost);
    add(sumsOf(this.byUser, row.userId), row, billable, cost);
    add(sumsOf(this.byDestination, destination), row, billable, cost);
  }

  result(): TenantTally {
    return {
      tenantId: this.tenantId,
      skipped: this.skipped,
      changed: this.changed,
      sums: this.total,
      users: [...this.byUser].map(([userId, sums]) => ({ userId, sums })),
      destinations: [...this.byDestination].map(([destination, sums]) => ({ destination, sums })),
    };
  }
}

function sumsOf(map: Map<string, Sums>, key: string): Sums {
  let s = map.get(key);
  if (s === undefined) {
    s = emptySums();
    map.set(key, s);
  }
  return s;
}

/** The sum of several tallies' sums. */
export function sumAll(all: readonly Sums[]): Sums {
  const out = emptySums();
  for (const s of all) {
    out.calls += s.calls;
    out.currentBillableSeconds += s.currentBillableSeconds;
    out.simulatedBillableSeconds += s.simulatedBillableSeconds;
    out.currentCost += s.currentCost;
    out.simulatedCost += s.simulatedCost;
  }
  return out;
}

/**
 * The rows of `COPY (SELECT …) TO STDOUT` (text format) of SIMULATION_COLUMNS,
 * read as they arrive: a chunk may end in the middle of a line.
 */
export class CopyRowReader {
  private readonly decoder = new TextDecoder();
  private rest = '';

  /** The complete rows of the bytes so far (`end`: the last bytes, no more to come). */
  rows(bytes: Uint8Array | undefined, onRow: (row: RerateRow) => void): number {
    const text = this.rest + (bytes === undefined ? this.decoder.decode() : this.decoder.decode(bytes, { stream: true }));
    let start = 0;
    let n = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      onRow(copyRow(text.slice(start, nl)));
      n++;
      start = nl + 1;
    }
    this.rest = text.slice(start);
    if (bytes === undefined && this.rest !== '') throw new Error('the CDR stream ended in the middle of a row');
    return n;
  }
}

/** What the COPY selects, in the order copyRow reads it. Costs come as integer 1/10000 units. */
export const SIMULATION_COLUMNS = `id, user_id, callee, (extract(epoch FROM started_at) * 1000)::bigint, duration_seconds, disposition, rate_id,
  destination, class, billable_seconds, forfait_seconds, charged_seconds, (cost * 10000)::bigint`;

function copyRow(line: string): RerateRow {
  const f = line.split('\t');
  return {
    id: f[0]!,
    userId: f[1]!,
    callee: text(f[2]!)!,
    startedAtMs: Number(f[3]),
    durationSeconds: Number(f[4]),
    disposition: f[5]!,
    rateId: text(f[6]!),
    destination: text(f[7]!),
    class: text(f[8]!),
    billableSeconds: Number(f[9]),
    forfaitSeconds: Number(f[10]),
    chargedSeconds: Number(f[11]),
    cost: Number(f[12]),
  };
}

const ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\' };

/** A text-format COPY field: \N is NULL, backslash escapes undone. */
function text(field: string): string | null {
  if (field === '\\N') return null;
  if (!field.includes('\\')) return field;
  return field.replace(/\\(.)/g, (_, c: string) => ESCAPES[c] ?? c);
}
