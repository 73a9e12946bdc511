import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../db/embedded.js';
import { nextIds, tariffHeader } from '../support/accounts.js';
import { uniqueName } from '../support/factory.js';
import { embeddedUrl, silentServer, startServerIn, type ServerProcess } from '../support/server.js';
import {
  calleeCalls,
  freeUdpPort,
  http,
  missingBinaries,
  outcomes,
  provision,
  runCaller,
  startCallee,
  startKamailio,
  type CallRow,
  type Child,
  type Kamailio,
  type Provisioned,
} from './harness.js';

/**
 * Issue #19: real SIP calls (sipp) through a real Kamailio running
 * integrations/kamailio/kamailio.cfg, against a real `forfait serve`. The
 * callee echoes Record-Route as a phone does, so BYEs cross Kamailio.
 * Skipped only where kamailio or sipp is not installed, never in CI.
 */
const missing = missingBinaries(['kamailio', 'sipp']);
const inCi = process.env.CI === 'true';
const skip = missing.length > 0 && !inCi;
if (skip) console.warn(`test/pbx/kamailio.test.ts skipped: ${missing.join(', ')} not installed (apt-get install kamailio kamailio-utils-modules kamailio-extra-modules sip-tester)`);

const MOBILE = '+33612345678';
// 0.60 per minute by the second, no connection fee: a call costs 0.01 per second,
// so a balance of 0.06 is a 6-second allowance
const TARIFF = [tariffHeader, '33,France,mobile,0.60,0,1,1,false,,'].join('\n');
/** the callee's short calls hang up 2.7 s after the ACK: 3 s once rounded */
const SHORT_MS = 2700;
const SHORT_S = 3;
const CUT_S = 6;

let dir: string;
let server: ServerProcess | undefined;
let base: string;
let resellerKey: string;
let tenant: Provisioned;
let callee: (Child & { logFile: string }) | undefined;
let kamailio: Kamailio | undefined;
let deadPort: number;
let calleePort: number;
let silent: Awaited<ReturnType<typeof silentServer>> | undefined;
const extra: Kamailio[] = [];

const u = { rich: nextIds(), cut: nextIds(), next: nextIds() };
const unknown = '9999999';

function row(identifiant: string, dialled: string, expectStatus: CallRow['expectStatus'], expectReason: string, mode: CallRow['callee'] = 'short'): CallRow {
  return { fromUser: identifiant, identifiant, dialled, expectStatus, expectReason, callee: mode };
}

async function place(target: number, rows: CallRow[], name: string) {
  const run = await runCaller(dir, target, rows, { name, rate: 10, limit: 1 });
  if (run.exitCode !== 0) {
    throw new Error(`sipp caller exited ${run.exitCode}\n--- log ---\n${run.log}\n--- errors ---\n${run.errors.slice(0, 4000)}\n--- kamailio ---\n${logTail()}`);
  }
  return outcomes(run.log);
}

function logTail(): string {
  return [kamailio, ...extra].map((k) => k?.output().split('\n').filter((l) => l.includes('forfait') || l.includes('ERROR')).slice(-40).join('\n')).join('\n---\n');
}

async function cdrs(): Promise<Map<string, { durationSeconds: number; cost: string; disposition: string; callee: string; identifiant: string; answeredAt: string | null }>> {
  const res = await http(base, tenant.adminKey, 'GET', '/v1/cdrs?limit=500');
  expect(res.status).toBe(200);
  return new Map(res.json.items.map((c: { callId: string }) => [c.callId, c]));
}

async function balance(identifiant: string): Promise<string> {
  const res = await http(base, tenant.adminKey, 'GET', `/v1/users/${tenant.users.get(identifiant)}`);
  return res.json.balance;
}

async function calleeLog() {
  return calleeCalls(await readFile(callee!.logFile, 'utf8').catch(() => ''));
}

describe.skipIf(skip)('Kamailio and sipp against a running Forfait (integrations/kamailio)', () => {
  beforeAll(async () => {
    if (missing.length) throw new Error(`CI must have ${missing.join(', ')}: .ci/run installs them`);
    dir = await mkdtemp(path.join(tmpdir(), 'forfait-pbx-'));
    ({ server, base, resellerKey } = await startServerIn(dir));
    tenant = await provision(base, resellerKey, {
      name: uniqueName('pbx'),
      tariffId: uniqueName('tariff'),
      tariffCsv: TARIFF,
      users: [
        { ...u.rich, balance: '10', numbers: { 1: MOBILE } },
        { ...u.cut, balance: '0.06', numbers: { 1: MOBILE } },
        { ...u.next, balance: '0.08', numbers: { 1: MOBILE } },
      ],
    });
    // a Forfait that accepts connections and never answers (the HTTP timeout), and a port nobody listens on
    silent = await silentServer();
    deadPort = await freePort();

    calleePort = await freeUdpPort();
    callee = await startCallee(dir, calleePort);
    kamailio = await startKamailio({
      dir: path.join(dir, 'kamailio'),
      port: await freeUdpPort(),
      gateway: `sip:127.0.0.1:${calleePort}`,
      forfaitUrl: base,
      forfaitUrl2: `http://127.0.0.1:${deadPort}`,
      key: tenant.pbxKey,
    });
  }, 180_000);

  afterAll(async () => {
    for (const k of [kamailio, ...extra]) await k?.stop();
    await callee?.stop();
    silent?.close();
    if (server) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('connects allowed calls and charges their real seconds, refuses denied ones with 403 and the reason, cuts at maxSeconds', async () => {
    const rows = [
      row(u.rich.identifiant, '0612345678', 200, 'OK'),
      row(u.rich.identifiant, '*1', 200, 'OK'), // speed dial: slot 1
      row(u.rich.identifiant, '0699999999', 403, 'NUMBER_NOT_AUTHORIZED'),
      row(unknown, '0612345678', 403, 'UNKNOWN_USER'),
      row(u.rich.identifiant, '*7', 403, 'EMPTY_KEY'),
      row(u.rich.identifiant, '112', 200, 'OK'), // emergency: allowed, nothing reserved
      row(u.next.identifiant, '0612345678', 200, 'OK'),
      // right after the hang-up: its 0.08 was held by the first call, only its end gives 0.05 back
      row(u.next.identifiant, '0612345678', 200, 'OK'),
      row(u.cut.identifiant, '0612345678', 200, 'OK', 'cut'),
      row(u.cut.identifiant, '0612345678', 403, 'INSUFFICIENT_BALANCE'),
    ];
    const seen = await place(kamailio!.port, rows, 'main');
    expect(seen.map((o) => `${o.status} ${o.reason}`)).toEqual(rows.map((r) => `${r.expectStatus} ${r.expectReason}`));
    const ids = seen.map((o) => o.callId);

    // only the allowed calls reached the callee
    const atCallee = await calleeLog();
    const allowed = rows.flatMap((r, i) => (r.expectStatus === 200 ? [ids[i]!] : []));
    expect([...atCallee.keys()].filter((id) => ids.includes(id)).sort()).toEqual([...allowed].sort());

    const charged = await cdrs();
    for (const i of [0, 1, 6, 7]) {
      const c = atCallee.get(ids[i]!)!;
      expect(c.endedBy, `call ${i + 1} hung up by the callee`).toBe('hungup');
      // what the callee lived, and what Forfait charged: the same whole seconds
      expect(Math.round((c.endedAt! - c.answeredAt!) / 1000), `call ${i + 1} as the callee saw it`).toBe(SHORT_S);
      expect(charged.get(ids[i]!), `call ${i + 1} rated`).toMatchObject({ durationSeconds: SHORT_S, cost: '0.0300', disposition: 'answered', callee: MOBILE });
      expect(charged.get(ids[i]!)!.answeredAt).not.toBeNull();
    }
    expect(SHORT_MS).toBeLessThan(SHORT_S * 1000);

    // the call with 0.06 is cut by Kamailio's BYE at its 6 s (the dialog timer ticks once a
    // second: the BYE leaves within a second of it) and charged exactly those 6 s; without
    // the cut the callee would have hung up after 30 s
    const cut = atCallee.get(ids[8]!)!;
    expect(cut.endedBy).toBe('byed');
    const lived = cut.endedAt! - cut.answeredAt!;
    expect(lived).toBeGreaterThan((CUT_S - 1) * 1000 - 300);
    expect(lived).toBeLessThan((CUT_S + 1) * 1000 + 300);
    expect(charged.get(ids[8]!)).toMatchObject({ durationSeconds: CUT_S, cost: '0.0600', disposition: 'answered' });

    // the free number was allowed without a reservation: nothing to rate
    expect(charged.has(ids[5]!)).toBe(false);
    for (const i of [2, 3, 4, 9]) expect(charged.has(ids[i]!)).toBe(false);
    expect(await balance(u.rich.identifiant)).toBe('9.9400');
    expect(await balance(u.next.identifiant)).toBe('0.0200');
    expect(await balance(u.cut.identifiant)).toBe('0.0000');
  }, 120_000);

  it('fails over to the second Forfait when the first does not answer in time, and can read the identifiant from a header', async () => {
    const k = await startKamailio({
      dir: path.join(dir, 'kamailio-failover'),
      port: await freeUdpPort(),
      gateway: `sip:127.0.0.1:${calleePort}`,
      forfaitUrl: silent!.url,
      forfaitUrl2: base,
      key: tenant.pbxKey,
      httpTimeout: 1,
      identifiantHeader: true,
    });
    extra.push(k);
    const seen = await place(k.port, [{ ...row(u.rich.identifiant, '0612345678', 200, 'OK'), fromUser: 'alice' }], 'failover');
    const cdr = (await cdrs()).get(seen[0]!.callId);
    expect(cdr).toMatchObject({ identifiant: u.rich.identifiant, durationSeconds: SHORT_S, cost: '0.0300' });
  }, 60_000);

  it('when no Forfait answers, refuses calls with 503 but lets emergency numbers through (FORFAIT_UNREACHABLE "free")', async () => {
    const k = await startKamailio({
      dir: path.join(dir, 'kamailio-down'),
      port: await freeUdpPort(),
      gateway: `sip:127.0.0.1:${calleePort}`,
      forfaitUrl: silent!.url,
      forfaitUrl2: `http://127.0.0.1:${deadPort}`,
      key: tenant.pbxKey,
      httpTimeout: 1,
      unreachable: 'free',
    });
    extra.push(k);
    const seen = await place(
      k.port,
      [row(u.rich.identifiant, '112', 200, 'OK'), row(u.rich.identifiant, '0612345678', 503, 'Forfait unreachable')],
      'down',
    );
    const atCallee = await calleeLog();
    expect(atCallee.has(seen[0]!.callId)).toBe(true);
    expect(atCallee.has(seen[1]!.callId)).toBe(false);
  }, 60_000);

  it('refuses every call of a suspended tenant, and leaves no reservation open', async () => {
    const patched = await http(base, resellerKey, 'PATCH', `/v1/tenants/${tenant.tenantId}`, { status: 'suspended' });
    expect(patched.status).toBe(200);
    await place(kamailio!.port, [row(u.rich.identifiant, '0612345678', 403, 'TENANT_SUSPENDED')], 'suspended');

    const sql = postgres(await embeddedUrl(path.join(dir, 'data')), { max: 1, onnotice: () => undefined });
    try {
      const rows = await sql<{ status: string; n: string }[]>`
        SELECT status, count(*)::text AS n FROM reservations WHERE tenant_id = ${tenant.tenantId} GROUP BY status ORDER BY status`;
      // every allowed call with a reservation was ended and rated: 5 in the first test, 1 after failover
      expect(rows).toEqual([{ status: 'rated', n: '6' }]);
    } finally {
      await sql.end();
    }
  }, 60_000);
});
