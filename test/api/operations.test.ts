import { Validator } from '@seriousme/openapi-schema-validator';
import { z } from '@hono/zod-openapi';
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { createApp } from '../../api/app.js';
import { defaultConfig } from '../../api/context.js';
import { connect } from '../../db/connection.js';
import { ExportQueue } from '../../services/exports/queue.js';
import { call, testApp } from '../support/app.js';
import { resellerKey, uniqueName } from '../support/factory.js';

describe('operations endpoints', () => {
  const app = testApp();

  it('GET /health answers 200 with the database up', async () => {
    const res = await call(app, 'GET', '/health');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ status: 'ok', db: 'ok' });
    expect(res.headers.get('x-request-id')).toBeTruthy();
  });

  it('GET /health answers 503 when the database is unreachable', async () => {
    const dead = connect('postgres://postgres:x@127.0.0.1:1/forfait', { max: 1 });
    const down = createApp({ db: dead.db, sql: dead.sql, logger: pino({ level: 'silent' }), config: defaultConfig });
    const res = await call(down, 'GET', '/health');
    expect(res.status).toBe(503);
    expect(res.json).toEqual({ status: 'degraded', db: 'unreachable' });
    await dead.close().catch(() => undefined);
  });

  it('serves an OpenAPI 3.1 document that validates and lists every route', async () => {
    const res = await call(app, 'GET', '/openapi.json');
    expect(res.status).toBe(200);
    expect(res.json.openapi).toBe('3.1.0');
    const result = await new Validator().validate(res.json);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    for (const p of ['/health', '/v1/tenants', '/v1/tenants/{id}', '/v1/product-types', '/v1/roles', '/v1/keys', '/v1/keys/{id}']) {
      expect(Object.keys(res.json.paths)).toContain(p);
    }
  });

  it('serves a readable reference at /docs from local files', async () => {
    const page = await call(app, 'GET', '/docs');
    expect(page.status).toBe(200);
    expect(page.text).toContain('/docs/assets/swagger-ui-bundle.js');
    expect(page.text).not.toMatch(/https?:\/\/(?!www\.w3)/); // no CDN
    const js = await call(app, 'GET', '/docs/assets/swagger-ui-bundle.js');
    expect(js.status).toBe(200);
    expect(js.text.length).toBeGreaterThan(100_000);
    expect((await call(app, 'GET', '/docs/assets/..%2Fpackage.json')).status).toBe(404);
  });

  it('exposes request counts and latency histograms per route in Prometheus format', async () => {
    await call(app, 'GET', '/health');
    const res = await call(app, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(res.text).toMatch(/forfait_http_requests_total\{method="GET",route="\/health",status="200"\} \d+/);
    expect(res.text).toContain('forfait_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/health"}');
  });

  it('answers 413 for a body over the limit', async () => {
    const small = testApp({ bodyLimit: 1024 });
    const { key } = await resellerKey();
    const res = await call(small, 'POST', '/v1/tenants', { key, json: { name: uniqueName(), productType: 'pro', notes: 'x'.repeat(5000) } });
    expect(res.status).toBe(413);
    expect(res.json.error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('answers 404 in the envelope for an unknown route', async () => {
    const res = await call(app, 'GET', '/v1/nothing-here');
    expect(res.status).toBe(404);
    expect(res.json.error).toMatchObject({ code: 'NOT_FOUND' });
    expect(res.json.error.requestId).toBeTruthy();
  });

  it('answers 500 without internals when a handler fails', async () => {
    const broken = testApp();
    broken.app.openapi(
      broken.defineRoute({
        method: 'get',
        path: '/v1/test-broken',
        access: { scope: 'public' },
        responses: { 200: { description: 'never' } },
      }),
      () => {
        throw new Error('secret detail: password=hunter2 at /srv/forfait/db.ts:42');
      },
    );
    const res = await call(broken, 'GET', '/v1/test-broken');
    expect(res.status).toBe(500);
    expect(res.json.error).toMatchObject({ code: 'INTERNAL', message: 'internal error' });
    expect(res.text).not.toContain('hunter2');
    expect(res.text).not.toContain('db.ts');
    expect(res.json.error.requestId).toBe(res.headers.get('x-request-id'));
  });
});

describe('export queue (SPEC §7: 3 running, 10 waiting, 429 with Retry-After, 408 after 30 s)', () => {
  it('runs 3 at once, queues 10 in order, refuses the next with 429', async () => {
    const q = new ExportQueue();
    const releases = await Promise.all([q.acquire(), q.acquire(), q.acquire()]);
    expect(q.stats).toEqual({ running: 3, waiting: 0 });
    const order: number[] = [];
    const waiting = Array.from({ length: 10 }, (_, i) =>
      q.acquire().then((release) => {
        order.push(i);
        return release;
      }),
    );
    expect(q.stats).toEqual({ running: 3, waiting: 10 });
    await expect(q.acquire()).rejects.toMatchObject({ code: 'TOO_MANY_REQUESTS', retryAfterSeconds: 15 });
    for (const r of releases) r();
    for (const p of waiting) (await p)();
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(q.stats).toEqual({ running: 0, waiting: 0 });
  });

  it('gives up a wait of 30 s with 408, and a released slot goes to the next in line', async () => {
    vi.useFakeTimers();
    try {
      const q = new ExportQueue();
      const held = await Promise.all([q.acquire(), q.acquire(), q.acquire()]);
      const late = q.acquire();
      const lateResult = late.then(
        () => 'granted',
        (e: { code: string }) => e.code,
      );
      await vi.advanceTimersByTimeAsync(29_000);
      const next = q.acquire();
      await vi.advanceTimersByTimeAsync(1_001);
      expect(await lateResult).toBe('REQUEST_TIMEOUT');
      held[0]!();
      const release = await next;
      expect(q.stats).toEqual({ running: 3, waiting: 0 });
      release();
      held[1]!();
      held[2]!();
    } finally {
      vi.useRealTimers();
    }
  });

  it('maps refusals to 429 with Retry-After and 408 through the app', async () => {
    const busy = testApp({ exportLimits: { running: 1, waiting: 1, maxWaitMs: 200 } });
    let unblock!: () => void;
    const blocker = new Promise<void>((r) => (unblock = r));
    busy.app.openapi(
      busy.defineRoute({
        method: 'get',
        path: '/v1/test-export',
        access: { scope: 'public' },
        responses: { 200: { description: 'csv', content: { 'text/csv': { schema: z.string() } } } },
      }),
      async (c) => busy.exports.run(async () => {
        await blocker;
        return c.text('a,b\n', 200);
      }),
    );
    const first = call(busy, 'GET', '/v1/test-export');
    await new Promise((r) => setTimeout(r, 20));
    const second = call(busy, 'GET', '/v1/test-export');
    await new Promise((r) => setTimeout(r, 20));
    const third = await call(busy, 'GET', '/v1/test-export');
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBeTruthy();
    expect(third.json.error.code).toBe('TOO_MANY_REQUESTS');
    const timedOut = await second;
    expect(timedOut.status).toBe(408);
    expect(timedOut.json.error.code).toBe('REQUEST_TIMEOUT');
    unblock();
    expect((await first).status).toBe(200);
  });
});
