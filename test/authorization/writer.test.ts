import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../db/embedded.js';
import { ReservationWriter, type ReservationRow } from '../../services/authorization/writer.js';
import { testApp, testDb } from '../support/app.js';
import { newTenant } from '../support/factory.js';
import { newUser } from '../support/accounts.js';

const app = testApp();
const writers: ReservationWriter[] = [];
afterAll(async () => {
  for (const w of writers) await w.close();
});

function writer(options: ConstructorParameters<typeof ReservationWriter>[1] = {}): ReservationWriter {
  const w = new ReservationWriter(testDb().sql, options);
  writers.push(w);
  return w;
}

async function owner() {
  const t = await newTenant(app);
  const u = await newUser(t.id, { balance: '10' });
  return { tenantId: t.id, userId: u.id };
}

function row(o: { tenantId: string; userId: string }, callId: string, extra: Partial<ReservationRow> = {}): ReservationRow {
  const id = randomUUID();
  return {
    tenantId: o.tenantId,
    id,
    userId: o.userId,
    callId,
    callee: '+33612345678',
    rateId: null,
    maxSeconds: 60,
    holdForfaitSeconds: 0,
    holdMoney: '1.0000',
    expiresAt: Date.UTC(2026, 10, 22, 12),
    answer: { decision: 'allow', reservationId: id, destination: 'Réunion mobile' },
    ...extra,
  };
}

type Outcome = { inserted: boolean; err?: unknown };

/** Enqueues the rows in one go; resolves with each row's outcome, in the order the callbacks came. */
function enqueueAll(w: ReservationWriter, rows: ReservationRow[]): Promise<{ order: string[]; outcomes: Map<string, Outcome> }> {
  const order: string[] = [];
  const outcomes = new Map<string, Outcome>();
  return new Promise((resolve) => {
    for (const r of rows)
      w.enqueue(r, (inserted, err) => {
        order.push(r.id);
        outcomes.set(r.id, { inserted, err });
        if (order.length === rows.length) resolve({ order, outcomes });
      });
  });
}

async function stored(tenantId: string) {
  const { db } = testDb();
  return db.selectFrom('reservations').select(['id', 'callId', 'answer', 'maxSeconds']).where('tenantId', '=', tenantId).execute();
}

describe('ReservationWriter (group commit through a shared ring)', () => {
  it('commits a burst larger than its ring, rows wrapping around its end, byte for byte and answered in order', async () => {
    const o = await owner();
    // 4 KB and 8 slots: ~300 rows of ~450 bytes wrap the ring many times and wait in memory for room
    const w = writer({ ringBytes: 4096, ringSlots: 8, maxBatch: 5 });
    const rows = Array.from({ length: 300 }, (_, i) => row(o, `appel-${i}-${'é'.repeat(i % 7)}-${'x'.repeat(i % 150)}`));
    const { order, outcomes } = await enqueueAll(w, rows);

    expect(order).toEqual(rows.map((r) => r.id));
    expect([...outcomes.values()].every((x) => x.inserted && x.err === undefined)).toBe(true);
    const byId = new Map((await stored(o.tenantId)).map((r) => [r.id, r]));
    expect(byId.size).toBe(rows.length);
    for (const r of rows) {
      expect(byId.get(r.id)?.callId).toBe(r.callId);
      expect(JSON.parse(byId.get(r.id)!.answer!)).toEqual(r.answer);
    }
    expect(w.written).toBe(rows.length);
    await w.drain();
  });

  it('a row longer than its scratch buffer still crosses whole', async () => {
    const o = await owner();
    const w = writer();
    const long = row(o, 'long-answer', { answer: { note: 'ü'.repeat(40_000) } });
    const { outcomes } = await enqueueAll(w, [long]);
    expect(outcomes.get(long.id)).toEqual({ inserted: true, err: undefined });
    expect(JSON.parse((await stored(o.tenantId))[0]!.answer!)).toEqual(long.answer);
  });

  it('fails at once a row larger than the whole ring, and the rows behind it still commit', async () => {
    const o = await owner();
    const w = writer({ ringBytes: 2048, ringSlots: 8 });
    const huge = row(o, 'huge', { answer: { note: 'x'.repeat(4096) } });
    const after = [row(o, 'after-1'), row(o, 'after-2')];
    const { order, outcomes } = await enqueueAll(w, [huge, ...after]);
    expect(order[0]).toBe(huge.id); // failed as it was enqueued
    expect(outcomes.get(huge.id)?.inserted).toBe(false);
    expect(String(outcomes.get(huge.id)?.err)).toMatch(/more than the commit ring's 2048/);
    for (const r of after) expect(outcomes.get(r.id)?.inserted).toBe(true);
    expect((await stored(o.tenantId)).map((r) => r.callId).sort()).toEqual(['after-1', 'after-2']);
  });

  it('refuses only the row whose callId the tenant already used; the rows committed with it are kept', async () => {
    const o = await owner();
    const w = writer();
    const first = row(o, 'pbx-42');
    await enqueueAll(w, [first]);
    const again = row(o, 'pbx-42');
    const others = [row(o, 'pbx-43'), row(o, 'pbx-44')];
    const { order, outcomes } = await enqueueAll(w, [others[0]!, again, others[1]!]);

    expect(order).toEqual([others[0]!.id, again.id, others[1]!.id]);
    expect(outcomes.get(again.id)).toEqual({ inserted: false, err: undefined });
    for (const r of others) expect(outcomes.get(r.id)?.inserted).toBe(true);
    expect((await stored(o.tenantId)).map((r) => r.id).sort()).toEqual([first.id, ...others.map((r) => r.id)].sort());
    expect(w.written).toBe(3);
  });

  it('a commit PostgreSQL rejects fails its rows with the error, and the rows after it still commit', async () => {
    const o = await owner();
    const w = writer();
    const bad = row(o, 'too-long-a-call', { maxSeconds: 2 ** 31 }); // out of an integer column's range
    const { outcomes } = await enqueueAll(w, [bad]);
    expect(outcomes.get(bad.id)?.inserted).toBe(false);
    expect(outcomes.get(bad.id)?.err).toMatchObject({ code: '22003' });

    const good = row(o, 'next-call');
    const after = await enqueueAll(w, [good]);
    expect(after.outcomes.get(good.id)).toEqual({ inserted: true, err: undefined });
    expect((await stored(o.tenantId)).map((r) => r.id)).toEqual([good.id]);
  });

  it('drain waits for every queued row; close ends the worker and a later row starts a new one', async () => {
    const o = await owner();
    const w = writer();
    const rows = Array.from({ length: 50 }, (_, i) => row(o, `drain-${i}`));
    let settled = 0;
    for (const r of rows) w.enqueue(r, () => settled++);
    await w.drain();
    expect(settled).toBe(rows.length);
    await w.close();

    const late = row(o, 'after-close');
    const { outcomes } = await enqueueAll(w, [late]);
    expect(outcomes.get(late.id)?.inserted).toBe(true);
    expect(await stored(o.tenantId)).toHaveLength(rows.length + 1);
  });
});

describe('ReservationWriter.ready', () => {
  it('starts the worker and its connection before any row, and says so when it cannot connect', async () => {
    const w = writer();
    await w.ready();
    expect(w.flushes).toBe(0); // connected, nothing committed yet
    const o = await owner();
    const { outcomes } = await enqueueAll(w, [row(o, 'ready-1')]);
    expect([...outcomes.values()]).toEqual([{ inserted: true, err: undefined }]);

    // a database that is not there: ready() rejects rather than hang
    const nowhere = postgres({ host: '127.0.0.1', port: await freePort(), user: 'x', pass: 'x', database: 'x', connect_timeout: 2, max: 1 });
    const lost = new ReservationWriter(nowhere);
    await expect(lost.ready()).rejects.toThrow();
    await nowhere.end();
  });
});
