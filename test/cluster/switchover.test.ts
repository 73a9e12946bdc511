import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextIds } from '../support/accounts.js';
import { http, type Provisioned } from '../pbx/harness.js';
import { clusterTenant, MOBILE, owners, startCluster, type Cluster } from './cluster.js';

/**
 * A PostgreSQL switchover as the servers live it (docs/operations.md,
 * "PostgreSQL high availability"): every session ends, and a few seconds later
 * the same address answers read-write again. Patroni and etcd themselves are
 * not run here (see the docs for why); what Forfait must do is: connect again,
 * take its tenants' locks again, keep every answered reservation, and answer
 * meanwhile with a 503 and Retry-After, never an allow it did not commit.
 */

let cluster: Cluster;
let tenant: Provisioned;
const alice = { ...nextIds(), balance: '1', numbers: { 1: MOBILE } };
const base = (i: number) => cluster.nodes[i]!.base;
let n = 0;
const authorize = (i: number) => http(base(i), tenant.pbxKey, 'POST', '/v1/authorize', { identifiant: alice.identifiant, callee: MOBILE, callId: `sw-${n++}` });

describe('the database goes away and comes back (a switchover)', () => {
  beforeAll(async () => {
    cluster = await startCluster(2);
    tenant = await clusterTenant(base(0), cluster.resellerKey, 'sw', [alice], { maxCallSeconds: 30 });
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  it('servers connect again, keep the answered holds, and answer 503 with Retry-After while it is down', async () => {
    try {
      await switchover();
    } catch (err) {
      // what the servers said, with the failure (a crash shows there)
      const said = cluster.nodes.map((nd, i) => `--- server ${i} (exit ${nd?.server.child.exitCode})\n${nd?.server.output().slice(-4000)}`).join('\n');
      throw new Error(`${String(err)}\n${said}`);
    }
  }, 120_000);
});

async function switchover(): Promise<void> {
  {
    const held = await authorize(0);
    expect(held.json).toMatchObject({ decision: 'allow', maxSeconds: 30 });

    const restarting = cluster.restartDatabase(3000);
    // while it is down: no allow that was not committed
    const during: { status: number; decision?: string }[] = [];
    let done = false;
    void restarting.then(() => {
      done = true;
    });
    while (!done) {
      for (const i of [0, 1]) {
        const r = await authorize(i).catch(() => ({ status: 0, json: undefined }));
        during.push({ status: r.status, decision: r.json?.decision });
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    await restarting;

    // within 5 s of its return both servers answer again, and the hold of the first call is still there
    const back = performance.now();
    let answer: Awaited<ReturnType<typeof authorize>> | undefined;
    while (performance.now() - back < 5000) {
      answer = await authorize(1);
      if (answer.status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    console.info(`answering again ${(performance.now() - back).toFixed(0)} ms after PostgreSQL came back; during: ${JSON.stringify(during.map((d) => d.status))}`);
    expect(answer?.status).toBe(200);

    // the reservations the servers answered: all committed, still open
    const allowed = [held.json.reservationId, ...(answer?.json?.reservationId ? [answer.json.reservationId] : [])];
    const rows = await cluster.sql<{ n: number }[]>`select count(*)::int as n from reservations where id in ${cluster.sql(allowed)} and status = 'open'`;
    expect(rows[0]!.n).toBe(allowed.length);
    // what was answered during the outage: a 503 with Retry-After, or a decision whose reservation exists
    for (const d of during) expect([200, 503]).toContain(d.status);
    const open = await cluster.sql<{ n: number }[]>`select count(*)::int as n from reservations where tenant_id = ${tenant.tenantId} and status = 'open'`;
    const answeredAllows = during.filter((d) => d.decision === 'allow').length + allowed.length;
    expect(open[0]!.n).toBe(answeredAllows);

    // 1.00 of credit: every open hold of 0.30 counted, whichever server is asked
    const left = 100 - answeredAllows * 30;
    // server 0 may still be taking its tenants' locks again (its lock session was replaced): the fence
    // answers 503 "ask again" meanwhile, and a PBX asks again, as this probe does, within 5 s
    let probe = await authorize(0);
    for (const until = performance.now() + 5000; probe.status === 503 && performance.now() < until; ) {
      await new Promise((r) => setTimeout(r, 200));
      probe = await authorize(0);
    }
    if (left > 0) expect(probe.json).toMatchObject({ decision: 'allow', maxSeconds: Math.min(30, left) });
    else expect(probe.json).toMatchObject({ decision: 'deny', reason: 'INSUFFICIENT_BALANCE' });

    // both servers are members again, their lock sessions connected
    let alive = 0;
    for (let i = 0; i < 100 && alive < 2; i++) {
      alive = (await owners(base(0), cluster.resellerKey)).servers.filter((s) => s.alive).length;
      if (alive < 2) await new Promise((r) => setTimeout(r, 200));
    }
    expect(alive).toBe(2);
  }
}
