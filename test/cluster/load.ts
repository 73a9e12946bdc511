/**
 * A PBX load against several servers, and the reference its answers are
 * checked against. Seeded: the same calls, users and servers in the same order
 * on every run (the timing, and so which calls the takeover catches, varies).
 *
 * Each worker is a PBX trunk: it asks a server (any of them, at random) to
 * authorize a call with its callId; a server that refuses the connection is
 * skipped for the next (what a PBX with several Forfait URLs does); a 503 is
 * tried again 150 ms later with the same callId (the same answer comes back if
 * the first attempt was decided). An allowed call lasts a few tens of
 * milliseconds and is ended the same way; a few are left open (long calls).
 */
import { Decimal } from 'decimal.js';
import { random } from '../fixtures/random.js';

export type Status = number | 'refused' | 'failed';

export interface Try {
  server: number;
  status: Status;
  retryAfter: string | null;
  sentAt: number;
  at: number;
}

export interface LoadUser {
  tenantId: string;
  pbxKey: string;
  userId: string;
  identifiant: string;
  /** The balance when the load starts, with no hold open. */
  balance: string;
}

export interface CallRecord {
  user: LoadUser;
  callId: string;
  tries: Try[];
  /** The final answer (200 or 4xx), and when it was received. */
  status?: number;
  answer?: { decision: string; reason?: string; maxSeconds: number; reservationId?: string };
  answeredAt?: number;
  end?: { sentAt: number; tries: Try[]; status?: number; cost?: string; answeredAt?: number };
}

export interface LoadOptions {
  bases: () => (string | undefined)[];
  users: { user: LoadUser; weight: number }[];
  workers: number;
  /** Calls each worker places: a count, not a duration, so a slow machine runs the same load, only slower. */
  callsPerWorker: number;
  seed: number;
  callee: string;
  /** Calls left open at the end (never ended): their holds must still be there. */
  longCallShare?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One request, as the PBX lives it: its status, or that the server refused the connection or failed mid-way. */
async function ask(base: string | undefined, key: string, path: string, body: unknown): Promise<{ status: Status; json?: unknown; retryAfter: string | null }> {
  if (base === undefined) return { status: 'refused', retryAfter: null };
  try {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(20_000),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined, retryAfter: res.headers.get('retry-after') };
  } catch (err) {
    const code = (err as { cause?: { code?: string } }).cause?.code;
    return { status: code === 'ECONNREFUSED' ? 'refused' : 'failed', retryAfter: null };
  }
}

/** Until an answer that is not a 503 nor a failure (for 60 s at most): the tries, and that answer. */
async function persist(o: LoadOptions, next: () => number, key: string, path: string, body: unknown) {
  const tries: Try[] = [];
  const deadline = performance.now() + 60_000;
  let server = Math.floor(next() * o.bases().length);
  while (performance.now() < deadline) {
    const sentAt = performance.now();
    const r = await ask(o.bases()[server], key, path, body);
    tries.push({ server, status: r.status, retryAfter: r.retryAfter, sentAt, at: performance.now() });
    if (typeof r.status === 'number' && r.status !== 503) return { tries, status: r.status, json: r.json, at: performance.now() };
    if (r.status === 'refused') server = (server + 1) % o.bases().length;
    else {
      await sleep(150);
      server = Math.floor(next() * o.bases().length);
    }
  }
  return { tries, status: undefined, json: undefined, at: undefined };
}

/** The entry that `point` (in [0, total weight)) falls on. */
function weighted<T extends { weight: number }>(items: T[], point: number): T {
  let left = point;
  for (const item of items) {
    left -= item.weight;
    if (left < 0) return item;
  }
  return items[items.length - 1]!;
}

/**
 * Runs the load; `during` runs beside it and is given the number of calls
 * answered so far (to disrupt the servers at a point of the load, not at a time).
 */
export async function runLoad(o: LoadOptions, during: (answered: () => number) => Promise<void>): Promise<CallRecord[]> {
  const records: CallRecord[] = [];
  let answered = 0;
  const total = o.users.reduce((s, u) => s + u.weight, 0);
  const worker = async (w: number) => {
    const next = random(o.seed * 1000 + w);
    for (let n = 0; n < o.callsPerWorker; n++) {
      const { user } = weighted(o.users, next() * total);
      const rec: CallRecord = { user, callId: `w${w}-${n}-${o.seed}`, tries: [] };
      records.push(rec);
      const auth = await persist(o, next, user.pbxKey, '/v1/authorize', { identifiant: user.identifiant, callee: o.callee, callId: rec.callId });
      answered++;
      rec.tries = auth.tries;
      rec.status = auth.status;
      rec.answer = auth.json as CallRecord['answer'];
      rec.answeredAt = auth.at;
      if (rec.status !== 200 || rec.answer?.decision !== 'allow' || !rec.answer.reservationId) continue;
      if (next() < (o.longCallShare ?? 0.03)) continue; // a long call: still talking when the load ends
      await sleep(20 + next() * 120);
      const talked = next() < 0.3;
      const duration = talked ? Math.min(rec.answer.maxSeconds, 1 + Math.floor(next() * 3)) : 0;
      const end: NonNullable<CallRecord['end']> = { sentAt: performance.now(), tries: [] };
      rec.end = end;
      const r = await persist(
        o,
        next,
        user.pbxKey,
        `/v1/calls/${rec.answer.reservationId}/end`,
        { durationSeconds: duration, disposition: talked ? 'answered' : 'no_answer' },
      );
      end.tries = r.tries;
      end.status = r.status;
      end.cost = (r.json as { cost?: string } | undefined)?.cost;
      end.answeredAt = r.at;
    }
  };
  const load = Promise.all(Array.from({ length: o.workers }, (_, w) => worker(w)));
  await during(() => answered);
  await load;
  return records;
}

/** Money in ten-thousandths, exactly (Money4 strings). */
export const units = (money: string): number => new Decimal(money).mul(10_000).toNumber();

export interface Violation {
  userId: string;
  at: number;
  held: number;
  debited: number;
  credit: number;
}

/**
 * The reference: per user, the allows answered (each holding `holdOf` its
 * reservation from the moment its answer was received) and the ends (each
 * releasing its hold and debiting its cost from the moment it was sent). Both
 * are placed as favourably to the servers as the answers allow (a hold as late,
 * a release as early as it can have happened), so a violation is certain:
 * at that moment the holds open plus what was debited exceeded the user's
 * credit, i.e. some credit was spent twice.
 */
export function overspent(records: CallRecord[], holdOf: (reservationId: string) => number): Violation[] {
  type Ev = { at: number; kind: 'release' | 'hold'; id: string; cost: number };
  const byUser = new Map<string, { user: LoadUser; events: Ev[] }>();
  for (const r of records) {
    const id = r.answer?.reservationId;
    if (r.status !== 200 || r.answer?.decision !== 'allow' || !id) continue;
    const u = byUser.get(r.user.userId) ?? { user: r.user, events: [] };
    byUser.set(r.user.userId, u);
    u.events.push({ at: r.answeredAt!, kind: 'hold', id, cost: 0 });
    if (r.end?.status === 200) u.events.push({ at: r.end.sentAt, kind: 'release', id, cost: units(r.end.cost ?? '0') });
  }
  const violations: Violation[] = [];
  for (const { user, events } of byUser.values()) {
    events.sort((a, b) => a.at - b.at || (a.kind === 'release' ? -1 : 1));
    const credit = units(user.balance);
    const open = new Map<string, number>();
    let held = 0;
    let debited = 0;
    for (const e of events) {
      if (e.kind === 'release') {
        held -= open.get(e.id) ?? 0;
        open.delete(e.id);
        debited += e.cost;
        continue;
      }
      const h = holdOf(e.id);
      open.set(e.id, h);
      held += h;
      if (held + debited > credit) violations.push({ userId: user.userId, at: e.at, held, debited, credit });
    }
  }
  return violations;
}
