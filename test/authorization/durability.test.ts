import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../db/embedded.js';
import { api, embeddedUrl, healthy, postmasterPid, spawnServer } from '../support/server.js';

/**
 * An allow is answered only after its reservation is committed. Here a burst of
 * authorizations is answered, then the Forfait process AND its PostgreSQL are
 * SIGKILLed at once (a power cut, as far as processes go). After a restart,
 * every reservation that was answered must be there, open, still holding its
 * credit: a server that answered before the commit loses some of them.
 */
let dataDir: string;

afterAll(async () => {
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('durability of answered allows', () => {
  it('survives SIGKILL of the server and its database right after a burst', async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'forfait-durable-'));
    const port = await freePort();
    // every commit waits 20 ms before its WAL flush: an answer sent before the
    // commit would reach this test well before the reservation is on disk
    const slowCommits = { FORFAIT_PG_SETTINGS: 'commit_delay=20000,commit_siblings=0' };
    let server = spawnServer(dataDir, port, slowCommits);
    await healthy(port);
    const reseller = (await readFile(path.join(dataDir, 'bootstrap-key'), 'utf8')).trim();

    const csv = 'prefix,destination,class,price_per_minute,connection_fee,first_increment,next_increment,forfait_eligible\n336,France mobile,mobile,6,0.2,1,1,true\n';
    const put = await fetch(`http://127.0.0.1:${port}/v1/tariffs/durable`, { method: 'PUT', headers: { authorization: `Bearer ${reseller}`, 'content-type': 'text/csv' }, body: csv });
    expect(put.status).toBe(200);
    const tenant = await api(port, reseller, 'POST', '/v1/tenants', { name: 'Durable SA', productType: 'pro', tariffId: 'durable', maxCallSeconds: 30 });
    expect(tenant.status).toBe(201);
    const admin = tenant.json.adminKey as string;
    const pbx = (await api(port, admin, 'POST', '/v1/keys', { name: 'pbx', principal: 'pbx' })).json.key as string;
    const identifiants = ['1000001', '1000002', '1000003', '1000004'];
    for (const [i, identifiant] of identifiants.entries()) {
      const u = await api(port, admin, 'POST', '/v1/users', {
        fullName: `Caller ${i}`,
        matricule: `0000000000000${i}`,
        identifiant,
        authorizedNumbers: ['+33612345678'],
      });
      expect(u.status).toBe(201);
      const top = await api(port, admin, 'POST', `/v1/users/${u.json.id}/ledger`, { kind: 'topup', amount: '100', idempotencyKey: 'start' });
      expect(top.status).toBe(201);
    }

    // a burst: each 30 s call holds 3.20 of 100, so all of these are allowed;
    // the moment the last answer is in, SIGKILL the Forfait process and its whole PostgreSQL
    const pgPid = await postmasterPid(dataDir);
    const burst = await Promise.all(
      Array.from({ length: 120 }, (_, i) =>
        api(port, pbx, 'POST', '/v1/authorize', { identifiant: identifiants[i % 4], callee: '0612345678', callId: `burst-${i}` }),
      ),
    ).finally(() => {
      server.child.kill('SIGKILL');
      process.kill(-pgPid, 'SIGKILL');
    });
    await server.exited;

    const answered = burst.filter((r) => r.status === 200 && r.json.decision === 'allow').map((r) => r.json);
    expect(answered.length).toBe(120);

    // a new port: the first one may have been handed to another test's server meanwhile
    const port2 = await freePort();
    server = spawnServer(dataDir, port2, slowCommits);
    await healthy(port2);
    const sql = postgres(await embeddedUrl(dataDir), { max: 1, onnotice: () => undefined });
    try {
      const rows = await sql<{ id: string; status: string; hold_money: string; call_id: string }[]>`
        select id, status, hold_money::text, call_id from reservations`;
      const byId = new Map(rows.map((r) => [r.id, r]));
      for (const a of answered) {
        const r = byId.get(a.reservationId);
        expect(r, `answered reservation ${a.reservationId} is gone`).toBeDefined();
        expect(r!.status).toBe('open');
        expect(r!.hold_money).toBe('3.2000');
      }
      // and the restarted server counts them: 30 holds of 3.20 leave 4.00, so
      // the next call of each user may last (4.00 − 0.2) / 6 × 60 = 38 s at most — capped at 30
      // … and after 1 more hold (3.20) only 0.80 is left: 6 s
      for (const identifiant of identifiants) {
        const more = await api(port2, pbx, 'POST', '/v1/authorize', { identifiant, callee: '0612345678' });
        expect(more.json).toMatchObject({ decision: 'allow', maxSeconds: 30 });
        const last = await api(port2, pbx, 'POST', '/v1/authorize', { identifiant, callee: '0612345678' });
        expect(last.json).toMatchObject({ decision: 'allow', maxSeconds: 6 });
      }
      // a PBX retrying an answered call id gets the same reservation back
      const retry = await api(port2, pbx, 'POST', '/v1/authorize', { identifiant: identifiants[0], callee: '0612345678', callId: 'burst-0' });
      expect(retry.json.reservationId).toBe(answered[0].reservationId);
    } finally {
      await sql.end();
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    }
  }, 180_000);
});
