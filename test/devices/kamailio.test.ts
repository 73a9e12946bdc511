import { serve } from '@hono/node-server';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../api/app.js';
import { defaultConfig } from '../../api/context.js';
import { freePort } from '../../db/embedded.js';
import { call, testDb } from '../support/app.js';
import { freeUdpPort, missingBinaries, scenarios, startChild, startKamailio, type Child, type Kamailio } from '../pbx/harness.js';
import { deviceTenant, freshMac, type DeviceTenant } from './helpers.js';

/**
 * Issue 21 point 2 against the real switch: a sipp phone registers through a
 * real Kamailio running integrations/kamailio/kamailio.cfg (with
 * forfait-devices.cfg), Kamailio reports the REGISTER to Forfait over HTTP,
 * and a restart asked of Forfait goes to Kamailio's JSON-RPC, which sends the
 * NOTIFY (Event: check-sync) to the phone and gives back its answer.
 * Skipped only where kamailio or sipp is not installed, never in CI.
 */
const missing = missingBinaries(['kamailio', 'sipp']);
const skip = missing.length > 0 && process.env.CI !== 'true';
if (skip) console.warn(`test/devices/kamailio.test.ts skipped: ${missing.join(', ')} not installed`);

let dir: string;
let app: App;
let server: Server;
let kamailio: Kamailio | undefined;
let phone: (Child & { log: () => Promise<string> }) | undefined;
let t: DeviceTenant;

/** The phone of integrations/kamailio/sipp/phone.xml: registers `identifiant` with `mac` in its User-Agent, answers NOTIFYs. */
async function startPhone(target: number, identifiant: string, mac: string): Promise<Child & { log: () => Promise<string> }> {
  const inf = path.join(dir, 'phone.csv');
  await writeFile(inf, `SEQUENTIAL\n${identifiant};${mac}\n`);
  const logFile = path.join(dir, 'phone.log');
  const port = await freeUdpPort();
  const c = startChild('sipp', [
    `127.0.0.1:${target}`, '-sf', scenarios.phone, '-oocsf', scenarios.phoneNotify, '-inf', inf, '-i', '127.0.0.1', '-p', String(port), '-t', 'u1',
    '-m', '1', '-d', '120000', '-nostdin', '-trace_logs', '-log_file', logFile, '-trace_err', '-error_file', path.join(dir, 'phone.errors.log'),
  ]);
  return { ...c, log: () => readFile(logFile, 'utf8').catch(() => '') };
}

async function until(what: string, ready: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ready())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms\n--- kamailio ---\n${kamailio?.output().slice(-3000)}\n--- phone ---\n${phone?.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(skip)('devices through a real Kamailio and a sipp phone (integrations/kamailio/forfait-devices.cfg)', () => {
  beforeAll(async () => {
    if (missing.length) throw new Error(`CI must have ${missing.join(', ')}: .ci/run installs them`);
    dir = await mkdtemp(path.join(tmpdir(), 'forfait-devices-'));
    const rpcPort = await freePort();
    const { db, sql } = testDb();
    app = createApp({
      db,
      sql,
      logger: pino({ level: 'silent' }),
      config: { ...defaultConfig, kamailioRpc: { url: `http://127.0.0.1:${rpcPort}/RPC`, timeoutMs: 4_000 } },
    });
    server = serve({ fetch: app.app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    t = await deviceTenant(app);
    kamailio = await startKamailio({
      dir: path.join(dir, 'kamailio'),
      port: await freeUdpPort(),
      gateway: 'sip:127.0.0.1:9',
      forfaitUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      key: t.pbxKey,
      rpcPort,
    });
  });

  afterAll(async () => {
    await phone?.stop();
    await kamailio?.stop();
    await new Promise((resolve) => server?.close(resolve));
    await app?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the phone registers through Kamailio, Forfait shows it registered, and a restart reaches it as NOTIFY check-sync with its 200 recorded', async () => {
    const mac = freshMac();
    const line = t.users[0]!.identifiant;
    const device = await call(app, 'POST', '/v1/devices', { key: t.adminKey, json: { mac, deviceType: t.desk, site: 'Paris', lines: [{ port: 1, identifiant: line }] } });
    expect(device.status, device.text).toBe(201);
    const id = device.json.id as string;
    const status = async () => (await call(app, 'GET', `/v1/devices/${id}/status`, { key: t.adminKey })).json;

    phone = await startPhone(kamailio!.port, line, mac.toUpperCase());
    await until('the phone registered', async () => (await phone!.log()).includes('registered '));
    await until('Forfait shows the device registered', async () => (await status()).status === 'registered');
    const s = await status();
    expect(s.lastRegistration).toMatchObject({ identifiant: line, ip: '127.0.0.1', userAgent: `Yealink SIP-T46U 108.86.0.20 ${mac.toUpperCase()}` });
    expect(s.lastRegistration.contact).toMatch(new RegExp(`^sip:${line}@127\\.0\\.0\\.1:\\d+`));
    // the phone asked for 600 s
    expect(new Date(s.lastRegistration.expiresAt).getTime() - new Date(s.lastRegistration.registeredAt).getTime()).toBe(600_000);

    const restart = await call(app, 'POST', `/v1/devices/${id}/restart`, { key: t.adminKey });
    expect(restart.status, restart.text).toBe(202);
    expect(restart.json).toMatchObject({ deviceId: id, sipStatus: 200, sipReason: 'OK', accepted: true, contact: s.lastRegistration.contact });
    const log = await phone.log();
    const notify = log.split('\n').find((l) => l.startsWith('notify '));
    expect(notify, log).toBeDefined();
    expect(notify).toMatch(/ check-sync /);
    expect((await status()).lastRestart).toMatchObject({ restartId: restart.json.restartId, sipStatus: 200, sipReason: 'OK' });
  });

  it('a phone that went away: the restart answers 202 with 408 (no answer), recorded as such', async () => {
    const mac = freshMac();
    const line = t.users[1]!.identifiant;
    const device = await call(app, 'POST', '/v1/devices', { key: t.adminKey, json: { mac, deviceType: t.desk, site: 'Paris', lines: [{ port: 1, identifiant: line }] } });
    const id = device.json.id as string;
    await phone?.stop();
    phone = await startPhone(kamailio!.port, line, mac);
    await until('Forfait shows the second phone registered', async () => (await call(app, 'GET', `/v1/devices/${id}/status`, { key: t.adminKey })).json.status === 'registered');
    await phone.stop();
    const restart = await call(app, 'POST', `/v1/devices/${id}/restart`, { key: t.adminKey });
    expect(restart.status, restart.text).toBe(202);
    expect(restart.json).toMatchObject({ sipStatus: 408, accepted: false });
    const { db } = testDb();
    const rows = await db.selectFrom('deviceRestarts').select(['sipStatus', 'answeredAt']).where('tenantId', '=', t.id).where('deviceId', '=', id).execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.sipStatus).toBe(408);
    expect(rows[0]!.answeredAt).not.toBeNull();
  });
});
