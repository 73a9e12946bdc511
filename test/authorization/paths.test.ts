import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { call, servedOnLoopback, testApp } from '../support/app.js';
import { keyWithRoles } from '../support/factory.js';
import { newUser, tenantWithPbx } from '../support/accounts.js';

// The PBX routes are answered the same whichever way a request reaches them:
// through app.request (web Request, web Headers) and over real node:http
// through @hono/node-server (Node's parsed request), with the odd requests real
// PBXs send. POST /v1/authorize runs on the PBX lane (api/lane.ts) and
// POST /v1/calls/{id}/end as an ordinary route; both read their body with the
// same readJsonBody, so they accept and refuse the same requests.

const LIMIT = 2048;
const app = testApp({ bodyLimit: LIMIT });
const MOBILE = '+33612345678';

const port = servedOnLoopback(app);

async function setup() {
  const { t, pbx } = await tenantWithPbx(app, ['336,France mobile,mobile,6,0.2,1,1,true,,']);
  const comptable = (await keyWithRoles(app, t, ['comptable'])).key;
  const u = await newUser(t.id, { balance: '10', numbers: { 1: MOBILE } }, app);
  return { t, pbx, comptable, u };
}

/** A request as it goes on the wire: header lines in order (a name may repeat), a body, sent whole or chunked. */
interface Wire {
  headers: [string, string][];
  body: string;
  chunked?: boolean;
}

interface Answer {
  status: number;
  requestId: string | null;
  json: unknown;
}

/** Through app.request: web Headers join a repeated header into one value, as fetch does. */
async function viaAppRequest(path: string, w: Wire): Promise<Answer> {
  const headers = new Headers();
  for (const [name, value] of w.headers) headers.append(name, value);
  let body: string | ReadableStream<Uint8Array> = w.body;
  if (w.chunked) {
    const bytes = new TextEncoder().encode(w.body);
    body = new ReadableStream({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 512) controller.enqueue(bytes.subarray(i, i + 512));
        controller.close();
      },
    });
  } else headers.set('content-length', String(Buffer.byteLength(w.body)));
  const res = await app.app.request(path, { method: 'POST', headers, body, ...(w.chunked ? { duplex: 'half' } : {}) } as RequestInit);
  const text = await res.text();
  return { status: res.status, requestId: res.headers.get('x-request-id'), json: text ? JSON.parse(text) : undefined };
}

/** Over a socket, byte for byte: each header line as given (Kamailio's two Content-Types stay two lines). */
function overNodeHttp(path: string, w: Wire): Promise<Answer> {
  const lines = [`POST ${path} HTTP/1.1`, `Host: 127.0.0.1:${port()}`, 'Connection: close', ...w.headers.map(([n, v]) => `${n}: ${v}`)];
  const body = Buffer.from(w.body);
  let payload: Buffer;
  if (w.chunked) {
    lines.push('Transfer-Encoding: chunked');
    const chunks: Buffer[] = [];
    for (let i = 0; i < body.length; i += 512) {
      const part = body.subarray(i, i + 512);
      chunks.push(Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n'));
    }
    payload = Buffer.concat([...chunks, Buffer.from('0\r\n\r\n')]);
  } else {
    lines.push(`Content-Length: ${body.length}`);
    payload = body;
  }
  return new Promise((resolve, reject) => {
    const socket = connect(port(), '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(received).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const head = text.slice(0, split).split('\r\n');
      const headers = new Map(head.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      const rest = text.slice(split + 4);
      resolve({ status: Number(head[0]!.split(' ')[1]), requestId: headers.get('x-request-id') ?? null, json: rest ? JSON.parse(rest) : undefined });
    });
    socket.write(Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n'), payload]));
  });
}

/** The answer without what differs from one request to the next (ids). */
function shape(a: Answer): unknown {
  const copy = structuredClone(a.json) as { error?: { requestId?: string }; reservationId?: string } | undefined;
  if (copy?.error) delete copy.error.requestId;
  if (copy?.reservationId) copy.reservationId = '…';
  return { status: a.status, json: copy };
}

const json = (key: string | undefined, extra: [string, string][] = []): [string, string][] => [
  ...(key ? ([['Authorization', `Bearer ${key}`]] as [string, string][]) : []),
  ['Content-Type', 'application/json'],
  ...extra,
];

/** Sends the request both ways; both answers must be the same, each with its request id in X-Request-Id (and, for an error, in its body). */
async function bothWays(path: string, w: Wire): Promise<Answer> {
  const local = await viaAppRequest(path, w);
  const remote = await overNodeHttp(path, w);
  expect(shape(remote), `${path} ${JSON.stringify(w.headers)}`).toEqual(shape(local));
  for (const a of [local, remote]) {
    expect(a.requestId).toMatch(/\S/);
    const err = (a.json as { error?: { requestId: string } }).error;
    if (err) expect(err.requestId).toBe(a.requestId);
  }
  return local;
}

describe('POST /v1/authorize answers the same request the same way through app.request and over node:http', () => {
  it('decides, refuses and errs alike, odd requests included', async () => {
    const { t, pbx, comptable, u } = await setup();
    const deny = JSON.stringify({ identifiant: u.identifiant, callee: '0698765432' });
    const cases: { name: string; wire: Wire; status: number; code?: string }[] = [
      { name: 'a plain request', wire: { headers: json(pbx), body: deny }, status: 200 },
      {
        name: "Kamailio's http_client: application/json, then its own form type",
        wire: { headers: json(pbx, [['Content-Type', 'application/x-www-form-urlencoded']]), body: deny },
        status: 200,
      },
      { name: 'a charset parameter', wire: { headers: [['Authorization', `Bearer ${pbx}`], ['Content-Type', 'application/json; charset=utf-8']], body: deny }, status: 200 },
      { name: 'a chunked body', wire: { headers: json(pbx), body: deny, chunked: true }, status: 200 },
      {
        name: 'the form type first',
        wire: { headers: [['Authorization', `Bearer ${pbx}`], ['Content-Type', 'application/x-www-form-urlencoded'], ['Content-Type', 'application/json']], body: deny },
        status: 415,
        code: 'UNSUPPORTED_MEDIA_TYPE',
      },
      { name: 'text/plain', wire: { headers: [['Authorization', `Bearer ${pbx}`], ['Content-Type', 'text/plain']], body: deny }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
      { name: 'no Content-Type', wire: { headers: [['Authorization', `Bearer ${pbx}`]], body: deny }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
      { name: 'a body over the limit', wire: { headers: json(pbx), body: JSON.stringify({ identifiant: u.identifiant, callee: 'x'.repeat(LIMIT) }) }, status: 413, code: 'PAYLOAD_TOO_LARGE' },
      {
        name: 'a chunked body over the limit',
        wire: { headers: json(pbx), body: JSON.stringify({ identifiant: u.identifiant, callee: 'x'.repeat(LIMIT) }), chunked: true },
        status: 413,
        code: 'PAYLOAD_TOO_LARGE',
      },
      { name: 'no key', wire: { headers: json(undefined), body: deny }, status: 401, code: 'UNAUTHORIZED' },
      { name: 'an unknown key', wire: { headers: json('ffk_0000000000000000_nope'), body: deny }, status: 401, code: 'UNAUTHORIZED' },
      { name: 'a key without pbx:authorize', wire: { headers: json(comptable), body: deny }, status: 403, code: 'FORBIDDEN' },
      { name: 'malformed JSON', wire: { headers: json(pbx), body: '{"identifiant": ' }, status: 400, code: 'BAD_REQUEST' },
      { name: 'a body the schema refuses', wire: { headers: json(pbx), body: JSON.stringify({ identifiant: '123', callee: MOBILE }) }, status: 400, code: 'VALIDATION_FAILED' },
      { name: 'an unknown field', wire: { headers: json(pbx), body: JSON.stringify({ identifiant: u.identifiant, callee: MOBILE, extra: 1 }) }, status: 400, code: 'VALIDATION_FAILED' },
      { name: 'a callee that is no number', wire: { headers: json(pbx), body: JSON.stringify({ identifiant: u.identifiant, callee: 'not a number' }) }, status: 400, code: 'VALIDATION_FAILED' },
      { name: 'an unknown user', wire: { headers: json(pbx), body: JSON.stringify({ identifiant: '0000001', callee: MOBILE }) }, status: 200 },
    ];
    for (const c of cases) {
      app.keys.clear(); // app.request meets the key first, node:http finds it cached: the same answer either way
      const a = await bothWays('/v1/authorize', c.wire);
      expect(a.status, c.name).toBe(c.status);
      if (c.code) expect((a.json as { error: { code: string } }).error.code, c.name).toBe(c.code);
    }
    // an allow each way: the same answer for two users in the same state
    const v = await newUser(t.id, { balance: '10', numbers: { 1: MOBILE } }, app);
    const w = await newUser(t.id, { balance: '10', numbers: { 1: MOBILE } }, app);
    const local = await viaAppRequest('/v1/authorize', { headers: json(pbx), body: JSON.stringify({ identifiant: v.identifiant, callee: MOBILE }) });
    const remote = await overNodeHttp('/v1/authorize', { headers: json(pbx), body: JSON.stringify({ identifiant: w.identifiant, callee: MOBILE }) });
    expect(local.json).toMatchObject({ decision: 'allow', maxSeconds: 98 });
    expect(shape(remote)).toEqual(shape(local));
  });

  it('echoes a sane client request id and replaces one that is not', async () => {
    const { pbx, u } = await setup();
    const body = JSON.stringify({ identifiant: u.identifiant, callee: '0698765432' });
    for (const send of [viaAppRequest, overNodeHttp]) {
      expect((await send('/v1/authorize', { headers: json(pbx, [['X-Request-Id', 'pbx-42']]), body })).requestId).toBe('pbx-42');
      expect((await send('/v1/authorize', { headers: json(pbx, [['X-Request-Id', 'no spaces please']]), body })).requestId).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

describe('POST /v1/calls/{id}/end reads its body as POST /v1/authorize does', () => {
  it('accepts two Content-Types when the first is JSON, refuses what authorize refuses', async () => {
    const { t, pbx } = await setup();
    const allow = async () => {
      const u = await newUser(t.id, { balance: '10', numbers: { 1: MOBILE } }, app);
      const res = await call(app, 'POST', '/v1/authorize', { key: pbx, json: { identifiant: u.identifiant, callee: MOBILE } });
      expect(res.json).toMatchObject({ decision: 'allow' });
      return res.json.reservationId as string;
    };
    const end = JSON.stringify({ durationSeconds: 5, disposition: 'answered' });
    const kamailio = json(pbx, [['Content-Type', 'application/x-www-form-urlencoded']]);
    const local = await viaAppRequest(`/v1/calls/${await allow()}/end`, { headers: kamailio, body: end });
    const remote = await overNodeHttp(`/v1/calls/${await allow()}/end`, { headers: kamailio, body: end });
    expect(local.status).toBe(200);
    expect(remote.status).toBe(200);
    expect(remote.json).toMatchObject({ durationSeconds: 5, disposition: 'answered', callee: MOBILE });

    const id = await allow();
    const refused: { wire: Wire; status: number; code: string }[] = [
      { wire: { headers: [['Authorization', `Bearer ${pbx}`], ['Content-Type', 'text/plain']], body: end }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
      { wire: { headers: [['Authorization', `Bearer ${pbx}`]], body: end }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
      { wire: { headers: json(pbx), body: JSON.stringify({ durationSeconds: 5, disposition: 'x'.repeat(LIMIT) }) }, status: 413, code: 'PAYLOAD_TOO_LARGE' },
      { wire: { headers: json(pbx), body: '{"durationSeconds": ' }, status: 400, code: 'BAD_REQUEST' },
      { wire: { headers: json(undefined), body: end }, status: 401, code: 'UNAUTHORIZED' },
    ];
    for (const r of refused) {
      const [viaCall, viaAuthorize] = [await bothWays(`/v1/calls/${id}/end`, r.wire), await bothWays('/v1/authorize', r.wire)];
      expect(viaCall.status).toBe(r.status);
      expect((viaCall.json as { error: { code: string } }).error.code).toBe(r.code);
      expect(viaAuthorize.status).toBe(r.status);
      expect((viaAuthorize.json as { error: { code: string } }).error.code).toBe(r.code);
    }
  });
});

async function metric(line: RegExp): Promise<number> {
  const text = await (await app.app.request('/metrics')).text();
  const m = text.split('\n').find((l) => line.test(l));
  return m ? Number(m.split(' ').pop()) : 0;
}

describe('POST /v1/authorize on the PBX lane', () => {
  it('counts each request once in /metrics, under its route, with its decision', async () => {
    const { pbx, u } = await setup();
    const body = JSON.stringify({ identifiant: u.identifiant, callee: '0698765432' });
    const requests = /^forfait_http_requests_total\{method="POST",route="\/v1\/authorize",status="200"\}/;
    const refusals = /^forfait_http_requests_total\{method="POST",route="\/v1\/authorize",status="415"\}/;
    const denials = /^forfait_authorizations_total\{decision="deny",reason="NUMBER_NOT_AUTHORIZED"\}/;
    const before = { requests: await metric(requests), refusals: await metric(refusals), denials: await metric(denials) };
    await viaAppRequest('/v1/authorize', { headers: json(pbx), body });
    await overNodeHttp('/v1/authorize', { headers: json(pbx), body });
    await overNodeHttp('/v1/authorize', { headers: [['Authorization', `Bearer ${pbx}`], ['Content-Type', 'text/plain']], body });
    expect(await metric(requests)).toBe(before.requests + 2);
    expect(await metric(refusals)).toBe(before.refusals + 1);
    expect(await metric(denials)).toBe(before.denials + 2);
  });

  it('holds credit across requests, and a retry with the same callId gets the same answer', async () => {
    const { pbx, u } = await setup();
    // SPEC §5's example: 10.00 at 0.2 + 6 per minute allows 98 s, which holds all of the money
    const first = await call(app, 'POST', '/v1/authorize', { key: pbx, json: { identifiant: u.identifiant, callee: MOBILE, callId: 'lane-1' } });
    expect(first.json).toMatchObject({ decision: 'allow', maxSeconds: 98 });
    const again = await call(app, 'POST', '/v1/authorize', { key: pbx, json: { identifiant: u.identifiant, callee: MOBILE, callId: 'lane-1' } });
    expect(again.json).toEqual(first.json);
    const second = await call(app, 'POST', '/v1/authorize', { key: pbx, json: { identifiant: u.identifiant, callee: MOBILE, callId: 'lane-2' } });
    expect(second.json).toMatchObject({ decision: 'deny', reason: 'INSUFFICIENT_BALANCE' });
  });

  it('refuses a key at once once it is revoked, though it was cached', async () => {
    const { t, pbx, u } = await setup();
    const body = { identifiant: u.identifiant, callee: MOBILE };
    expect((await call(app, 'POST', '/v1/authorize', { key: pbx, json: body })).status).toBe(200);
    const id = pbx.split('_')[1]; // ffk_<id>_<secret>
    expect((await call(app, 'DELETE', `/v1/keys/${id}`, { key: t.adminKey })).status).toBe(200);
    expect((await call(app, 'POST', '/v1/authorize', { key: pbx, json: body })).status).toBe(401);
  });
});
