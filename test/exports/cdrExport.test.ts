import { describe, expect, it } from 'vitest';
import { call, testApp, testDb } from '../support/app.js';
import { keyWithRoles } from '../support/factory.js';
import { cdrTenant, cdrUser } from '../cdrs/helpers.js';
import { parseCsv, postCdrs } from '../invoices/helpers.js';

const app = testApp();

/** Waits (up to 10 s) for a condition about other requests in flight. */
async function until(ready: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !ready(); i++) await new Promise((r) => setTimeout(r, 20));
}

const header =
  'reference,call_id,identifiant,caller,callee,direction,started_at,answered_at,duration_seconds,disposition,site,line,destination,class,billable_seconds,forfait_seconds,charged_seconds,cost';

describe('GET /v1/cdrs/export.csv', () => {
  it('writes every CDR with its rating, the reference, the zone’s offset, and guards formula cells', async () => {
    const t = await cdrTenant(app, { reference: '=CMD|calc', timezone: 'Europe/Paris' });
    const u = await cdrUser(t.id, { balance: '10' });
    await postCdrs(app, t.adminKey, [
      { callId: 'x-2', identifiant: u.identifiant, caller: '+33142000000', callee: '0612345678', startedAt: '2026-11-03T10:05:00+01:00', answeredAt: '2026-11-03T10:05:04+01:00', durationSeconds: 85, disposition: 'answered', site: '=HYPERLINK("http://evil")', line: '-2+3' },
      { callId: '@x-1', identifiant: u.identifiant, caller: '+33142000000', callee: '+442079460958', startedAt: '2026-07-03T10:00:00+02:00', durationSeconds: 30, disposition: 'answered', site: 'Paris, 9e', line: 'L1' },
      { callId: 'x-in', caller: '0612345678', callee: '+33142000000', direction: 'in', startedAt: '2026-11-04T10:00:00+01:00', durationSeconds: 12, disposition: 'answered' },
    ]);
    const res = await call(app, 'GET', '/v1/cdrs/export.csv', { key: t.adminKey });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/csv');
    const [first] = res.text.split('\n');
    expect(first).toBe(header);
    const rows = await parseCsv(res.text);
    expect(rows.map((r) => r.call_id)).toEqual(["'@x-1", 'x-2', 'x-in']); // oldest first
    const [summer, winter, incoming] = rows as [Record<string, string>, Record<string, string>, Record<string, string>];
    expect(winter).toMatchObject({
      reference: "'=CMD|calc",
      identifiant: u.identifiant,
      caller: '+33142000000', // numbers are numeric cells: never prefixed
      callee: '+33612345678',
      direction: 'out',
      started_at: '2026-11-03T10:05:00+01:00', // ISO 8601 with offset, as the API and every export
      answered_at: '2026-11-03T10:05:04+01:00',
      duration_seconds: '85',
      site: `'=HYPERLINK("http://evil")`,
      line: "'-2+3",
      destination: 'France mobile',
      class: 'mobile',
      billable_seconds: '85',
      charged_seconds: '85',
      cost: '0.6417',
    });
    expect(summer).toMatchObject({ started_at: '2026-07-03T10:00:00+02:00', answered_at: '', site: 'Paris, 9e', cost: '0.2500', class: 'international' });
    expect(incoming).toMatchObject({ direction: 'in', identifiant: '', cost: '0.0000' });
    expect(res.text).toContain('"Paris, 9e"'); // RFC 4180 quoting
  });

  it('applies the §7 filters, names a bad one, and writes numbers in the national display', async () => {
    const t = await cdrTenant(app, { numberDisplay: 'national' });
    const u = await cdrUser(t.id, { balance: '10' });
    const v = await cdrUser(t.id, { balance: '10' });
    await postCdrs(app, t.adminKey, [
      { callId: 'f-1', identifiant: u.identifiant, caller: '+33142000000', callee: '0612345678', startedAt: '2026-11-03T10:00:00+01:00', durationSeconds: 20, disposition: 'answered', site: 'Lyon' },
      { callId: 'f-2', identifiant: v.identifiant, callee: '0142000000', startedAt: '2026-11-10T10:00:00+01:00', durationSeconds: 20, disposition: 'answered', site: 'Paris' },
      { callId: 'f-3', identifiant: u.identifiant, callee: '+442079460958', startedAt: '2026-12-02T10:00:00+01:00', durationSeconds: 20, disposition: 'answered', site: 'Lyon' },
    ]);
    const ids = async (query: string) => (await parseCsv((await call(app, 'GET', `/v1/cdrs/export.csv${query}`, { key: t.adminKey })).text)).map((r) => r.call_id);
    expect(await ids('')).toEqual(['f-1', 'f-2', 'f-3']);
    expect(await ids('?from=2026-11-05&to=2026-12-01')).toEqual(['f-2']);
    expect(await ids(`?identifiant=${u.identifiant}`)).toEqual(['f-1', 'f-3']);
    expect(await ids('?site=Lyon&class=international')).toEqual(['f-3']);
    expect(await ids('?direction=in')).toEqual([]);
    expect(await ids(`?site=${encodeURIComponent("O'Brien\\")}`)).toEqual([]); // quotes and backslashes are data, not SQL

    const rows = await parseCsv((await call(app, 'GET', '/v1/cdrs/export.csv', { key: t.adminKey })).text);
    expect(rows[0]).toMatchObject({ caller: '01 42 00 00 00', callee: '06 12 34 56 78', started_at: '2026-11-03T10:00:00+01:00', cost: '0.6000' });
    expect(rows[2]!.callee).toBe('+44 20 7946 0958');

    const bad = await call(app, 'GET', '/v1/cdrs/export.csv?from=yesterday', { key: t.adminKey });
    expect(bad.status).toBe(400);
    expect(bad.json.error.details[0].field).toBe('from');
    const badClass = await call(app, 'GET', '/v1/cdrs/export.csv?class=premium', { key: t.adminKey });
    expect(badClass.status).toBe(400);
    expect(badClass.json.error.details[0].field).toBe('class');
    const technicien = await keyWithRoles(app, t, ['technicien']);
    expect((await call(app, 'GET', '/v1/cdrs/export.csv', { key: technicien.key })).status).toBe(403);
  });
});

describe('export filters are values, never SQL', () => {
  it.each(['international', 'national'] as const)('finds a site with quotes, backslashes and SQL in it, %s display', async (numberDisplay) => {
    const t = await cdrTenant(app, { numberDisplay, reference: "R'1\\" });
    const u = await cdrUser(t.id, { balance: '10' });
    const odd = "O'Brien\\'; DROP TABLE cdrs; --";
    await postCdrs(app, t.adminKey, [
      { callId: 's-1', identifiant: u.identifiant, callee: '0612345678', startedAt: '2026-11-03T10:00:00+01:00', durationSeconds: 20, disposition: 'answered', site: odd },
      { callId: 's-2', identifiant: u.identifiant, callee: '0612345678', startedAt: '2026-11-03T11:00:00+01:00', durationSeconds: 20, disposition: 'answered', site: 'Lyon' },
    ]);
    const res = await call(app, 'GET', `/v1/cdrs/export.csv?site=${encodeURIComponent(odd)}`, { key: t.adminKey });
    expect(res.status).toBe(200);
    expect((await parseCsv(res.text)).map((r) => [r.call_id, r.site, r.reference])).toEqual([['s-1', odd, "R'1\\"]]);
  });
});

describe('GET /v1/users/{id}/calls.csv', () => {
  it('is the export of one user’s calls, still readable after the user is removed', async () => {
    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '10' });
    const v = await cdrUser(t.id, { balance: '10' });
    await postCdrs(app, t.adminKey, [
      { callId: 'u-1', identifiant: u.identifiant, callee: '0612345678', startedAt: '2026-11-03T10:00:00+01:00', durationSeconds: 20, disposition: 'answered' },
      { callId: 'v-1', identifiant: v.identifiant, callee: '0612345678', startedAt: '2026-11-03T11:00:00+01:00', durationSeconds: 20, disposition: 'answered' },
      { callId: 'u-2', identifiant: u.identifiant, callee: '0142000000', startedAt: '2026-11-04T10:00:00+01:00', durationSeconds: 20, disposition: 'answered' },
    ]);
    const res = await call(app, 'GET', `/v1/users/${u.id}/calls.csv`, { key: t.adminKey });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toContain(`calls-${u.identifiant}.csv`);
    expect((await parseCsv(res.text)).map((r) => r.call_id)).toEqual(['u-1', 'u-2']);
    expect((await parseCsv((await call(app, 'GET', `/v1/users/${u.id}/calls.csv?class=fixed`, { key: t.adminKey })).text)).map((r) => r.call_id)).toEqual(['u-2']);
    expect((await call(app, 'DELETE', `/v1/users/${u.id}`, { key: t.adminKey })).status).toBe(200);
    const after = await call(app, 'GET', `/v1/users/${u.id}/calls.csv`, { key: t.adminKey });
    expect((await parseCsv(after.text)).map((r) => r.call_id)).toEqual(['u-1', 'u-2']);
    expect((await call(app, 'GET', '/v1/users/00000000-0000-4000-8000-000000000000/calls.csv', { key: t.adminKey })).status).toBe(404);
  });
});

describe('export limits (SPEC §7: 3 running, 10 waiting, 429 with Retry-After, 408 after waiting)', () => {
  it('queues exports behind 3 running ones, refuses the 14th with 429, times out waiters with 408', async () => {
    const busy = testApp({ exportLimits: { running: 3, waiting: 10, maxWaitMs: 1500 } });
    const t = await cdrTenant(busy);
    const u = await cdrUser(t.id, { balance: '10' });
    await postCdrs(busy, t.adminKey, [{ callId: 'q-1', identifiant: u.identifiant, callee: '0612345678', startedAt: '2026-11-03T10:00:00+01:00', durationSeconds: 20, disposition: 'answered' }]);
    // three exports in progress (slots taken as a running export takes them)
    const running = await Promise.all([busy.exports.acquire(), busy.exports.acquire(), busy.exports.acquire()]);
    const waiting = Array.from({ length: 10 }, (_, i) => call(busy, 'GET', i % 2 ? '/v1/cdrs/export.csv' : `/v1/users/${u.id}/calls.csv`, { key: t.adminKey }));
    await until(() => busy.exports.stats.waiting === 10);
    expect(busy.exports.stats).toEqual({ running: 3, waiting: 10 });
    const refused = await call(busy, 'GET', '/v1/cdrs/export.csv', { key: t.adminKey });
    expect(refused.status).toBe(429);
    expect(refused.json.error.code).toBe('TOO_MANY_REQUESTS');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // nobody finishes: every waiter gives up with 408
    for (const r of await Promise.all(waiting)) {
      expect(r.status).toBe(408);
      expect(r.json.error.code).toBe('REQUEST_TIMEOUT');
    }
    expect(busy.exports.stats).toEqual({ running: 3, waiting: 0 });
    // a slot frees: the next in line runs and gets its CSV
    const next = call(busy, 'GET', '/v1/cdrs/export.csv', { key: t.adminKey });
    await until(() => busy.exports.stats.waiting === 1);
    expect(busy.exports.stats).toEqual({ running: 3, waiting: 1 });
    running[0]!();
    const served = await next;
    expect(served.status).toBe(200);
    expect(served.text).toContain('q-1');
    running[1]!();
    running[2]!();
    expect(busy.exports.stats).toEqual({ running: 0, waiting: 0 });
  });

  it('holds its slot while it streams, and gives it back when the client goes away', async () => {
    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '10' });
    const { sql } = testDb();
    // 200,000 CDRs: more than the stream buffers, so the export is still running when we stop reading
    // straight into cdrs: the partitions of September (UTC: 1 October 00:00 in Paris) and October, as a batch would make them
    await sql`SELECT cdrs_ensure_month(m) FROM unnest(ARRAY[timestamptz '2026-09-15Z', timestamptz '2026-10-15Z']) m`;
    await sql`INSERT INTO cdrs (tenant_id, call_id, user_id, identifiant, caller, callee, direction, started_at, duration_seconds, disposition, class, cost)
      SELECT ${t.id}, 'big-' || g, ${u.id}, ${u.identifiant}, '+33142000000', '+33612345678', 'out', timestamptz '2026-10-01 00:00+02' + g * interval '1 second', 60, 'answered', 'mobile', 0.6
        FROM generate_series(1, 200000) g`;
    const res = await app.app.request('/v1/cdrs/export.csv', { headers: { authorization: `Bearer ${t.adminKey}` } });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const chunk = await reader.read();
    expect(new TextDecoder().decode(chunk.value).startsWith(header)).toBe(true);
    expect(app.exports.stats.running).toBe(1);
    await reader.cancel();
    expect(app.exports.stats.running).toBe(0);
    // its connection is closed too
    let sessions = 1;
    for (let i = 0; i < 50 && sessions > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const [row] = await sql<{ sessions: number }[]>`SELECT count(*)::int AS sessions FROM pg_stat_activity WHERE application_name = 'forfait-export'`;
      sessions = row!.sessions;
    }
    expect(sessions).toBe(0);

    // read to the end: every row, then the slot is free again
    const full = await app.app.request('/v1/cdrs/export.csv', { headers: { authorization: `Bearer ${t.adminKey}` } });
    const text = await full.text();
    expect(text.split('\n').filter(Boolean)).toHaveLength(200_001);
    expect(app.exports.stats.running).toBe(0);
  });
});
