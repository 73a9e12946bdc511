import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { call, testApp } from '../support/app.js';
import { newTenant, resellerKey } from '../support/factory.js';
import { newTariff, newUser, pbxKey } from '../support/accounts.js';

// POST /v1/authorize answers from a hot path in front of the middleware stack
// when the key is already cached (api/routes/authorize.ts, authorizeHotPath),
// and from the full route otherwise. Both must give the same answers, errors
// and metrics.

const app = testApp();
const MOBILE = '+33612345678';

async function setup() {
  const r = await resellerKey();
  const tariffId = await newTariff(app, r.key, ['336,France mobile,mobile,6,0.2,1,1,true,,']);
  const t = await newTenant(app, { tariffId });
  const pbx = await pbxKey(app, t);
  const u = await newUser(t.id, { balance: '10', numbers: { 1: MOBILE } }, app);
  const broke = await newUser(t.id, { numbers: { 1: MOBILE } }, app);
  return { t, pbx, u, broke };
}

type Body = Record<string, unknown> | string;
/** As a PBX sends it over HTTP: with a Content-Length (app.request sets none by itself, and the hot path wants one). */
function post(key: string, body: Body, headers: Record<string, string> = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return call(app, 'POST', '/v1/authorize', {
    key,
    body: text,
    headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers },
  });
}

/** The full route's answer (the key cache emptied first, so the hot path steps aside), then the hot path's. */
async function bothPaths(key: string, body: Body) {
  app.keys.clear();
  const route = await post(key, body);
  expect(app.keys.peek(key)).toBeDefined(); // the route cached the key: the next request takes the hot path
  const hot = await post(key, body);
  return { route, hot };
}

const strip = (json: unknown) => {
  const copy = structuredClone(json) as { error?: { requestId?: string } };
  if (copy.error) delete copy.error.requestId;
  return copy;
};

async function metric(line: RegExp): Promise<number> {
  const text = await (await app.app.request('/metrics')).text();
  const m = text.split('\n').find((l) => line.test(l));
  return m ? Number(m.split(' ').pop()) : 0;
}

describe('POST /v1/authorize: the hot path answers as the full route does', () => {
  it('the same denials and errors, status and body, with a request id in every error', async () => {
    const { pbx, u, broke } = await setup();
    const cases: Body[] = [
      { identifiant: '0000001', callee: '0612345678' }, // UNKNOWN_USER
      { identifiant: u.identifiant, callee: '0698765432' }, // NUMBER_NOT_AUTHORIZED
      { identifiant: u.identifiant, key: 5 }, // EMPTY_KEY
      { identifiant: broke.identifiant, callee: MOBILE }, // INSUFFICIENT_BALANCE
      { identifiant: u.identifiant, callee: 'not a number' }, // 400 from the service
      { identifiant: '123', callee: MOBILE }, // 400 from the schema
      { identifiant: u.identifiant }, // 400: neither callee nor key
      { identifiant: u.identifiant, callee: MOBILE, extra: 1 }, // 400: strict body
      '{"identifiant": ', // 400: not JSON
    ];
    for (const body of cases) {
      const { route, hot } = await bothPaths(pbx, body);
      expect(hot.status, JSON.stringify(body)).toBe(route.status);
      expect(strip(hot.json), JSON.stringify(body)).toEqual(strip(route.json));
      if (hot.status !== 200) {
        const err = hot.json as { error: { requestId: string } };
        expect(err.error.requestId).toMatch(/\S/);
        expect(hot.headers.get('x-request-id')).toBe(err.error.requestId);
      }
    }
  });

  it('an allow holds its credit across both paths, and a retry with its callId gets the same answer', async () => {
    const { t, pbx, u } = await setup();
    app.keys.clear();
    // SPEC §5's example: 10.00 at 0.2 + 6 per minute allows 98 s, which holds all of the money
    const first = await post(pbx, { identifiant: u.identifiant, callee: MOBILE, callId: 'route-1' });
    expect(first.json).toMatchObject({ decision: 'allow', maxSeconds: 98 });
    const second = await post(pbx, { identifiant: u.identifiant, callee: MOBILE, callId: 'hot-1' });
    expect(second.json).toMatchObject({ decision: 'deny', reason: 'INSUFFICIENT_BALANCE' });

    const v = await newUser(t.id, { balance: '10', numbers: { 1: MOBILE } }, app);
    const allowed = await post(pbx, { identifiant: v.identifiant, callee: MOBILE, callId: 'hot-2' });
    expect(allowed.json).toMatchObject({ decision: 'allow', maxSeconds: 98 });
    expect(allowed.headers.get('x-request-id')).toBeNull(); // answered by the hot path (the route adds one)
    const again = await post(pbx, { identifiant: v.identifiant, callee: MOBILE, callId: 'hot-2' });
    expect(again.json).toEqual(allowed.json);
    const denied = await post(pbx, { identifiant: v.identifiant, callee: MOBILE, callId: 'hot-3' });
    expect(denied.json).toMatchObject({ decision: 'deny', reason: 'INSUFFICIENT_BALANCE' });
  });

  it('echoes a client request id, and counts its requests and decisions in /metrics', async () => {
    const { pbx, u } = await setup();
    await post(pbx, { identifiant: u.identifiant, callee: '0698765432' }); // caches the key
    const requests = /^forfait_http_requests_total\{method="POST",route="\/v1\/authorize",status="200"\}/;
    const denials = /^forfait_authorizations_total\{decision="deny",reason="NUMBER_NOT_AUTHORIZED"\}/;
    const before = { requests: await metric(requests), denials: await metric(denials) };
    const res = await post(pbx, { identifiant: u.identifiant, callee: '0698765432' }, { 'x-request-id': 'pbx-42' });
    expect(res.headers.get('x-request-id')).toBe('pbx-42');
    expect(await metric(requests)).toBe(before.requests + 1);
    expect(await metric(denials)).toBe(before.denials + 1);
    app.keys.clear(); // the full route counts in the same series
    const routed = await post(pbx, { identifiant: u.identifiant, callee: '0698765432' });
    expect(routed.headers.get('x-request-id')).toMatch(/\S/); // the route's request-id middleware ran
    expect(await metric(requests)).toBe(before.requests + 2);
    expect(await metric(denials)).toBe(before.denials + 2);
  });

  it('a key that loses pbx:authorize or is revoked is refused at once, also from the hot path', async () => {
    const { t, pbx, u } = await setup();
    await post(pbx, { identifiant: u.identifiant, callee: MOBILE }); // cached
    const id = pbx.split('_')[1]; // ffk_<id>_<secret>
    expect((await call(app, 'DELETE', `/v1/keys/${id}`, { key: t.adminKey })).status).toBe(200);
    const res = await post(pbx, { identifiant: u.identifiant, callee: MOBILE });
    expect(res.status).toBe(401);
  });
});

describe('POST /v1/authorize over node:http: the hot path reads the request Node parsed', () => {
  it('answers as app.request does, echoes the request id, and hands bodies it cannot take to the full route', async () => {
    const { pbx, u } = await setup();
    const server = serve({ fetch: app.app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const { port } = server.address() as AddressInfo;
    try {
      const overHttp = async (body: string, headers: Record<string, string> = {}) => {
        const res = await fetch(`http://127.0.0.1:${port}/v1/authorize`, {
          method: 'POST',
          headers: { authorization: `Bearer ${pbx}`, 'content-type': 'application/json', ...headers },
          body,
        });
        return { status: res.status, headers: res.headers, json: (await res.json()) as unknown };
      };
      await post(pbx, { identifiant: u.identifiant, callee: '0698765432' }); // caches the key
      const cases: Body[] = [
        { identifiant: u.identifiant, callee: '0698765432' }, // NUMBER_NOT_AUTHORIZED, from the hot path
        { identifiant: '0000001', callee: '0612345678' }, // UNKNOWN_USER
        { identifiant: u.identifiant, callee: 'not a number' }, // 400 from the service, on the hot path
        { identifiant: '123', callee: MOBILE }, // 400 from the schema: handed to the full route with its body
        '{"identifiant": ', // not JSON: handed over too
      ];
      for (const body of cases) {
        const text = typeof body === 'string' ? body : JSON.stringify(body);
        const local = await post(pbx, body);
        const remote = await overHttp(text);
        expect(remote.status, text).toBe(local.status);
        expect(strip(remote.json), text).toEqual(strip(local.json));
        if (remote.status !== 200) expect(remote.headers.get('x-request-id')).toBe((remote.json as { error: { requestId: string } }).error.requestId);
      }
      const echoed = await overHttp(JSON.stringify({ identifiant: u.identifiant, callee: '0698765432' }), { 'x-request-id': 'pbx-7' });
      expect(echoed.headers.get('x-request-id')).toBe('pbx-7');
      const allowed = await overHttp(JSON.stringify({ identifiant: u.identifiant, callee: MOBILE, callId: 'http-1' }));
      expect(allowed.json).toMatchObject({ decision: 'allow', maxSeconds: 98 });
      expect(allowed.headers.get('x-request-id')).toBeNull(); // the hot path answered (the route adds one)
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
