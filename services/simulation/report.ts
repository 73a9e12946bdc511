/**
 * What a simulation answers (issue 25): the tallies of simulate.ts as amounts
 * (4 decimals, like CDR costs), differences in amount and percent, the ten
 * users whose cost changes most and the destinations that gain or lose most;
 * and the CSV, one line per tenant or per user.
 */
import { writeToString } from 'fast-csv';
import { Dec, formatMoney4, type Money4 } from '../../engine/index.js';
import { guardText } from '../exports/csvCells.js';
import { sumAll, type Sums } from './tally.js';
import type { TenantRun } from './simulate.js';

export interface SumsView {
  calls: number;
  currentBillableMinutes: string;
  simulatedBillableMinutes: string;
  currentCost: string;
  simulatedCost: string;
  /** simulated − current: positive when the tariff costs the clients more. */
  difference: string;
  /** difference / current × 100, 2 decimals; null when nothing is paid now. */
  differencePercent: string | null;
}

export interface UserChange extends SumsView {
  userId: string;
  identifiant: string;
  fullName: string;
}

export interface DestinationChange extends SumsView {
  destination: string;
}

export interface TenantSimulation extends SumsView {
  tenantId: string;
  name: string;
  changed: number;
  skipped: number;
  topUsers: UserChange[];
  destinations: { gains: DestinationChange[]; losses: DestinationChange[] };
}

export interface SimulationResult {
  tariffId: string;
  draft: boolean;
  from: string;
  to: string;
  tenants: TenantSimulation[];
  total: SumsView & { changed: number; skipped: number };
}

const TOP = 10;

const money = (units: number) => formatMoney4(units as Money4);
const minutes = (seconds: number) => new Dec(seconds).div(60).toDecimalPlaces(2, Dec.ROUND_HALF_UP).toFixed(2);

export function sumsView(s: Sums): SumsView {
  const diff = s.simulatedCost - s.currentCost;
  return {
    calls: s.calls,
    currentBillableMinutes: minutes(s.currentBillableSeconds),
    simulatedBillableMinutes: minutes(s.simulatedBillableSeconds),
    currentCost: money(s.currentCost),
    simulatedCost: money(s.simulatedCost),
    difference: money(diff),
    differencePercent: s.currentCost === 0 ? null : new Dec(diff).times(100).div(s.currentCost).toDecimalPlaces(2, Dec.ROUND_HALF_UP).toFixed(2),
  };
}

const change = (s: Sums) => s.simulatedCost - s.currentCost;

export function simulationResult(head: { tariffId: string; draft: boolean; from: string; to: string }, runs: readonly TenantRun[]): SimulationResult {
  const tenants = runs.map((run): TenantSimulation => {
    const t = run.tally;
    const users = t.users
      .filter((u) => change(u.sums) !== 0)
      .sort((a, b) => Math.abs(change(b.sums)) - Math.abs(change(a.sums)) || (a.userId < b.userId ? -1 : 1))
      .slice(0, TOP)
      .map((u) => ({ userId: u.userId, ...person(run, u.userId), ...sumsView(u.sums) }));
    const byChange = t.destinations.filter((d) => change(d.sums) !== 0).sort((a, b) => change(b.sums) - change(a.sums) || (a.destination < b.destination ? -1 : 1));
    const view = (d: (typeof byChange)[number]) => ({ destination: d.destination, ...sumsView(d.sums) });
    return {
      tenantId: run.tenantId,
      name: run.name,
      ...sumsView(t.sums),
      changed: t.changed,
      skipped: t.skipped,
      topUsers: users,
      destinations: {
        gains: byChange.filter((d) => change(d.sums) > 0).slice(0, TOP).map(view),
        losses: byChange.filter((d) => change(d.sums) < 0).reverse().slice(0, TOP).map(view),
      },
    };
  });
  const total = sumAll(runs.map((r) => r.tally.sums));
  return {
    ...head,
    tenants,
    total: { ...sumsView(total), changed: runs.reduce((n, r) => n + r.tally.changed, 0), skipped: runs.reduce((n, r) => n + r.tally.skipped, 0) },
  };
}

function person(run: TenantRun, userId: string) {
  return run.people.get(userId) ?? { identifiant: '', fullName: '' };
}

const SUM_HEADERS = ['calls', 'current_billable_minutes', 'simulated_billable_minutes', 'current_cost', 'simulated_cost', 'difference', 'difference_percent'];
const sumCells = (v: SumsView) => [String(v.calls), v.currentBillableMinutes, v.simulatedBillableMinutes, v.currentCost, v.simulatedCost, v.difference, v.differencePercent ?? ''];

/** The CSV of a simulation: one line per tenant (`by=tenant`) or per user with calls in the period (`by=user`). */
export async function simulationCsv(runs: readonly TenantRun[], by: 'tenant' | 'user'): Promise<string> {
  const rows: string[][] = [];
  if (by === 'tenant') {
    rows.push(['tenant_id', 'tenant_name', ...SUM_HEADERS, 'changed', 'skipped']);
    for (const r of runs) rows.push([r.tenantId, guardText(r.name), ...sumCells(sumsView(r.tally.sums)), String(r.tally.changed), String(r.tally.skipped)]);
  } else {
    rows.push(['tenant_id', 'tenant_name', 'user_id', 'identifiant', 'full_name', ...SUM_HEADERS]);
    for (const r of runs) {
      const users = [...r.tally.users].sort((a, b) => (person(r, a.userId).identifiant < person(r, b.userId).identifiant ? -1 : 1));
      for (const u of users) {
        const p = person(r, u.userId);
        rows.push([r.tenantId, guardText(r.name), u.userId, guardText(p.identifiant), guardText(p.fullName), ...sumCells(sumsView(u.sums))]);
      }
    }
  }
  return `${await writeToString(rows)}\n`;
}
