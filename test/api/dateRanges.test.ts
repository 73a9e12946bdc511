import { describe, expect, it } from 'vitest';
import { call, testApp, testDb } from '../support/app.js';
import { newTenant, resellerKey } from '../support/factory.js';
import { newTariff, newUser } from '../support/accounts.js';

const app = testApp();

/**
 * Every route that takes a date range (issue 18): a reversed or empty range is
 * the same 400, with the same words, whatever the route and however the range
 * reaches it (query or body, tenant or reseller key), and nothing is done.
 */
describe('a reversed or empty date range is the same 400 on every route that takes one', async () => {
  const r = await resellerKey();
  const tariffId = await newTariff(app, r.key, ['33,France,fixed,0.02,0,60,60,false,,']);
  const t = await newTenant(app, { tariffId, timezone: 'Europe/Paris' });
  const u = await newUser(t.id, { balance: '10' });

  type Send = (from: string, to: string) => Promise<Awaited<ReturnType<typeof call>>>;
  const q = (from: string, to: string) => `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
  const routes: [string, Send][] = [
    ['GET /v1/cdrs', (f, to) => call(app, 'GET', `/v1/cdrs?${q(f, to)}`, { key: t.adminKey })],
    ['GET /v1/cdrs?userId', (f, to) => call(app, 'GET', `/v1/cdrs?userId=${u.id}&${q(f, to)}`, { key: t.adminKey })],
    ['GET /v1/cdrs/export.csv', (f, to) => call(app, 'GET', `/v1/cdrs/export.csv?${q(f, to)}`, { key: t.adminKey })],
    ['GET /v1/cdrs/export.csv?excel=1', (f, to) => call(app, 'GET', `/v1/cdrs/export.csv?excel=1&${q(f, to)}`, { key: t.adminKey })],
    ['GET /v1/users/{id}/calls.csv', (f, to) => call(app, 'GET', `/v1/users/${u.id}/calls.csv?${q(f, to)}`, { key: t.adminKey })],
    ['GET /v1/indicators', (f, to) => call(app, 'GET', `/v1/indicators?${q(f, to)}`, { key: t.adminKey })],
    ['POST /v1/rerate', (from, to) => call(app, 'POST', '/v1/rerate', { key: t.adminKey, json: { from, to } })],
    ['POST /v1/rerate (reseller)', (from, to) => call(app, 'POST', '/v1/rerate', { key: r.key, json: { from, to, tenantId: t.id } })],
    ['GET /v1/invoices/export.csv', (f, to) => call(app, 'GET', `/v1/invoices/export.csv?${q(f, to)}`, { key: t.adminKey })],
    ['GET /v1/invoices/export.csv (reseller)', (f, to) => call(app, 'GET', `/v1/invoices/export.csv?${q(f, to)}`, { key: r.key })],
  ];

  const words = (from: string, to: string) => ({
    code: 'VALIDATION_FAILED',
    message: 'empty period',
    details: [{ field: 'to', value: to, message: `\`to\` must be after \`from\` (from is inclusive, to exclusive): got from \`${from}\` and to \`${to}\`` }],
    requestId: expect.any(String),
  });

  it.each(routes)('%s', async (_route, send) => {
    const ledgerBefore = await testDb().db.selectFrom('ledgerEntries').select((e) => e.fn.countAll<string>().as('n')).where('tenantId', '=', t.id).executeTakeFirstOrThrow();
    for (const [from, to] of [
      ['2026-12-01', '2026-11-01'], // reversed
      ['2026-11-01', '2026-11-01'], // empty
    ] as const) {
      const res = await send(from, to);
      expect(res.status, `${from} → ${to}: ${res.text}`).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(res.json.error).toEqual(words(from, to));
    }
    const ledgerAfter = await testDb().db.selectFrom('ledgerEntries').select((e) => e.fn.countAll<string>().as('n')).where('tenantId', '=', t.id).executeTakeFirstOrThrow();
    expect(ledgerAfter.n).toBe(ledgerBefore.n);
  });

  it.each(routes.filter(([route]) => !route.includes('invoices')))('%s: the same with date-times, the same instant written in two offsets', async (_route, send) => {
    const res = await send('2026-11-01T01:00:00+01:00', '2026-11-01T00:00:00Z');
    expect(res.status, res.text).toBe(400);
    expect(res.json.error).toEqual(words('2026-11-01T01:00:00+01:00', '2026-11-01T00:00:00Z'));
  });

  it.each(routes)('%s: a right range is answered', async (_route, send) => {
    const res = await send('2026-11-01', '2026-12-01');
    expect(res.status, res.text).toBe(200);
  });
});
