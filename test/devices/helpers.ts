import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { expect } from 'vitest';
import { createApp, type App } from '../../api/app.js';
import { defaultConfig, type Config } from '../../api/context.js';
import { newUser } from '../support/accounts.js';
import { call, testDb } from '../support/app.js';
import { newTenant, resellerKey, type TenantFixture } from '../support/factory.js';

/** A clock the test moves by hand. */
export class TestClock {
  constructor(public time = new Date('2026-11-03T09:00:00Z')) {}
  now = () => new Date(this.time);
  advance(ms: number): void {
    this.time = new Date(this.time.getTime() + ms);
  }
}

export function clockedApp(clock: TestClock, config: Partial<Config> = {}): App {
  const { db, sql } = testDb();
  return createApp({ db, sql, logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), config: { ...defaultConfig, ...config }, clock: clock.now });
}

/** A MAC nobody else in the run has (locally administered, unicast). */
export function freshMac(): string {
  return `02:${randomBytes(5).toString('hex').match(/../g)!.join(':')}`;
}

export interface DeviceTenant extends TenantFixture {
  /** device type codes: a 2-port desk phone, a 1-port one, a 4-port DECT base */
  desk: string;
  single: string;
  dect: string;
  /** approved: desk + dect at Paris; single only at Lyon */
  users: { id: string; identifiant: string }[];
  pbxKey: string;
}

/** A tenant with device types in its reseller's catalog, two sites approving some, four users and a pbx key. */
export async function deviceTenant(app: App): Promise<DeviceTenant> {
  const reseller = await resellerKey();
  const t = await newTenant(app, { productType: 'pro', timezone: 'Europe/Paris' });
  const tag = randomBytes(4).toString('hex');
  const types = { desk: `desk-${tag}`, single: `single-${tag}`, dect: `dect-${tag}` };
  for (const [code, ports, dect] of [
    [types.desk, 2, false],
    [types.single, 1, false],
    [types.dect, 4, true],
  ] as const) {
    const r = await call(app, 'POST', '/v1/device-types', { key: reseller.key, json: { code, vendor: 'Yealink', model: code.toUpperCase(), ports, dect } });
    expect(r.status, r.text).toBe(201);
  }
  for (const [name, approved] of [
    ['Paris', [types.desk, types.dect]],
    ['Lyon', [types.single]],
  ] as const) {
    const r = await call(app, 'POST', '/v1/sites', { key: t.adminKey, json: { name, deviceTypes: approved } });
    expect(r.status, r.text).toBe(201);
  }
  const users = [];
  for (let i = 0; i < 4; i++) users.push(await newUser(t.id, {}));
  const pbx = await call(app, 'POST', '/v1/keys', { key: t.adminKey, json: { name: 'pbx', principal: 'pbx' } });
  return { ...t, ...types, users, pbxKey: pbx.json.key };
}

export function csvPost(app: App, key: string, path: string, body: string) {
  return call(app, 'POST', path, { key, body, headers: { 'content-type': 'text/csv' } });
}
