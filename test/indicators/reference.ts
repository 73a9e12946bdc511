/**
 * SPEC §8 computed the plainest way, independently of the SQL: every CDR of the
 * tenant read back, bucketed with luxon in the tenant's zone, money summed as
 * bigint 1/10000 units. The API must answer exactly this.
 */
import { DateTime } from 'luxon';
import { parseInstant } from '../../engine/index.js';
import { testDb } from '../support/app.js';
import type { Granularity, Indicators } from '../../services/indicators/query.js';

export interface CdrFact {
  startedAt: Date;
  direction: 'in' | 'out';
  disposition: string;
  durationSeconds: number;
  site: string | null;
  line: string | null;
  caller: string | null;
  class: string | null;
  destination: string | null;
  cost: string;
}

export async function cdrFacts(tenantId: string): Promise<CdrFact[]> {
  const { sql } = testDb();
  return sql<CdrFact[]>`
    SELECT started_at AS "startedAt", direction, disposition, duration_seconds AS "durationSeconds", site, line, caller,
           class, destination, cost::text AS cost
      FROM cdrs WHERE tenant_id = ${tenantId}`;
}

function units(s: string): bigint {
  const [i = '0', f = ''] = s.split('.');
  return BigInt(i + f.padEnd(4, '0').slice(0, 4));
}
function money(u: bigint): string {
  const s = u.toString().padStart(5, '0');
  return `${s.slice(0, -4)}.${s.slice(-4)}`;
}
/** Code-unit order, nulls last (the API sorts with COLLATE "C"). */
function cmp(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return a < b ? -1 : 1;
}

export interface RefQuery {
  from: string;
  to: string;
  granularity: Granularity;
  site?: string;
  line?: string;
  class?: string;
  top?: number;
}

export function referenceIndicators(facts: CdrFact[], tenant: { timezone: string; currency: string; locale: string }, q: RefQuery): Indicators {
  const zone = tenant.timezone;
  const from = parseInstant(q.from, zone)!;
  const to = parseInstant(q.to, zone)!;
  const g = q.granularity;
  const top = q.top ?? 10;
  const iso = (d: DateTime) => d.toISO({ suppressMilliseconds: true })!;
  const rows = facts.filter((c) => {
    const t = c.startedAt.getTime();
    if (t < from || t >= to) return false;
    if (q.site !== undefined && c.site !== q.site) return false;
    if (q.class !== undefined && c.class !== q.class) return false;
    if (q.line !== undefined && (c.line ?? c.caller) !== q.line) return false;
    return true;
  });

  type P = { at: DateTime; oc: number; oa: number; ic: number; ia: number; talk: number; cost: bigint };
  const points = new Map<number, P>();
  for (let b = DateTime.fromMillis(from, { zone }).startOf(g); b.toMillis() < to; b = b.plus({ [`${g}s`]: 1 }).startOf(g)) {
    points.set(b.toMillis(), { at: b, oc: 0, oa: 0, ic: 0, ia: 0, talk: 0, cost: 0n });
  }
  const out = { calls: 0, answered: 0, talk: 0, cost: 0n };
  const inc = { calls: 0, answered: 0, talk: 0 };
  const dests = new Map<string, { destination: string | null; class: string | null; calls: number; seconds: number; cost: bigint }>();
  const lines = { out: new Map<string | null, { calls: number; seconds: number }>(), in: new Map<string | null, { calls: number; seconds: number }>() };
  for (const c of rows) {
    const ok = c.disposition === 'answered';
    const talk = ok ? c.durationSeconds : 0;
    const bucket = DateTime.fromJSDate(c.startedAt, { zone }).startOf(g).toMillis();
    const p = points.get(bucket)!;
    p.talk += talk;
    p.cost += units(c.cost);
    if (c.direction === 'out') {
      p.oc++;
      if (ok) p.oa++;
      out.calls++;
      if (ok) out.answered++;
      out.talk += talk;
      out.cost += units(c.cost);
      const k = `${c.destination}|${c.class}`;
      const d = dests.get(k) ?? { destination: c.destination, class: c.class, calls: 0, seconds: 0, cost: 0n };
      d.calls++;
      d.seconds += talk;
      d.cost += units(c.cost);
      dests.set(k, d);
    } else {
      p.ic++;
      if (ok) p.ia++;
      inc.calls++;
      if (ok) inc.answered++;
      inc.talk += talk;
    }
    const ln = c.line ?? c.caller;
    const m = lines[c.direction];
    const l = m.get(ln) ?? { calls: 0, seconds: 0 };
    l.calls++;
    l.seconds += talk;
    m.set(ln, l);
  }
  const topOf = (m: Map<string | null, { calls: number; seconds: number }>) =>
    [...m.entries()]
      .map(([line, v]) => ({ line, calls: v.calls, seconds: v.seconds }))
      .sort((a, b) => b.calls - a.calls || b.seconds - a.seconds || cmp(a.line, b.line))
      .slice(0, top);
  return {
    period: { from: iso(DateTime.fromMillis(from, { zone })), to: iso(DateTime.fromMillis(to, { zone })), timezone: zone, granularity: g },
    currency: tenant.currency,
    locale: tenant.locale,
    outgoing: {
      calls: out.calls,
      answered: out.answered,
      talkSeconds: out.talk,
      cost: money(out.cost),
      byDestination: [...dests.values()]
        .sort((a, b) => b.calls - a.calls || b.seconds - a.seconds || cmp(a.destination, b.destination) || cmp(a.class, b.class))
        .map((d) => ({ ...d, cost: money(d.cost) })),
      topLines: topOf(lines.out),
    },
    incoming: { calls: inc.calls, missed: inc.calls - inc.answered, talkSeconds: inc.talk, topLines: topOf(lines.in) },
    series: [...points.values()].map((p) => ({
      start: iso(p.at),
      outgoingCalls: p.oc,
      outgoingAnswered: p.oa,
      incomingCalls: p.ic,
      incomingMissed: p.ic - p.ia,
      talkSeconds: p.talk,
      cost: money(p.cost),
    })),
  };
}
