import { describe, expect, it } from 'vitest';
import { SharedResults } from '../../services/exports/sharedResult.js';
import { ExportSpacing } from '../../services/exports/spacing.js';
import { call } from '../support/app.js';
import { keyWithRoles } from '../support/factory.js';
import { clockedApp, deviceTenant, freshMac, TestClock } from './helpers.js';

describe('line-state report (issue 21 point 4)', () => {
  const clock = new TestClock(new Date('2026-07-01T08:00:00Z'));
  // one key asks for several reports one after the other here: spacing is tested below
  const app = clockedApp(clock, { exportSpacingMs: 0 });

  it('one row per device port: site, MAC, type, port, user, identifiant, the line’s status and last registration in the tenant’s zone; site and status filters', async () => {
    const t = await deviceTenant(app);
    const [u0, u1] = t.users;
    const paris = freshMac();
    const lyon = freshMac();
    const dect = freshMac();
    // line 2 of the Paris phone registers (the phone tells its MAC); line 1 never does
    await call(app, 'POST', '/v1/devices', { key: t.adminKey, json: { mac: paris, deviceType: t.desk, site: 'Paris', lines: [{ port: 1, identifiant: u1!.identifiant }, { port: 2, identifiant: u0!.identifiant }] } });
    await call(app, 'POST', '/v1/devices', { key: t.adminKey, json: { mac: lyon, deviceType: t.single, site: 'Lyon' } });
    await call(app, 'POST', '/v1/devices/registrations', { key: t.pbxKey, json: { identifiant: u0!.identifiant, contact: 'sip:a@192.0.2.1', expires: 3600, userAgent: `T46U ${paris}` } });
    // a DECT base with no line registered an hour ago for 10 minutes: aged
    await call(app, 'POST', '/v1/devices', { key: t.adminKey, json: { mac: dect, deviceType: t.dect, site: 'Paris', dectStationId: 'MC-1' } });
    await call(app, 'POST', '/v1/devices/registrations', { key: t.pbxKey, json: { identifiant: '9000001', contact: 'sip:b@192.0.2.2', expires: 600, instance: `<urn:uuid:00000000-0000-1000-8000-${dect.replaceAll(':', '')}>` } });
    clock.advance(3600_000);
    const name = async (id: string) => (await call(app, 'GET', `/v1/users/${id}`, { key: t.adminKey })).json.fullName as string;
    const [n0, n1] = [await name(u0!.id), await name(u1!.id)];

    const all = await call(app, 'GET', '/v1/devices/line-states.csv', { key: t.adminKey });
    expect(all.status, all.text).toBe(200);
    const [first, second] = [paris, dect].sort();
    const rowsOf = (mac: string) =>
      mac === paris
        ? [`Paris,${paris},${t.desk},1,${n1},${u1!.identifiant},unregistered,`, `Paris,${paris},${t.desk},2,${n0},${u0!.identifiant},aged,2026-07-01T10:00:00+02:00`]
        : [1, 2, 3, 4].map((port) => `Paris,${dect},${t.dect},${port},,,aged,2026-07-01T10:00:00+02:00`);
    expect(all.text.split('\r\n')).toEqual([
      'site,mac,device_type,port,user,identifiant,status,last_seen',
      `Lyon,${lyon},${t.single},1,,,unregistered,`,
      ...rowsOf(first!),
      ...rowsOf(second!),
      '',
    ]);
    const lyonOnly = await call(app, 'GET', '/v1/devices/line-states.csv?site=Lyon', { key: t.adminKey });
    expect(lyonOnly.text.split('\r\n').slice(1, -1)).toEqual([`Lyon,${lyon},${t.single},1,,,unregistered,`]);
    // the Paris phone registers again: its line 2 is registered, its line 1 still not
    await call(app, 'POST', '/v1/devices/registrations', { key: t.pbxKey, json: { identifiant: u0!.identifiant, contact: 'sip:a@192.0.2.1', expires: 3600, userAgent: `T46U ${paris}` } });
    const registered = await call(app, 'GET', '/v1/devices/line-states.csv?status=registered', { key: t.adminKey });
    expect(registered.text.split('\r\n').slice(1, -1)).toEqual([`Paris,${paris},${t.desk},2,${n0},${u0!.identifiant},registered,2026-07-01T11:00:00+02:00`]);
    const unregistered = await call(app, 'GET', '/v1/devices/line-states.csv?status=unregistered', { key: t.adminKey });
    expect(unregistered.text.split('\r\n').slice(1, -1).map((l) => l.split(',').slice(0, 4).join(','))).toEqual([`Lyon,${lyon},${t.single},1`, `Paris,${paris},${t.desk},1`]);
  });

  it('the same report asked by two callers within the minute is produced once and served to both', async () => {
    const t = await deviceTenant(app);
    const tech = await keyWithRoles(app, t, ['technicien']);
    await call(app, 'POST', '/v1/devices', { key: t.adminKey, json: { mac: freshMac(), deviceType: t.desk, site: 'Paris' } });
    const [first, second] = await Promise.all([
      call(app, 'GET', '/v1/devices/line-states.csv?site=Paris', { key: t.adminKey }),
      call(app, 'GET', '/v1/devices/line-states.csv?site=Paris', { key: tech.key }),
    ]);
    expect([first.status, second.status]).toEqual([200, 200]);
    expect([first.headers.get('x-forfait-export'), second.headers.get('x-forfait-export')].sort()).toEqual(['produced', 'shared']);
    expect(second.text).toBe(first.text);
    // a device added meanwhile is not in it until the minute is over: the report was not produced again
    await call(app, 'POST', '/v1/devices', { key: t.adminKey, json: { mac: freshMac(), deviceType: t.desk, site: 'Paris' } });
    clock.advance(59_000);
    const cached = await call(app, 'GET', '/v1/devices/line-states.csv?site=Paris', { key: tech.key });
    expect(cached.headers.get('x-forfait-export')).toBe('shared');
    expect(cached.text).toBe(first.text);
    clock.advance(1_000);
    const fresh = await call(app, 'GET', '/v1/devices/line-states.csv?site=Paris', { key: tech.key });
    expect(fresh.headers.get('x-forfait-export')).toBe('produced');
    expect(fresh.text.split('\r\n')).toHaveLength(first.text.split('\r\n').length + 2);
    // another filter is another report
    const other = await call(app, 'GET', '/v1/devices/line-states.csv?site=Lyon', { key: tech.key });
    expect(other.headers.get('x-forfait-export')).toBe('produced');
  });
});

describe('line-state export limits (seed 003: 3 running, 10 queued, 429, 408)', () => {
  it('with the 3 slots taken, 10 requests wait, the 11th gets 429 with Retry-After, and the 10 are served once slots free up', async () => {
    const clock = new TestClock();
    const app = clockedApp(clock, { exportSpacingMs: 0 });
    const t = await deviceTenant(app);
    const held = await Promise.all([app.exports.acquire(), app.exports.acquire(), app.exports.acquire()]);
    // ten different reports (so none is shared), as ten waiting requests
    const waiting = Array.from({ length: 10 }, (_, i) => call(app, 'GET', `/v1/devices/line-states.csv?site=site-${i}`, { key: t.adminKey }));
    for (let i = 0; i < 500 && app.exports.stats.waiting < 10; i++) await new Promise((r) => setTimeout(r, 10));
    expect(app.exports.stats).toEqual({ running: 3, waiting: 10 });
    const refused = await call(app, 'GET', '/v1/devices/line-states.csv?site=one-too-many', { key: t.adminKey });
    expect(refused.status).toBe(429);
    expect(refused.json.error.code).toBe('TOO_MANY_REQUESTS');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    for (const release of held) release();
    const served = await Promise.all(waiting);
    expect(served.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(app.exports.stats).toEqual({ running: 0, waiting: 0 });
    // a refusal was not remembered as the report's result
    const later = await call(app, 'GET', '/v1/devices/line-states.csv?site=one-too-many', { key: t.adminKey });
    expect(later.status).toBe(200);
  });

  it('a request that waited too long for a slot gets 408 with the error envelope', async () => {
    const clock = new TestClock();
    const app = clockedApp(clock, { exportSpacingMs: 0, exportLimits: { running: 1, waiting: 10, maxWaitMs: 200 } });
    const t = await deviceTenant(app);
    const release = await app.exports.acquire();
    const r = await call(app, 'GET', '/v1/devices/line-states.csv', { key: t.adminKey });
    release();
    expect(r.status).toBe(408);
    expect(r.json.error).toMatchObject({ code: 'REQUEST_TIMEOUT', requestId: expect.any(String) });
  });

  it('a failed export is a 500 with the error envelope and no internals, and is not kept: the next request produces it', async () => {
    const clock = new TestClock();
    const app = clockedApp(clock, { exportSpacingMs: 0 });
    const t = await deviceTenant(app);
    // the export fails inside its slot (what a lost database connection does)
    const run = app.exports.run.bind(app.exports);
    app.exports.run = (fn) => run(async () => {
      await fn();
      throw new Error('connection lost at /var/lib/postgresql');
    });
    const failed = await call(app, 'GET', '/v1/devices/line-states.csv', { key: t.adminKey });
    expect(failed.status).toBe(500);
    expect(failed.json.error).toMatchObject({ code: 'INTERNAL', message: 'internal error', requestId: expect.any(String) });
    expect(failed.text).not.toContain('postgresql');
    app.exports.run = run;
    const next = await call(app, 'GET', '/v1/devices/line-states.csv', { key: t.adminKey });
    expect(next.status).toBe(200);
    expect(next.headers.get('x-forfait-export')).toBe('produced');
    expect(app.exports.stats).toEqual({ running: 0, waiting: 0 });
  });

  it('an export asked while another of the same key runs waits its spacing; a third meanwhile is refused with 429', async () => {
    const clock = new TestClock();
    const app = clockedApp(clock, { exportSpacingMs: 300 });
    const t = await deviceTenant(app);
    const tech = await keyWithRoles(app, t, ['technicien']);
    // the slots taken: the first export stays running (queued) while the next ones come
    const held = await Promise.all([app.exports.acquire(), app.exports.acquire(), app.exports.acquire()]);
    const first = call(app, 'GET', '/v1/devices/line-states.csv?site=Paris', { key: t.adminKey });
    for (let i = 0; i < 500 && app.exports.stats.waiting < 1; i++) await new Promise((r) => setTimeout(r, 10));
    const second = call(app, 'GET', '/v1/devices/line-states.csv?site=Lyon', { key: t.adminKey });
    // another key is not held back by the first key's spacing
    const otherKey = call(app, 'GET', '/v1/devices/line-states.csv?site=Nice', { key: tech.key });
    for (let i = 0; i < 500 && app.exports.stats.waiting < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(app.exports.stats.waiting).toBe(2); // the first and the other key's; the second waits its spacing
    const third = await call(app, 'GET', '/v1/devices/line-states.csv?site=Nantes', { key: t.adminKey });
    expect(third.status).toBe(429);
    expect(third.json.error.message).toContain('spacing');
    for (const release of held) release();
    expect((await Promise.all([first, second, otherKey])).map((r) => r.status)).toEqual([200, 200, 200]);
    // one after the other, exports of a key are not delayed nor refused
    for (const site of ['Paris', 'Lyon', 'Nantes']) expect((await call(app, 'GET', `/v1/devices/line-states.csv?site=${site}&status=aged`, { key: t.adminKey })).status).toBe(200);
  });
});

describe('ExportSpacing and SharedResults, on a hand-moved clock', () => {
  it('delays an export asked while another of the caller runs, until the interval after that one started; other callers and exports one after the other not at all', async () => {
    let now = 1_000;
    const slept: number[] = [];
    const spacing = new ExportSpacing({ intervalMs: 5_000, now: () => now, sleep: async (ms) => void slept.push(ms) });
    const a1 = await spacing.start('key-a');
    const b1 = await spacing.start('key-b');
    expect(slept).toEqual([]);
    now += 1_500;
    const a2 = await spacing.start('key-a'); // a1 still runs
    expect(slept).toEqual([3_500]);
    a1();
    a2();
    b1();
    now += 100;
    (await spacing.start('key-a'))(); // none running: at once
    (await spacing.start('key-a'))();
    expect(slept).toEqual([3_500]);
  });

  it('refuses a third export of a caller while its second waits, and lets it through once the wait is over', async () => {
    let wake: () => void = () => {};
    const spacing = new ExportSpacing({ intervalMs: 5_000, now: () => 0, sleep: () => new Promise<void>((r) => (wake = r)) });
    const first = await spacing.start('k');
    const second = spacing.start('k');
    await expect(spacing.start('k')).rejects.toMatchObject({ code: 'TOO_MANY_REQUESTS', retryAfterSeconds: 10 }); // the second starts at 5 s, a third could at 10 s
    wake();
    const done = await second;
    first();
    done();
  });

  it('shares a result within the window, forgets a failure', async () => {
    let now = 0;
    const shared = new SharedResults<string>(60_000, () => now);
    let produced = 0;
    const make = async () => `report ${++produced}`;
    const a = shared.get('k', make);
    const b = shared.get('k', make);
    expect([a.shared, b.shared]).toEqual([false, true]);
    expect([await a.value, await b.value]).toEqual(['report 1', 'report 1']);
    now = 59_999;
    expect(await shared.get('k', make).value).toBe('report 1');
    now = 60_000;
    expect(await shared.get('k', make).value).toBe('report 2');
    const failing = shared.get('bad', async () => {
      throw new Error('export failed');
    });
    const waiter = shared.get('bad', make);
    await expect(failing.value).rejects.toThrow('export failed');
    await expect(waiter.value).rejects.toThrow('export failed');
    expect(await shared.get('bad', make).value).toBe('report 3');
  });
});
