import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../db/connection.js';
import { insertKey } from '../../services/access/access.js';
import { nextIds } from '../support/accounts.js';
import { uniqueName } from '../support/factory.js';
import { http, type Provisioned } from '../pbx/harness.js';
import { clusterTenant, MOBILE, owners, startCluster, type Cluster } from './cluster.js';

/**
 * Issue 23, points 1 and 2: two real servers on one PostgreSQL. Whichever the
 * PBX asks, the tenant's owner answers, and the answer comes back unchanged.
 */

let cluster: Cluster;
let tenant: Provisioned;
let other: Provisioned;
const alice = { ...nextIds(), balance: '1', numbers: { 1: MOBILE } };
const bob = { ...nextIds(), balance: '1', numbers: { 1: MOBILE } };

const base = (i: number) => cluster.nodes[i]!.base;

describe('two servers, one database: membership and forwarding', () => {
  beforeAll(async () => {
    cluster = await startCluster(2);
    tenant = await clusterTenant(base(0), cluster.resellerKey, 'fwd', [alice], { maxCallSeconds: 30 });
    other = await clusterTenant(base(1), cluster.resellerKey, 'fwd2', [bob]);
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  it('lists both servers, alive, with their addresses', async () => {
    const { servers } = await owners(base(0), cluster.resellerKey);
    expect(servers.map((s) => s.address).sort()).toEqual([base(0), base(1)].sort());
    expect(servers.every((s) => s.alive)).toBe(true);
    expect(servers.filter((s) => s.self).map((s) => s.address)).toEqual([base(0)]);
  });

  it('serves the tenant from its owner whichever server is asked, the answer passed back unchanged', async () => {
    const first = await http(base(0), tenant.pbxKey, 'POST', '/v1/authorize', { identifiant: alice.identifiant, callee: '0612345678', callId: 'fwd-1' });
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ decision: 'allow', maxSeconds: 30 });
    const { byTenant, servers } = await owners(base(1), cluster.resellerKey);
    const owner = servers.find((s) => s.id === byTenant.get(tenant.tenantId))!;
    expect(owner.address).toBe(base(0));

    // the same callId through the other server: forwarded to the owner, which answers the same allow
    const again = await http(base(1), tenant.pbxKey, 'POST', '/v1/authorize', { identifiant: alice.identifiant, callee: '0612345678', callId: 'fwd-1' });
    expect(again.status).toBe(200);
    expect(again.text).toBe(first.text);

    // a second call through the non-owner sees the first one's hold (0.30 of 1.00)
    const second = await http(base(1), tenant.pbxKey, 'POST', '/v1/authorize', { identifiant: alice.identifiant, callee: '0612345678', callId: 'fwd-2' });
    expect(second.json).toMatchObject({ decision: 'allow', maxSeconds: 30 });
    const third = await http(base(1), tenant.pbxKey, 'POST', '/v1/authorize', { identifiant: alice.identifiant, callee: '0612345678', callId: 'fwd-3' });
    const fourth = await http(base(1), tenant.pbxKey, 'POST', '/v1/authorize', { identifiant: alice.identifiant, callee: '0612345678', callId: 'fwd-4' });
    expect(third.json).toMatchObject({ decision: 'allow', maxSeconds: 30 });
    expect(fourth.json).toMatchObject({ decision: 'allow', maxSeconds: 10 });
    const fifth = await http(base(1), tenant.pbxKey, 'POST', '/v1/authorize', { identifiant: alice.identifiant, callee: '0612345678', callId: 'fwd-5' });
    expect(fifth.json).toMatchObject({ decision: 'deny', reason: 'INSUFFICIENT_BALANCE' });

    // the call's end through the non-owner: rated by the owner, its hold released there
    const end = await http(base(1), tenant.pbxKey, 'POST', `/v1/calls/${first.json.reservationId}/end`, { durationSeconds: 12, disposition: 'answered' });
    expect(end.status).toBe(200);
    expect(end.json).toMatchObject({ durationSeconds: 12, cost: '0.1200' });
    const after = await http(base(1), tenant.pbxKey, 'POST', '/v1/authorize', { identifiant: alice.identifiant, callee: '0612345678', callId: 'fwd-6' });
    expect(after.json).toMatchObject({ decision: 'allow', maxSeconds: 18 });
  });

  it('forwards an error answer unchanged too (a 400 of the owner, its envelope and status)', async () => {
    const res = await http(base(1), tenant.pbxKey, 'POST', '/v1/authorize', { identifiant: alice.identifiant, callee: 'not a number', callId: 'fwd-bad' });
    expect(res.status).toBe(400);
    expect(res.json.error).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ field: 'callee', value: 'not a number' }] });
  });

  it('forwards the writes of a tenant key, so the next authorization sees them at once', async () => {
    const top = await http(base(1), tenant.adminKey, 'POST', `/v1/users/${tenant.users.get(alice.identifiant)}/ledger`, {
      kind: 'topup',
      amount: '0.50',
      idempotencyKey: 'fwd-topup',
    });
    expect(top.status).toBe(201);
    const next = await http(base(1), tenant.pbxKey, 'POST', '/v1/authorize', { identifiant: alice.identifiant, callee: '0612345678', callId: 'fwd-7' });
    // 1.50 − 0.12 debited − holds of 0.30 × 2 + 0.10 + 0.18 = 0.50: a 30 s call, then 20 s
    expect(next.json).toMatchObject({ decision: 'allow', maxSeconds: 30 });
    const last = await http(base(0), tenant.pbxKey, 'POST', '/v1/authorize', { identifiant: alice.identifiant, callee: '0612345678', callId: 'fwd-8' });
    expect(last.json).toMatchObject({ decision: 'allow', maxSeconds: 20 });
  });

  it('keeps another tenant on the server that took it', async () => {
    const res = await http(base(0), other.pbxKey, 'POST', '/v1/authorize', { identifiant: bob.identifiant, callee: '0612345678', callId: 'other-1' });
    expect(res.status).toBe(200);
    const { byTenant, servers } = await owners(base(0), cluster.resellerKey);
    expect(servers.find((s) => s.id === byTenant.get(other.tenantId))!.address).toBe(base(0));
  });

  it('GET /v1/cluster: a reseller sees only its tenants; a tenant key is refused', async () => {
    // a second reseller, as test/support/factory.ts makes one, on the cluster's database
    const handle = connect(cluster.url, { max: 1 });
    try {
      const resellerId = (await handle.db.insertInto('resellers').values({ name: uniqueName('reseller') }).returning('id').executeTakeFirstOrThrow()).id;
      const { key } = await insertKey(handle.db, { principal: 'reseller', name: 'other', resellerId });
      const seen = await owners(base(1), key);
      expect(seen.servers).toHaveLength(2);
      expect(seen.byTenant.size).toBe(0);
      const mine = await owners(base(1), cluster.resellerKey);
      expect([...mine.byTenant.keys()].sort()).toEqual([tenant.tenantId, other.tenantId].sort());
    } finally {
      await handle.close();
    }
    const denied = await http(base(0), tenant.adminKey, 'GET', '/v1/cluster');
    expect(denied.status).toBe(403);
    const none = await http(base(0), '', 'GET', '/v1/cluster');
    expect(none.status).toBe(401);
  });
});
