/** Random but reproducible CDRs for the indicator tests, sent through POST /v1/cdrs. */
import { DateTime } from 'luxon';
import type { App } from '../../api/app.js';
import { call } from '../support/app.js';

export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CALLEES = ['0142000000', '0145123456', '0612345678', '0698765432', '0755123456', '+442071234567', '112'];
const SITES = ['Paris', 'Lyon', 'Nantes', null];
const LINES = ['L01', 'L02', 'L03', 'L04', 'L05', 'L06', 'L07', 'L08', null];
const CALLERS = ['+33140000001', '+33140000002', '+33140000003'];
const EXTERNAL = ['+33611111111', '+33622222222', '+33633333333', '+33644444444'];
const DISPOSITIONS = ['no_answer', 'busy', 'failed'] as const;

export interface Spread {
  /** ISO start of the window, in the zone */
  start: string;
  days: number;
  zone: string;
}

/** n CDRs of random shape in the window: both directions, every disposition, lines missing now and then. */
export function randomCdrs(rand: () => number, n: number, identifiants: string[], spread: Spread, prefix: string): Record<string, unknown>[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const start = DateTime.fromISO(spread.start, { zone: spread.zone }).toMillis();
  const span = spread.days * 86_400_000;
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const at = DateTime.fromMillis(start + Math.floor(rand() * span / 1000) * 1000, { zone: spread.zone });
    const direction = rand() < 0.7 ? 'out' : 'in';
    const answered = rand() < 0.7;
    const disposition = answered ? 'answered' : pick(DISPOSITIONS);
    // an unanswered call may still carry seconds (ringing): never talk time
    const durationSeconds = answered ? Math.floor(rand() * 900) : rand() < 0.2 ? Math.floor(rand() * 30) : 0;
    const line = pick(LINES);
    out.push({
      callId: `${prefix}-${i}`,
      identifiant: direction === 'out' || rand() < 0.5 ? pick(identifiants) : undefined,
      caller: direction === 'out' ? pick(CALLERS) : pick(EXTERNAL),
      callee: direction === 'out' ? pick(CALLEES) : '0140000000',
      direction,
      // half with the zone's offset, half in UTC: both must land in the same local buckets
      startedAt: rand() < 0.5 ? at.toISO() : at.toUTC().toISO(),
      durationSeconds,
      disposition,
      site: pick(SITES),
      ...(line === null ? {} : { line }),
    });
  }
  return out;
}

export async function postCdrs(app: App, key: string, cdrs: Record<string, unknown>[], batch = 400): Promise<number> {
  let accepted = 0;
  for (let i = 0; i < cdrs.length; i += batch) {
    const res = await call(app, 'POST', '/v1/cdrs', { key, json: cdrs.slice(i, i + batch) });
    if (res.status !== 200) throw new Error(`POST /v1/cdrs: ${res.status} ${res.text}`);
    accepted += res.json.accepted;
  }
  return accepted;
}
