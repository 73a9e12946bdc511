import { defaultConfig } from '../../api/context.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../api/app.js';
import { call, testDb, unlimited } from '../support/app.js';
import { testIssuer } from '../support/issuer.js';
import { portalSignedIn, type PortalBrowser } from '../support/portal.js';
import { clockedApp, deviceTenant, freshMac, TestClock, type DeviceTenant } from '../devices/helpers.js';

/**
 * The Devices pages in process (issue 21 point 5; the browser story is
 * test/portal/devicesBrowser.test.ts): forms post with the session cookie and
 * its CSRF field, through the API, on an app whose clock the test moves.
 */
const clock = new TestClock(new Date('2026-11-03T09:00:00Z'));
// sessions that outlast the days this test moves its clock by (the idle timeout has tests of its own)
const settings = { issuer: testIssuer, rateLimits: unlimited, portal: { ...defaultConfig.portal, session: { idleMinutes: 60 * 24 * 30, lifetimeHours: 24 * 30 } } };
let app: App;
let t: DeviceTenant;
let other: DeviceTenant;
let tech: PortalBrowser;
const { db } = testDb();

beforeAll(async () => {
  app = clockedApp(clock, settings);
  t = await deviceTenant(app);
  other = await deviceTenant(app);
  tech = await portalSignedIn(app, t, ['technicien']);
});
afterAll(() => app.close());

const devicesOf = (tenantId: string) => db.selectFrom('devices').select(['id', 'mac', 'notes', 'retiredAt']).where('tenantId', '=', tenantId).execute();

function report(identifiant: string, mac: string, expires = 600) {
  return call(app, 'POST', '/v1/devices/registrations', {
    key: t.pbxKey,
    json: { identifiant, contact: `sip:${identifiant}@192.0.2.10:5062`, expires, userAgent: `Yealink SIP-T46U 108.86.0.20 ${mac.toUpperCase()}`, sourceIp: '192.0.2.10', sourcePort: 5062 },
  });
}

/** Adds a device through the page's form; answers its page's path. */
async function added(b: PortalBrowser, fields: Record<string, string>): Promise<string> {
  await b.get('/portal/devices/new');
  const r = await b.post('/portal/devices/new', fields);
  expect(r.status, r.text).toBe(303);
  expect(r.headers.get('location')).toMatch(/^\/portal\/devices\/[0-9a-f-]{36}\?ok=saved$/);
  return r.headers.get('location')!.replace(/\?.*/, '');
}

describe('the Devices pages', () => {
  it('a technicien: the menu entry, a form error naming the MAC, a device added, then registered, aged and unregistered as the clock moves', async () => {
    const list = await tech.get('/portal/devices');
    expect(list.status).toBe(200);
    expect(list.text).toContain('<a href="/portal/devices" aria-current="page">Appareils</a>');
    const before = (await devicesOf(t.id)).length;

    const form = await tech.get('/portal/devices/new');
    expect(form.text).toContain(`value="${t.desk}"`);
    expect(form.text).toContain('name="line2"'); // the largest approved type has 4 ports (the DECT base)
    expect(form.text).toContain('name="line4"');
    const bad = await tech.post('/portal/devices/new', { mac: '00:1a:2b', site: 'Paris', deviceType: t.desk, line1: t.users[0]!.identifiant });
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/<td>Adresse MAC<\/td><td>00:1a:2b<\/td><td>n’est pas une adresse MAC/);
    expect(bad.text).toContain('value="00:1a:2b"'); // what was typed is kept
    expect(await devicesOf(t.id)).toHaveLength(before);
    const wrongSite = await tech.post('/portal/devices/new', { mac: freshMac(), site: 'Lyon', deviceType: t.desk });
    expect(wrongSite.status).toBe(400);
    expect(wrongSite.text).toContain('<td>Type d’appareil</td>');
    expect(await devicesOf(t.id)).toHaveLength(before);

    const mac = freshMac();
    const page = await added(tech, { mac: mac.toUpperCase().replaceAll(':', '-'), site: 'Paris', deviceType: t.desk, line1: t.users[0]!.identifiant, notes: 'Accueil' });
    const shown = await tech.get(page);
    expect(shown.status).toBe(200);
    expect(shown.text).toContain(`Appareil ${mac}`);
    expect(shown.text).toContain('data-status="unregistered"');
    expect(shown.text).toContain('Non enregistré');
    expect(shown.text).toContain('Accueil');
    expect(shown.text).toContain(t.users[0]!.identifiant);

    expect((await report(t.users[0]!.identifiant, mac)).status).toBe(200);
    const registered = await tech.get(page);
    expect(registered.text).toContain('data-status="registered"');
    expect(registered.text).toMatch(/<span aria-hidden="true">●<\/span> Enregistré/);
    expect(registered.text).toContain(`Yealink SIP-T46U 108.86.0.20 ${mac.toUpperCase()}`);
    expect(registered.text).toContain('192.0.2.10:5062');
    expect(registered.text).toContain('03/11/2026 09:00 UTC');
    const filtered = await tech.get('/portal/devices?status=registered&site=Paris');
    expect(filtered.text).toContain(mac);
    expect((await tech.get('/portal/devices?status=unregistered')).text).not.toContain(mac);
    expect((await tech.get(`/portal/devices?q=${mac.slice(-8).toUpperCase()}`)).text).toContain(mac);
    expect((await tech.get('/portal/devices?q=ff:ff:ff:ff')).text).toContain('Aucun appareil.');

    clock.advance(601_000);
    expect((await tech.get(page)).text).toContain('data-status="aged"');
    clock.advance(24 * 3600_000);
    const gone = await tech.get(`${page}?lang=en`);
    expect(gone.text).toContain('data-status="unregistered"');
    expect(gone.text).toContain('Unregistered');
    await tech.get(`${page}?lang=fr`);
  });

  it('edit, restart (refused when unregistered, 503 with no registrar), retire after a confirmation: the history keeps it', async () => {
    const mac = freshMac();
    const page = await added(tech, { mac, site: 'Paris', deviceType: t.desk, line1: t.users[1]!.identifiant });
    const id = page.split('/').pop()!;
    const edited = await tech.post(page, { site: 'Paris', deviceType: t.desk, line1: t.users[1]!.identifiant, line2: t.users[2]!.identifiant, notes: 'Bureau 12' });
    expect(edited.status, edited.text).toBe(303);
    const lines = await db.selectFrom('deviceLines').select(['port']).where('deviceId', '=', id).orderBy('port').execute();
    expect(lines.map((l) => l.port)).toEqual([1, 2]);
    // a port beyond the type's two: the API's error names it, nothing changed
    const bad = await tech.post(page, { site: 'Paris', deviceType: t.desk, line1: t.users[1]!.identifiant, line3: t.users[3]!.identifiant, notes: 'Changed' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('lines.3');
    expect((await db.selectFrom('devices').select('notes').where('id', '=', id).executeTakeFirstOrThrow()).notes).toBe('Bureau 12');

    const notRegistered = await tech.post(`${page}/restart`, {});
    expect(notRegistered.status).toBe(409);
    expect(notRegistered.text).toContain('Un redémarrage ne s’adresse qu’à un téléphone enregistré');
    expect((await report(t.users[1]!.identifiant, mac)).status).toBe(200);
    const noRegistrar = await tech.post(`${page}/restart`, {});
    expect(noRegistrar.status).toBe(503);
    expect(noRegistrar.text).toContain('FORFAIT_KAMAILIO_RPC_URL');
    expect((await tech.post(`${page}/restart`, {}, { csrf: false })).status).toBe(403);

    // the row's Actions menu in the list: status, restart, retire
    const row = await tech.get('/portal/devices');
    expect(row.text).toContain(`action="${page}/restart"`);
    expect(row.text).toContain(`href="${page}/retire"`);
    const confirm = await tech.get(`${page}/retire`);
    expect(confirm.status).toBe(200);
    expect(confirm.text).toContain('Oui, retirer');
    expect((await tech.post(`${page}/retire`, {}, { csrf: false })).status).toBe(403);
    expect((await db.selectFrom('devices').select('retiredAt').where('id', '=', id).executeTakeFirstOrThrow()).retiredAt).toBeNull();
    const retired = await tech.post(`${page}/retire`, {});
    expect(retired.status).toBe(303);
    const notice = await tech.get(retired.headers.get('location')!);
    expect(notice.text).toContain(`Appareil ${mac} retiré.`);
    expect(notice.text).not.toContain(`>${mac}</a>`);
    const retiredList = await tech.get('/portal/devices?retired=true');
    expect(retiredList.text).toContain(`>${mac}</a>`);
    expect(retiredList.text).not.toContain(`action="${page}/restart"`);
    const history = await tech.get(page);
    expect(history.text).toContain('Retiré le');
    expect(history.text).not.toContain(`action="${page}/restart"`);
    expect((await tech.post(`${page}/retire`, {})).status).toBe(409);
    // its MAC is free again
    await added(tech, { mac, site: 'Paris', deviceType: t.desk });
  });

  it('import: every line error listed and nothing written; the dry run’s plan writes nothing; confirmed; template, export, line states', async () => {
    const before = (await devicesOf(t.id)).length;
    const [m1, m2] = [freshMac(), freshMac()];
    const badCsv = `mac,device_type,site,lines\r\nnot-a-mac,${t.desk},Paris,\r\n${m1},${t.desk},Nowhere,\r\n${m2},${t.desk},Paris,1:${t.users[0]!.identifiant}\r\n`;
    await tech.get('/portal/devices/import');
    const refused = await tech.post('/portal/devices/import', { file: badCsv });
    expect(refused.status).toBe(400);
    expect(refused.text).toMatch(/<td>2<\/td><td>Adresse MAC<\/td><td>not-a-mac<\/td>/);
    expect(refused.text).toMatch(/<td>3<\/td><td>Site<\/td><td>Nowhere<\/td>/);
    expect(await devicesOf(t.id)).toHaveLength(before);

    const goodCsv = `\uFEFFmac;device_type;site;lines;notes\r\n${m1};${t.desk};Paris;1:${t.users[2]!.identifiant};Salle A\r\n${m2};${t.single};Lyon;1:${t.users[3]!.identifiant};\r\n`;
    const plan = await tech.post('/portal/devices/import', { file: goodCsv });
    expect(plan.status).toBe(200);
    expect(plan.text).toContain('<dd data-count="created">2</dd>');
    expect(plan.text).toContain(`<p class="matricules">${m1}, ${m2}</p>`);
    expect(await devicesOf(t.id)).toHaveLength(before);
    const csv = /<textarea name="csv" hidden="">([\s\S]*?)<\/textarea>/.exec(plan.text)![1]!.replaceAll('&amp;', '&');
    const done = await tech.post('/portal/devices/import/confirm', { csv });
    expect(done.status, done.text).toBe(303);
    expect((await tech.get(done.headers.get('location')!)).text).toContain('Import effectué : 2 créé(s), 0 modifié(s), 0 inchangé(s).');
    expect(await devicesOf(t.id)).toHaveLength(before + 2);

    const template = await call(app, 'GET', '/v1/devices/template.csv', { headers: { cookie: tech.cookie } });
    expect(template.status).toBe(200);
    expect(template.text).toContain(`# Paris,${t.desk}`);
    const listPage = await tech.get('/portal/devices?site=Lyon');
    expect(listPage.text).toContain('href="/v1/devices/export.csv?site=Lyon"');
    const exported = await call(app, 'GET', '/v1/devices/export.csv?site=Lyon', { headers: { cookie: tech.cookie } });
    expect(exported.status).toBe(200);
    expect(exported.text).toContain(`${m2},${t.single},0,Lyon,1:${t.users[3]!.identifiant}`);
    expect(listPage.text).toContain('href="/portal/devices/line-states?site=Lyon"');
    const states = await tech.get('/portal/devices/line-states?site=Lyon');
    expect(states.status).toBe(200);
    expect(states.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(states.headers.get('x-forfait-export')).toBe('produced');
    expect(states.text.split('\r\n')[0]).toBe('site,mac,device_type,port,user,identifiant,status,last_seen');
    expect(states.text).toContain(`Lyon,${m2},${t.single},1,`);
    expect(states.text).not.toContain('Paris,');
    expect((await tech.get('/portal/devices/line-states?site=Lyon')).headers.get('x-forfait-export')).toBe('shared');
  });

  it('the line-state report when the export queue is full (429) or its wait too long (408): said on the Devices page, with when to retry', async () => {
    for (const [limits, status] of [
      [{ running: 0, waiting: 0, maxWaitMs: 1_000 }, 429],
      [{ running: 0, waiting: 1, maxWaitMs: 50 }, 408],
    ] as const) {
      const full = clockedApp(clock, { ...settings, exportLimits: limits });
      try {
        const r = await call(full, 'GET', '/portal/devices/line-states?status=registered', { headers: { cookie: tech.cookie } });
        expect(r.status).toBe(status);
        expect(r.text).toMatch(/Trop d’exports en cours.*Réessayez dans \d+ s/);
        expect(r.text).toContain('<h1>Appareils</h1>');
      } finally {
        await full.close();
      }
    }
  });

  it('sites: added with their approved types; a name taken is the API’s 409', async () => {
    const page = await tech.get('/portal/devices/sites');
    expect(page.status).toBe(200);
    expect(page.text).toContain('value="Paris"');
    const made = await tech.post('/portal/devices/sites', { name: 'Marseille', deviceTypes: [t.single, t.desk] });
    expect(made.status).toBe(200);
    expect(made.text).toContain('Site Marseille ajouté.');
    const site = await db.selectFrom('sites').select('id').where('tenantId', '=', t.id).where('name', '=', 'Marseille').executeTakeFirstOrThrow();
    const taken = await tech.post('/portal/devices/sites', { name: 'Paris' });
    expect(taken.status).toBe(409);
    const renamed = await tech.post(`/portal/devices/sites/${site.id}`, { name: 'Marseille', deviceTypes: [t.single] });
    expect(renamed.status).toBe(200);
    expect((await call(app, 'GET', '/v1/sites', { key: t.adminKey })).json.items.find((s: { name: string }) => s.name === 'Marseille').deviceTypes).toEqual([t.single]);
  });

  it('a comptable has no Devices (no menu entry, the API’s 403); another tenant’s device and site are a 404 and stay as they were', async () => {
    const comptable = await portalSignedIn(app, t, ['comptable']);
    const calls = await comptable.get('/portal/calls');
    expect(calls.status).toBe(200);
    expect(calls.text).not.toContain('href="/portal/devices"');
    for (const path of ['/portal/devices', '/portal/devices/new', '/portal/devices/import', '/portal/devices/sites', '/portal/devices/line-states']) {
      const r = await comptable.get(path);
      expect(r.status, path).toBe(403);
      expect(r.text).toContain('Accès refusé');
    }
    const before = (await devicesOf(t.id)).length;
    expect((await comptable.post('/portal/devices/new', { mac: freshMac(), site: 'Paris', deviceType: t.desk })).status).toBe(403);
    expect(await devicesOf(t.id)).toHaveLength(before);

    const theirs = await call(app, 'POST', '/v1/devices', { key: other.adminKey, json: { mac: freshMac(), deviceType: other.desk, site: 'Paris', notes: 'Theirs' } });
    expect(theirs.status, theirs.text).toBe(201);
    const path = `/portal/devices/${theirs.json.id}`;
    await tech.get('/portal/devices');
    for (const r of [
      await tech.get(path),
      await tech.get(`${path}/retire`),
      await tech.post(path, { site: 'Paris', deviceType: t.desk, notes: 'Mine now' }),
      await tech.post(`${path}/restart`, {}),
      await tech.post(`${path}/retire`, {}),
    ]) {
      expect(r.status).toBe(404);
      expect(r.text).not.toContain(theirs.json.macDisplay);
      expect(r.text).not.toContain('Theirs');
    }
    expect(await db.selectFrom('devices').select(['notes', 'retiredAt']).where('id', '=', theirs.json.id).executeTakeFirstOrThrow()).toEqual({ notes: 'Theirs', retiredAt: null });
    // a notice never names another tenant's device, even retired, whatever the URL says
    expect((await call(app, 'POST', `/v1/devices/${theirs.json.id}/retire`, { key: other.adminKey })).status).toBe(200);
    const spoofed = await tech.get(`/portal/devices?ok=retired&id=${theirs.json.id}`);
    expect(spoofed.status).toBe(200);
    expect(spoofed.text).not.toContain(theirs.json.macDisplay);
    expect(spoofed.text).not.toContain('class="alert notice"');
    const theirSite = await db.selectFrom('sites').select(['id', 'name']).where('tenantId', '=', other.id).where('name', '=', 'Paris').executeTakeFirstOrThrow();
    expect((await tech.post(`/portal/devices/sites/${theirSite.id}`, { name: 'Taken over' })).status).toBe(404);
    expect((await db.selectFrom('sites').select('name').where('id', '=', theirSite.id).executeTakeFirstOrThrow()).name).toBe('Paris');
  });
});
