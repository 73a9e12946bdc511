import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextIds } from '../support/accounts.js';
import { http } from '../pbx/harness.js';
import { clusterTenant, MOBILE, owners, startCluster, type Cluster } from './cluster.js';
import { overspent, runLoad, units, type CallRecord, type LoadUser } from './load.js';

/**
 * Issue 23, points 3 and 4: three servers on one PostgreSQL under a PBX load
 * against all three. The owner of the busiest tenant is SIGKILLed mid-load
 * (then started again), or loses its database session; the answers are checked
 * against a reference computed from them (load.ts): every answered allow is
 * still held or ended, no user's holds ever exceed its credit, and the requests
 * caught by the takeover get a 503 with Retry-After or a correct answer.
 *
 * The users' credit is small against the load (0.90: three 30-second holds of
 * 0.30), so most of the time their holds are at their credit: two servers
 * deciding for one tenant, or a new owner that lost a reservation, would allow
 * beyond it, which the reference would find.
 */
const CREDIT = '0.90';
/** Calls per worker (12 workers): the disruption comes once a quarter of them are answered. */
const CALLS = 30;

async function reached(answered: () => number, count: number): Promise<void> {
  while (answered() < count) await new Promise((r) => setTimeout(r, 50));
}

let cluster: Cluster;

const bases = () => cluster.nodes.map((n) => n?.base);

/** Three tenants: the busiest takes 70 % of the calls. */
async function tenants(tag: string): Promise<{ busiest: string; users: { user: LoadUser; weight: number }[] }> {
  const users: { user: LoadUser; weight: number }[] = [];
  let busiest = '';
  for (const [name, count, weight] of [
    ['busy', 3, 70],
    ['mid', 2, 20],
    ['small', 1, 10],
  ] as const) {
    const specs = Array.from({ length: count }, () => ({ ...nextIds(), balance: CREDIT, numbers: { 1: MOBILE } }));
    const p = await clusterTenant(cluster.nodes[0]!.base, cluster.resellerKey, `${tag}-${name}`, specs, { maxCallSeconds: 30 });
    if (name === 'busy') busiest = p.tenantId;
    for (const s of specs) {
      users.push({
        user: { tenantId: p.tenantId, pbxKey: p.pbxKey, userId: p.users.get(s.identifiant)!, identifiant: s.identifiant, balance: CREDIT },
        weight: weight / count,
      });
    }
  }
  return { busiest, users };
}

/** Whose lock session holds the tenant now: its index among the cluster's nodes. */
async function ownerIndex(tenantId: string): Promise<number> {
  const live = cluster.nodes.find((n) => n !== undefined)!;
  const { byTenant, servers } = await owners(live.base, cluster.resellerKey);
  const address = servers.find((s) => s.id === byTenant.get(tenantId))?.address;
  return cluster.nodes.findIndex((n) => n?.base === address);
}

/** Everything the issue asks of the answers, the reservations and the books after a disruption at `disruptedAt`. */
async function verify(
  records: CallRecord[],
  loadUsers: { user: LoadUser }[],
  busiest: string,
  disruptedAt: number,
  what: string,
  killed?: number,
) {
  // within 5 s of the disruption, the busiest tenant is answered again (measured, printed)
  const ms = takeoverMs(records, busiest, disruptedAt);
  console.info(`${what}: ${ms.toFixed(0)} ms to the first answer for the tenant; ${records.length} calls`);
  expect(ms).toBeLessThan(5000);
  const users = loadUsers.map((u) => u.user);
  const tenantIds = [...new Set(users.map((u) => u.tenantId))];
  const rows = await cluster.sql<{ id: string; callId: string; status: string; holdMoney: string; userId: string }[]>`
    select id::text, call_id as "callId", status, hold_money::text as "holdMoney", user_id::text as "userId"
      from reservations where tenant_id in ${cluster.sql(tenantIds)}`;
  const byId = new Map(rows.map((r) => [r.id, r]));
  const tries = records.flatMap((r) => [...r.tries, ...(r.end?.tries ?? [])]);

  // every request got an answer in the end, and along the way only 503 with Retry-After, or the dead server's refusal
  expect(records.filter((r) => r.status === undefined).map((r) => r.callId)).toEqual([]);
  expect(records.filter((r) => r.end && r.end.status === undefined).map((r) => r.callId)).toEqual([]);
  const odd = tries.filter((t) => !(t.status === 200 || t.status === 503 || t.status === 'refused' || t.status === 'failed'));
  expect(odd, 'statuses other than 200, 503 and a refused connection').toEqual([]);
  expect(tries.filter((t) => t.status === 503 && t.retryAfter === null)).toEqual([]);
  // a request that failed mid-way (reset, a kept-alive connection found closed) only at the server that was killed
  for (const t of tries.filter((x) => x.status === 'failed')) expect(t.server).toBe(killed);

  // answers are correct: allows and INSUFFICIENT_BALANCE denials only (every user is known, the number authorized)
  const answers = records.map((r) => r.answer!);
  expect(new Set(answers.map((a) => (a.decision === 'allow' ? 'allow' : a.reason)))).toEqual(new Set(['allow', 'INSUFFICIENT_BALANCE']));

  // every answered allow is a reservation, of that call and user, still open or ended; nothing else was reserved
  const allows = records.filter((r) => r.answer!.decision === 'allow');
  expect(allows.length).toBeGreaterThan(50);
  for (const r of allows) {
    const row = byId.get(r.answer!.reservationId!);
    expect(row, `reservation of ${r.callId}`).toMatchObject({ callId: r.callId, userId: r.user.userId });
    expect(row!.status, `reservation of ${r.callId}`).toBe(r.end ? 'rated' : 'open');
  }
  expect(rows.length).toBe(allows.length);

  // no user's holds ever exceeded its credit
  expect(overspent(records, (id) => units(byId.get(id)!.holdMoney))).toEqual([]);

  // the books now: each user's balance is its credit less what its ended calls cost, and
  // what is left after its open holds is exactly what a new call may use
  for (const u of users) {
    const mine = allows.filter((r) => r.user.userId === u.userId);
    const spent = mine.reduce((s, r) => s + (r.end ? units(r.end.cost ?? '0') : 0), 0);
    const held = mine.reduce((s, r) => s + (r.end ? 0 : units(byId.get(r.answer!.reservationId!)!.holdMoney)), 0);
    const [db] = await cluster.sql<{ balance: string }[]>`select balance::text from users where id = ${u.userId}`;
    expect(units(db!.balance), `balance of ${u.identifiant}`).toBe(units(u.balance) - spent);
    const left = units(u.balance) - spent - held;
    const probe = await http(bases().find((b) => b !== undefined)!, u.pbxKey, 'POST', '/v1/authorize', {
      identifiant: u.identifiant,
      callee: MOBILE,
      callId: `probe-${u.userId}`,
    });
    const seconds = Math.min(30, Math.floor(left / 100));
    if (seconds > 0) expect(probe.json, `what ${u.identifiant} may still use`).toMatchObject({ decision: 'allow', maxSeconds: seconds });
    else expect(probe.json, `what ${u.identifiant} may still use`).toMatchObject({ decision: 'deny', reason: 'INSUFFICIENT_BALANCE' });
  }

  // the busiest tenant's calls were answered by every server, some of them after the disruption
  const busy = records.filter((r) => r.user.tenantId === busiest);
  const servedBy = new Set(busy.flatMap((r) => r.tries.filter((t) => t.status === 200).map((t) => t.server)));
  expect(servedBy.size).toBeGreaterThanOrEqual(2);
  expect(busy.some((r) => r.answeredAt! > disruptedAt + 1000)).toBe(true);
}

/** From the disruption to the first answer (200) for the tenant to a request sent after it. */
function takeoverMs(records: CallRecord[], tenantId: string, at: number): number {
  const after = records
    .filter((r) => r.user.tenantId === tenantId)
    .flatMap((r) => r.tries)
    .filter((t) => t.sentAt >= at && t.status === 200)
    .map((t) => t.at);
  return Math.min(...after) - at;
}

describe('three servers under a PBX load: the owner of the busiest tenant dies', () => {
  beforeAll(async () => {
    cluster = await startCluster(3);
  }, 240_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  it('SIGKILL of the owner: another server takes the tenant within 5 s, no reservation lost, no credit spent twice; back, it does not take it back', async () => {
    const { busiest, users } = await tenants('kill');
    let killedAt = 0;
    let killed = -1;
    let taker = '';
    const records = await runLoad(
      { bases, users, workers: 12, callsPerWorker: CALLS, seed: 23, callee: '0612345678' },
      async (answered) => {
        await reached(answered, (12 * CALLS) / 4);
        killed = await ownerIndex(busiest);
        expect(killed).toBeGreaterThanOrEqual(0);
        killedAt = performance.now();
        await cluster.kill(killed);
        // back two seconds later, on the same port: it must not take the tenant back
        await new Promise((r) => setTimeout(r, 2000));
        const after = await owners(cluster.nodes.find((n) => n !== undefined)!.base, cluster.resellerKey);
        taker = after.byTenant.get(busiest) ?? '';
        await cluster.start(killed);
      },
    );
    await verify(records, users, busiest, killedAt, 'takeover after SIGKILL', killed);
    // the server that came back answers for the tenant (by forwarding), but the tenant stayed with the server that took it
    expect(taker).not.toBe('');
    const busy = users.find((u) => u.user.tenantId === busiest)!.user;
    const call = { identifiant: busy.identifiant, callee: MOBILE, callId: 'after-return' };
    const asked = await http(cluster.nodes[killed]!.base, busy.pbxKey, 'POST', '/v1/authorize', call);
    expect(asked.status).toBe(200);
    const now = await owners(cluster.nodes[killed]!.base, cluster.resellerKey);
    expect(now.byTenant.get(busiest)).toBe(taker);
    expect(now.servers.find((s) => s.self)!.tenants.map((t) => t.id)).not.toContain(busiest);
    // the same callId asked of the owner: the same answer, so it was the owner's
    const owner = now.servers.find((s) => s.id === taker)!.address;
    expect((await http(owner, busy.pbxKey, 'POST', '/v1/authorize', call)).text).toBe(asked.text);
  }, 300_000);

  it('the owner loses its database session: the tenant is served again within 5 s (relocked, or by another server), nothing is spent twice', async () => {
    const { busiest, users } = await tenants('session');
    let cutAt = 0;
    const records = await runLoad(
      { bases, users, workers: 12, callsPerWorker: CALLS, seed: 24, callee: '0612345678' },
      async (answered) => {
        await reached(answered, (12 * CALLS) / 4);
        const owner = await ownerIndex(busiest);
        expect(owner).toBeGreaterThanOrEqual(0);
        cutAt = performance.now();
        const [row] = await cluster.sql<{ pid: number }[]>`
          select lock_pid as pid from servers where address = ${cluster.nodes[owner]!.base}`;
        await cluster.sql`select pg_terminate_backend(${row!.pid})`;
      },
    );
    await verify(records, users, busiest, cutAt, 'service after the owner’s lock session was killed');
    // every server is still a member, alive, its lock session connected again
    const { servers } = await owners(cluster.nodes[0]!.base, cluster.resellerKey);
    expect(servers.filter((s) => s.alive)).toHaveLength(3);
  }, 300_000);

  it('the reference finds credit spent twice (the check can fail)', () => {
    const user: LoadUser = { tenantId: 't', pbxKey: 'k', userId: 'u', identifiant: '1234567', balance: '0.90' };
    const allow = (id: string, at: number): CallRecord => ({
      user,
      callId: id,
      tries: [],
      status: 200,
      answer: { decision: 'allow', maxSeconds: 30, reservationId: id },
      answeredAt: at,
    });
    const fine = [allow('a', 1), allow('b', 2), allow('c', 3)];
    expect(overspent(fine, () => 3000)).toEqual([]);
    // a fourth 30 s hold while three are open: two servers decided against the same credit
    expect(overspent([...fine, allow('d', 4)], () => 3000)).toHaveLength(1);
    // …unless the end of one was sent before it
    const ended = { ...allow('a', 1), end: { sentAt: 3.5, tries: [], status: 200, cost: '0.0200' } };
    expect(overspent([ended, allow('b', 2), allow('c', 3), allow('d', 4)], () => 3000)).toHaveLength(1);
    const cheap = { ...allow('a', 1), end: { sentAt: 3.5, tries: [], status: 200, cost: '0.0000' } };
    expect(overspent([cheap, allow('b', 2), allow('c', 3), allow('d', 4)], () => 3000)).toEqual([]);
  });
});
