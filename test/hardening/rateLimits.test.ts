/**
 * Issue #24.4, "unlimited bad keys": wave 1 looked every random well-formed key
 * up in the database (about 770 a second from one client took authorize's p99
 * from 5.4 to 51 ms) and cleared its whole bad-key cache past 10,000 entries.
 * Now failed authentications are limited per client address and per key id
 * (429 with Retry-After, counted in /metrics), the key cache ages its entries
 * out one by one, and tenant keys have request limits that never bring a pbx
 * key's authorizations below the floor.
 *
 * In-process requests carry the client address the way @hono/node-server does
 * (env.incoming.socket), so two "machines" can be told apart without sockets.
 * The limits' windows are minutes long: nothing here depends on timing.
 */
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../api/app.js';
import { defaultConfig } from '../../api/context.js';
import { authorize, KeyCache, type Clock } from '../../api/auth.js';
import { errorStatus, toApiError } from '../../api/errors.js';
import { RateLimiter, defaultRateLimits, type RateLimits } from '../../api/limits.js';
import { createMetrics } from '../../api/metrics.js';
import { keyRecord } from '../../services/access/access.js';
import { pbxKey } from '../support/accounts.js';
import { testApp, testDb, unlimited } from '../support/app.js';
import { keyWithRoles, newTenant, type TenantFixture } from '../support/factory.js';

const ATTACKER = '203.0.113.7';
const OTHER = '198.51.100.20';

/** A well-formed key no one holds: the same ones on every run. */
function badKey(i: number): string {
  const h = createHash('sha256').update(`flood-${i}`).digest();
  return `ffk_${h.subarray(0, 8).toString('hex')}_${h.subarray(8).toString('base64url')}`;
}

interface Reply {
  status: number;
  retryAfter: string | null;
  json: any;
}

/** A request from `address`, as the Node server would hand it to the app. */
async function from(app: Hono | App['app'], address: string, method: string, path: string, key?: string, json?: unknown): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (json !== undefined) headers['content-type'] = 'application/json';
  const res = await app.request(path, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) }, {
    incoming: { socket: { remoteAddress: address } },
  });
  const text = await res.text();
  return { status: res.status, retryAfter: res.headers.get('retry-after'), json: text ? JSON.parse(text) : undefined };
}

async function metric(app: App, line: string): Promise<number> {
  const res = await app.app.request('/metrics');
  const text = await res.text();
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found ? Number(found.slice(line.length + 1)) : 0;
}

const authorizeBody = { identifiant: '1234567', callee: '0142000000' };

function limited(r: Reply, maxSeconds: number): void {
  expect(r.status).toBe(429);
  expect(r.json.error).toMatchObject({ code: 'TOO_MANY_REQUESTS', requestId: expect.any(String) });
  const seconds = Number(r.retryAfter);
  expect(Number.isInteger(seconds) && seconds >= 1 && seconds <= maxSeconds, `Retry-After ${r.retryAfter}`).toBe(true);
}

describe('a flood of random well-formed bad keys from one address (issue #24.4)', () => {
  const limits: RateLimits = { ...unlimited, failuresPerAddress: 20, failureWindowSeconds: 600, blockSeconds: 600 };
  let app: App;
  let t: TenantFixture;
  let pbx: string;

  /** The app's warnings, as pino writes them. */
  const logged: { limit?: string; address?: string; msg: string }[] = [];

  beforeAll(async () => {
    const { db, sql } = testDb();
    const logger = pino({ level: 'warn' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
    app = createApp({ db, sql, logger, config: { ...defaultConfig, rateLimits: limits } });
    t = await newTenant(app);
    pbx = await pbxKey(app, t);
  });

  it('gets 429 with Retry-After once past the limit, without a look-up, counted; the PBX behind the same address is answered', async () => {
    expect((await from(app.app, ATTACKER, 'POST', '/v1/authorize', pbx, authorizeBody)).status).toBe(200);
    const held = app.keys.size;
    const statuses: number[] = [];
    for (let i = 0; i < 200; i++) {
      const r = await from(app.app, ATTACKER, 'POST', '/v1/authorize', badKey(i), authorizeBody);
      statuses.push(r.status);
      if (r.status === 429) limited(r, 600);
      else expect(r.json.error.code).toBe('UNAUTHORIZED');
      if (i % 10 === 9) {
        const ok = await from(app.app, ATTACKER, 'POST', '/v1/authorize', pbx, authorizeBody);
        expect(ok.status, JSON.stringify(ok.json)).toBe(200);
        expect(ok.json.decision).toBe('deny'); // an unknown identifiant: a decision, not a refusal
      }
    }
    expect(statuses.filter((s) => s === 401)).toHaveLength(20);
    expect(statuses.slice(20).every((s) => s === 429)).toBe(true);
    // 20 bad ids were looked up: the 180 refused ones cost no query
    expect(app.keys.size - held).toBe(20);
    expect(await metric(app, 'forfait_rate_limited_total{limit="address"}')).toBe(180);
    expect(await metric(app, 'forfait_auth_failures_total')).toBe(200);
    // logged once when the limit started refusing, not once per refused request
    expect(logged.filter((l) => l.msg === 'rate limit reached')).toEqual([expect.objectContaining({ limit: 'address', address: ATTACKER })]);
  });

  it('a key id that authenticated before is still looked up for the blocked address; a never seen one is not', async () => {
    const fresh = await keyWithRoles(app, t, ['administrateur']);
    app.keys.clear(); // as when the cached records have aged out
    const again = await from(app.app, ATTACKER, 'POST', '/v1/authorize', pbx, authorizeBody);
    expect(again.status).toBe(200);
    limited(await from(app.app, ATTACKER, 'GET', '/v1/users', fresh.key), 600);
    expect(app.keys.size).toBe(1);
  });

  it('other addresses are not affected', async () => {
    expect((await from(app.app, OTHER, 'GET', '/v1/users', t.adminKey)).status).toBe(200);
    expect((await from(app.app, OTHER, 'GET', '/v1/users', badKey(1000))).status).toBe(401);
    // one host of an IPv6 /64 is one address: a neighbour of the same /64 shares its count, another /64 does not
    for (let i = 0; i < 20; i++) expect((await from(app.app, `2001:db8:1:2::${i.toString(16)}`, 'GET', '/v1/users', badKey(2000 + i))).status).toBe(401);
    limited(await from(app.app, '2001:db8:1:2:ffff::1', 'GET', '/v1/users', badKey(3000)), 600);
    expect((await from(app.app, '2001:db8:1:3::1', 'GET', '/v1/users', badKey(3001))).status).toBe(401);
    // an IPv4-mapped address is its IPv4 address
    limited(await from(app.app, `::ffff:${ATTACKER}`, 'GET', '/v1/users', badKey(3002)), 600);
  });
});

describe('over real sockets (issue #24.4)', () => {
  /** GET /v1/users with `key` from the local address `from`: the status and Retry-After. */
  function get(port: number, from: string, key: string): Promise<{ status: number; retryAfter: string | undefined }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/v1/users', localAddress: from, headers: { authorization: `Bearer ${key}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('the client address is the socket’s: 127.0.0.1 is limited, 127.0.0.2 is not', async () => {
    const app = testApp({ rateLimits: { ...unlimited, failuresPerAddress: 3, failureWindowSeconds: 600, blockSeconds: 600 } });
    const t = await newTenant(app);
    const server = serve({ fetch: app.app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((r) => server.once('listening', () => r()));
    const port = (server.address() as AddressInfo).port;
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await get(port, '127.0.0.1', badKey(5000 + i))).status);
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
      expect(Number((await get(port, '127.0.0.1', badKey(5010))).retryAfter)).toBeGreaterThan(0);
      expect((await get(port, '127.0.0.2', badKey(5011))).status).toBe(401);
      expect((await get(port, '127.0.0.2', t.adminKey)).status).toBe(200);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('behind a trusted proxy (FORFAIT_TRUSTED_PROXIES)', () => {
  it('counts the client X-Forwarded-For names; a client that is not a trusted proxy cannot choose its address', async () => {
    const app = testApp({ rateLimits: { ...unlimited, failuresPerAddress: 2, failureWindowSeconds: 600, blockSeconds: 600, trustedProxies: ['10.0.0.0/8'] } });
    const via = async (socket: string, forwardedFor: string, i: number) => {
      const res = await app.app.request('/v1/users', { headers: { authorization: `Bearer ${badKey(7000 + i)}`, 'x-forwarded-for': forwardedFor } }, {
        incoming: { socket: { remoteAddress: socket } },
      });
      return res.status;
    };
    // through the proxy 10.0.0.5, which appends the address it saw (a chain: the client, then another proxy of ours)
    expect([await via('10.0.0.5', ATTACKER, 1), await via('10.0.0.5', `${ATTACKER}, 10.1.2.3`, 2), await via('::ffff:10.0.0.5', ATTACKER, 3)]).toEqual([401, 401, 429]);
    expect(await via('10.0.0.5', OTHER, 4)).toBe(401);
    // what the client wrote itself, left of the proxy's entry, is not who it is
    expect(await via('10.0.0.5', `${OTHER}, ${ATTACKER}`, 5)).toBe(429);
    // a direct client's X-Forwarded-For is ignored: it is counted as itself
    expect([await via('192.0.2.50', OTHER, 6), await via('192.0.2.50', '198.51.100.99', 7), await via('192.0.2.50', '203.0.113.200', 8)]).toEqual([401, 401, 429]);
  });
});

describe('wrong secrets for one key id, from many addresses (issue #24.4)', () => {
  it('are refused 429 past the per-key limit, while the right secret is answered', async () => {
    const app = testApp({ rateLimits: { ...unlimited, failuresPerKey: 5, failureWindowSeconds: 600, blockSeconds: 900 } });
    const t = await newTenant(app);
    const victim = await keyWithRoles(app, t, ['comptable']);
    const id = victim.key.split('_')[1]!;
    const guess = (i: number) => `ffk_${id}_${createHash('sha256').update(`guess-${i}`).digest('base64url')}`;
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await from(app.app, `192.0.2.${i + 1}`, 'GET', '/v1/invoices', guess(i));
      statuses.push(r.status);
      if (r.status === 429) limited(r, 900);
    }
    expect(statuses).toEqual([...Array(5).fill(401), ...Array(7).fill(429)]);
    expect((await from(app.app, '192.0.2.100', 'GET', '/v1/invoices', victim.key)).status).toBe(200);
    expect(await metric(app, 'forfait_rate_limited_total{limit="key_id"}')).toBe(7);
  });
});

describe('per-key request limits (issue #24.4)', () => {
  it('an API key gets 429 past its limit; a pbx key’s authorizations are limited at the floor, not below', async () => {
    const app = testApp({ rateLimits: { ...unlimited, keyRequests: 5, keyWindowSeconds: 600, pbxAuthorizeFloor: 40 } });
    const t = await newTenant(app);
    const api = await keyWithRoles(app, t, ['comptable']);
    const pbx = await pbxKey(app, t);
    const apiStatuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await from(app.app, OTHER, 'GET', '/v1/invoices', api.key);
      apiStatuses.push(r.status);
      if (r.status === 429) limited(r, 600);
    }
    expect(apiStatuses).toEqual([...Array(5).fill(200), ...Array(3).fill(429)]);
    // another key of the tenant has its own count
    expect((await from(app.app, OTHER, 'GET', '/v1/users', t.adminKey)).status).toBe(200);

    const pbxStatuses: number[] = [];
    for (let i = 0; i < 42; i++) pbxStatuses.push((await from(app.app, OTHER, 'POST', '/v1/authorize', pbx, authorizeBody)).status);
    expect(pbxStatuses).toEqual([...Array(40).fill(200), 429, 429]);
    // the pbx key's CDR traffic is API traffic: it does not draw on its authorizations, nor they on it
    expect((await from(app.app, OTHER, 'POST', '/v1/cdrs', pbx, [])).status).not.toBe(429);
    expect(await metric(app, 'forfait_rate_limited_total{limit="key_requests"}')).toBe(3);
    expect(await metric(app, 'forfait_rate_limited_total{limit="pbx_authorizations"}')).toBe(2);
  });

  it('is off with keyRequests 0 (the tests’ default); reseller keys are not counted', async () => {
    const off = testApp({ rateLimits: { ...unlimited, keyRequests: 0 } });
    const t = await newTenant(off);
    for (let i = 0; i < 30; i++) expect((await from(off.app, OTHER, 'GET', '/v1/users', t.adminKey)).status).toBe(200);
    const on = testApp({ rateLimits: { ...unlimited, keyRequests: 2, keyWindowSeconds: 600 } });
    for (let i = 0; i < 5; i++) expect((await from(on.app, OTHER, 'GET', '/v1/tenants', t.resellerKey)).status).toBe(200);
    expect(defaultRateLimits.pbxAuthorizeFloor).toBeGreaterThan(defaultRateLimits.keyRequests);
  });
});

describe('the key cache ages its entries out (issue #24.4)', () => {
  class FakeClock implements Clock {
    ms = 1_000_000;
    now(): number {
      return this.ms;
    }
  }

  async function harness(options: { ttlMs: number; max: number }) {
    const { db } = testDb();
    const clock = new FakeClock();
    const loads: string[] = [];
    const limiter = new RateLimiter(unlimited, createMetrics(), pino({ level: 'silent' }));
    const cache = new KeyCache(
      (id) => {
        loads.push(id);
        return keyRecord(db, id);
      },
      limiter,
      { ...options, clock },
    );
    const app = new Hono();
    app.use(authorize(cache, { scope: 'tenant', permission: 'prices:read' }));
    app.get('/', (c) => c.json({ ok: true }));
    app.onError((err, c) => c.json({ code: toApiError(err).code }, errorStatus[toApiError(err).code]));
    const status = async (key: string) => (await from(app, OTHER, 'GET', '/', key)).status;
    return { cache, clock, loads, status };
  }

  it('a bad key is looked up once per TTL, and again once it has aged out', async () => {
    const h = await harness({ ttlMs: 30_000, max: 100 });
    expect([await h.status(badKey(1)), await h.status(badKey(1))]).toEqual([401, 401]);
    expect(h.loads).toHaveLength(1);
    h.clock.ms += 29_999;
    expect(await h.status(badKey(1))).toBe(401);
    expect(h.loads).toHaveLength(1);
    h.clock.ms += 2;
    expect(await h.status(badKey(1))).toBe(401);
    expect(h.loads).toHaveLength(2);
  });

  it('a revoked key is refused once its record has aged out; a wrong secret for a cached id costs no look-up', async () => {
    const base = testApp();
    const t = await newTenant(base);
    const k = await keyWithRoles(base, t, ['acheteur']);
    const h = await harness({ ttlMs: 30_000, max: 100 });
    expect(await h.status(k.key)).toBe(200);
    expect(await h.status(`${k.key.slice(0, -1)}${k.key.endsWith('A') ? 'B' : 'A'}`)).toBe(401);
    // the secret that matched is remembered (no hash on the next call): the same key again is answered, any other secret is not
    expect(await h.status(k.key)).toBe(200);
    const secretAt = k.key.lastIndexOf('_') + 1;
    expect(await h.status(`${k.key.slice(0, secretAt)}${k.key[secretAt] === 'A' ? 'B' : 'A'}${k.key.slice(secretAt + 1)}`)).toBe(401);
    expect(await h.status(`${k.key}A`)).toBe(401);
    expect(await h.status(k.key)).toBe(200);
    expect(h.loads).toHaveLength(1);
    await testDb().db.updateTable('apiKeys').set({ revokedAt: new Date() }).where('id', '=', k.id).execute();
    h.clock.ms += 30_001;
    expect(await h.status(k.key)).toBe(401);
    expect(h.loads).toHaveLength(2);
  });

  it('past its size it drops the least recently used ids, not the whole cache', async () => {
    const h = await harness({ ttlMs: 30_000, max: 3 });
    for (const i of [1, 2, 3, 4]) expect(await h.status(badKey(i))).toBe(401);
    expect(h.cache.size).toBe(3);
    expect(h.loads).toHaveLength(4);
    for (const i of [2, 3, 4]) await h.status(badKey(i)); // still held: no look-up
    expect(h.loads).toHaveLength(4);
    await h.status(badKey(1)); // the oldest was dropped
    expect(h.loads).toHaveLength(5);
    expect(h.cache.size).toBe(3);
  });
});
