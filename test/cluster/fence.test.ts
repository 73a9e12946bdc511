import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { FENCED_SQLSTATE, SERVER_SETTING } from '../../services/cluster/fence.js';
import { newUser } from '../support/accounts.js';
import { testApp, testDb } from '../support/app.js';
import { newTenant } from '../support/factory.js';

/**
 * The reservations fence of migration 0080, against the real PostgreSQL: a
 * server's reservation for a tenant another server has claimed is refused,
 * and a claim waits for a reservation being committed, so the new owner's book
 * (read after its claim) sees it.
 */
const url = inject('databaseUrl');
const s1 = randomUUID();
const s2 = randomUUID();
const as = (server: string | undefined) =>
  postgres(url, { max: 1, onnotice: () => undefined, connection: server ? { [SERVER_SETTING]: server } : {} });
const one = as(s1);
const two = as(s2);
const plain = as(undefined);
let tenantId: string;
let userId: string;

function reserve(sql: postgres.Sql | postgres.TransactionSql) {
  const id = randomUUID();
  return sql`
    insert into reservations (tenant_id, id, user_id, call_id, callee, max_seconds, hold_forfait_seconds, hold_money, expires_at)
    values (${tenantId}, ${id}, ${userId}, ${id}, '+33612345678', 30, 0, 0.30, now() + interval '2 minutes')`;
}

const claim = (server: string) =>
  testDb().sql`
    insert into tenant_owners (tenant_id, server_id) values (${tenantId}, ${server})
    on conflict (tenant_id) do update set server_id = excluded.server_id, since = now()`;

describe('the reservations fence (migration 0080)', () => {
  beforeAll(async () => {
    const app = testApp();
    tenantId = (await newTenant(app)).id;
    userId = (await newUser(tenantId, { balance: '5' })).id;
    await app.close();
  });

  afterAll(async () => {
    for (const c of [one, two, plain]) await c.end({ timeout: 5 });
  });

  it('lets the owner reserve and refuses another server, with its SQLSTATE; connections naming no server are not fenced', async () => {
    await claim(s1);
    await reserve(one);
    await expect(reserve(two)).rejects.toMatchObject({ code: FENCED_SQLSTATE });
    await reserve(plain);
    // the tenant passes to s2: s1's next reservation is refused, nothing of it written
    await claim(s2);
    const before = await testDb().sql`select count(*)::int as n from reservations where tenant_id = ${tenantId}`;
    await expect(reserve(one)).rejects.toMatchObject({ code: FENCED_SQLSTATE });
    await reserve(two);
    const after = await testDb().sql`select count(*)::int as n from reservations where tenant_id = ${tenantId}`;
    expect(after[0]!.n).toBe(before[0]!.n + 1);
  });

  it('a tenant nobody claimed is refused to a clustered server (it must hold the lock and claim first)', async () => {
    const other = (await newTenant(testApp())).id;
    const u = (await newUser(other, { balance: '1' })).id;
    const id = randomUUID();
    await expect(
      one`insert into reservations (tenant_id, id, user_id, call_id, callee, max_seconds, hold_forfait_seconds, hold_money, expires_at)
          values (${other}, ${id}, ${u}, ${id}, '+33612345678', 30, 0, 0.30, now() + interval '2 minutes')`,
    ).rejects.toMatchObject({ code: FENCED_SQLSTATE });
  });

  it('a claim waits for the old owner’s reservation being committed, which the new owner then sees', async () => {
    await claim(s1);
    let committed = false;
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const inFlight = one.begin(async (trx) => {
      await reserve(trx);
      await held;
      committed = true;
    });
    // wait until s1's insert holds the owner row (its FOR SHARE), then claim for s2
    for (let i = 0; i < 100; i++) {
      const [r] = await plain`select count(*)::int as n from pg_locks l join pg_class c on c.oid = l.relation
                              where c.relname = 'tenant_owners' and l.mode = 'RowShareLock' and l.granted`;
      if (r!.n > 0) break;
      await new Promise((r2) => setTimeout(r2, 20));
    }
    const claiming = claim(s2).then(() => committed);
    // the claim is blocked on s1's row lock (PostgreSQL says so), not merely slow
    let waiting = false;
    for (let i = 0; i < 100 && !waiting; i++) {
      const [w] = await plain`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%tenant_owners%'`;
      waiting = w!.n > 0;
      if (!waiting) await new Promise((r2) => setTimeout(r2, 20));
    }
    expect(waiting).toBe(true);
    release();
    await inFlight;
    // when the claim went through, s1's reservation was already committed
    expect(await claiming).toBe(true);
    await expect(reserve(one)).rejects.toMatchObject({ code: FENCED_SQLSTATE });
  });
});
