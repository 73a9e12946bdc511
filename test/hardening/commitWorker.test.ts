/**
 * Issue #24, "every database path releases its connection on every failure":
 * the commit worker (services/authorization/commitWorker.ts), which stores each
 * allowed call's reservation before the PBX gets its allow. A failure there —
 * its connection terminated in the middle of an INSERT, or a statement that
 * PostgreSQL refuses — must never give an allow without a durable reservation:
 * the requests of that batch get a 503 (wave 1: a 500), their holds are let go,
 * nothing of the batch is stored, and the worker and the pool work on.
 *
 * The failures are made deterministic with a trigger on this file's tenants
 * only (the database is shared with other test files): one that refuses the
 * row, one that sleeps until the test has terminated the worker's backend.
 */
import pino from 'pino';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../api/app.js';
import { defaultConfig } from '../../api/context.js';
import { kyselyOn } from '../../db/connection.js';
import { newUser } from '../support/accounts.js';
import { call, unlimited, type Answer } from '../support/app.js';
import { cdrTenant } from '../cdrs/helpers.js';
import { formatMoney4 } from '../../engine/index.js';
import { expectPoolWhole } from '../support/pool.js';

const POOL = 3;
const NAME = `forfait-commit-${process.pid}`;
const WORKER = `${NAME}-reservations`;
const sql = postgres(inject('databaseUrl'), { max: POOL, onnotice: () => undefined, connection: { application_name: NAME } });
const app = createApp({ db: kyselyOn(sql), sql, logger: pino({ level: 'silent' }), config: { ...defaultConfig, rateLimits: unlimited } });
const fn = `forfait_test_commit_${process.pid}`;

afterAll(async () => {
  // a test that failed may leave the worker asleep in the trigger: end that before dropping it
  await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ${WORKER} AND state = 'active'`;
  await sql.unsafe(`DROP FUNCTION IF EXISTS ${fn}() CASCADE`);
  await sql.unsafe(`DROP SEQUENCE IF EXISTS ${fn}_once`);
  await sql.unsafe(`DROP SEQUENCE IF EXISTS ${fn}_stored`);
  await app.close();
  await sql.end({ timeout: 1 });
});

/** A trigger on reservations that runs `body` for rows of `tenantId` only. */
async function trigger(tenantId: string, body: string): Promise<void> {
  await sql.unsafe(`CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ${body}; RETURN NEW; END $$`);
  await sql.unsafe(`CREATE TRIGGER ${fn} BEFORE INSERT ON reservations FOR EACH ROW WHEN (NEW.tenant_id = '${tenantId}') EXECUTE FUNCTION ${fn}()`);
}

async function dropTrigger(): Promise<void> {
  await sql.unsafe(`DROP TRIGGER IF EXISTS ${fn} ON reservations`);
}

let seq = 0;
function authorize(key: string, identifiant: string): Promise<Answer & { callId: string }> {
  const callId = `commit-${process.pid}-${++seq}`;
  return call(app, 'POST', '/v1/authorize', { key, json: { identifiant, callee: '0612345678', callId } }).then((a) => ({ ...a, callId }));
}

/** What is stored and what is held for the tenant: both must be exactly the allows answered. */
async function storedAndHeld(tenantId: string): Promise<{ stored: string[]; held: string[] }> {
  const rows = await sql<{ id: string }[]>`SELECT id::text FROM reservations WHERE tenant_id = ${tenantId} AND status = 'open'`;
  const held = [...(app.authorization.book.loaded(tenantId)?.holds.values() ?? [])].map((h) => h.id);
  return { stored: rows.map((r) => r.id).sort(), held: held.sort() };
}

function expectUnavailable(a: Answer): void {
  expect(a.status, a.text).toBe(503);
  expect(a.json.error).toMatchObject({ code: 'SERVICE_UNAVAILABLE', requestId: expect.any(String) });
  expect(a.headers.get('retry-after')).toBe('5');
  expect(a.text).not.toMatch(/reservations|trigger|terminat|INSERT/i);
}

/** Each answer is an allow: its reservation joins `allowed`. */
function expectAllowed(answers: Answer[], allowed: string[]): void {
  for (const a of answers) {
    expect(a.json?.decision, a.text).toBe('allow');
    allowed.push(a.json.reservationId);
  }
}

/** What is stored and what is held are exactly the allows answered; the worker is connected again; the pool is whole. */
async function expectWhole(tenantId: string, allowed: string[]): Promise<void> {
  expect(await storedAndHeld(tenantId)).toEqual({ stored: [...allowed].sort(), held: [...allowed].sort() });
  const [workers] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = ${WORKER}`;
  expect(workers!.n).toBe(1);
  await expectPoolWhole(sql, POOL);
}

async function setup() {
  const t = await cdrTenant(app);
  const users = await Promise.all([1, 2, 3].map(() => newUser(t.id, { balance: '100', numbers: { 1: '+33612345678' } }, app)));
  const allowed: string[] = [];
  for (const u of users) expectAllowed([await authorize(t.adminKey, u.identifiant)], allowed);
  return { t, users, allowed };
}

describe('the commit worker fails (issue #24.1)', () => {
  beforeAll(async () => {
    await dropTrigger();
  });

  it('a statement PostgreSQL refuses: its batch is a 503, nothing stored or held, and the worker goes on', async () => {
    const { t, users, allowed } = await setup();
    await trigger(t.id, `RAISE EXCEPTION 'refused by the test'`);
    const failed = await Promise.all(users.flatMap((u) => [authorize(t.adminKey, u.identifiant), authorize(t.adminKey, u.identifiant)]));
    await dropTrigger();
    for (const a of failed) expectUnavailable(a);
    expect(await storedAndHeld(t.id)).toEqual({ stored: [...allowed].sort(), held: [...allowed].sort() });

    expectAllowed(await Promise.all(users.map((u) => authorize(t.adminKey, u.identifiant))), allowed);
    await expectWhole(t.id, allowed);
  });

  /** Resolves once the worker's INSERT is running (asleep in the trigger). */
  async function waitForInsert(): Promise<void> {
    for (let i = 0; i < 1000; i++) {
      const [row] = await sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = ${WORKER} AND state = 'active' AND query ILIKE 'insert into reservations%'`;
      if (row!.n > 0) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('the commit worker never started its INSERT');
  }

  /** Terminates the worker's backend while its INSERT runs (asleep in the trigger), until `settled`; how many times. */
  async function terminateInserts(settled: () => boolean, most: number): Promise<number> {
    let n = 0;
    while (!settled() && n < most) {
      const rows = await sql<{ pid: number }[]>`
        SELECT pid FROM pg_stat_activity WHERE application_name = ${WORKER} AND state = 'active' AND query ILIKE 'insert into reservations%'`;
      if (rows.length === 0) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      await sql`SELECT pg_terminate_backend(${rows[0]!.pid})`;
      n++;
    }
    return n;
  }

  it('its connection terminated in the middle of an INSERT: the batch is looked for on a new connection and inserted again', async () => {
    const { t, users, allowed } = await setup();
    // the batch's first row sleeps once (a sequence is not rolled back): the INSERT after the reconnection goes through
    await sql.unsafe(`CREATE SEQUENCE IF NOT EXISTS ${fn}_once`);
    await trigger(t.id, `IF nextval('${fn}_once') = 1 THEN PERFORM pg_sleep(60); END IF`);
    let settled = false;
    const pending = Promise.all(users.map((u) => authorize(t.adminKey, u.identifiant))).finally(() => (settled = true));
    expect(await terminateInserts(() => settled, 1)).toBe(1);
    const answers = await pending;
    await dropTrigger();
    expectAllowed(answers, allowed);
    await expectWhole(t.id, allowed);
  });

  it('its connection lost after its rows were stored: they are found, the allow is answered, nothing is stored twice', async () => {
    const { t, users, allowed } = await setup();
    await sql.unsafe(`CREATE SEQUENCE IF NOT EXISTS ${fn}_stored`);
    await trigger(t.id, `IF nextval('${fn}_stored') = 1 THEN PERFORM pg_sleep(60); END IF`);
    let settled = false;
    const pending = authorize(t.adminKey, users[0]!.identifiant).finally(() => (settled = true));
    await waitForInsert();
    // the worker is asleep before its row reaches the table: store that row as its commit would have, then end its connection
    const [hold] = [...app.authorization.book.loaded(t.id)!.holds.values()].filter((h) => h.committed === undefined);
    await sql`INSERT INTO reservations ${sql({
      tenant_id: t.id,
      id: hold!.id,
      user_id: hold!.account.userId,
      call_id: hold!.callId,
      callee: hold!.answer.callee ?? '',
      rate_id: null,
      max_seconds: hold!.answer.maxSeconds,
      hold_forfait_seconds: hold!.forfait,
      hold_money: formatMoney4(hold!.money),
      expires_at: new Date(hold!.expiresAt),
      answer: JSON.stringify(hold!.answer),
    })}`;
    expect(await terminateInserts(() => settled, 1)).toBe(1);
    const answer = await pending;
    await dropTrigger();
    expectAllowed([answer], allowed);
    expect(answer.json.reservationId).toBe(hold!.id);
    await expectWhole(t.id, allowed);
  });

  it('its connection terminated again and again: a 503, never an allow without its row, nothing stored; then it works on', async () => {
    const { t, users, allowed } = await setup();
    await trigger(t.id, 'PERFORM pg_sleep(60)');
    let settled = false;
    const pending = Promise.all(users.map((u) => authorize(t.adminKey, u.identifiant))).finally(() => (settled = true));
    const kills = await terminateInserts(() => settled, 100);
    const answers = await pending;
    await dropTrigger();
    expect(kills).toBeGreaterThan(1);
    for (const a of answers) {
      if (a.status === 200) throw new Error(`an allow was answered while its reservation was being lost: ${a.text}`);
      expectUnavailable(a);
    }
    expect(await storedAndHeld(t.id)).toEqual({ stored: [...allowed].sort(), held: [...allowed].sort() });

    expectAllowed(await Promise.all(users.map((u) => authorize(t.adminKey, u.identifiant))), allowed);
    await expectWhole(t.id, allowed);
  });
});
