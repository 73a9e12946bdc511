import { serve } from '@hono/node-server';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../api/app.js';
import { freePort } from '../../db/embedded.js';
import { call, testDb, unlimited } from '../support/app.js';
import { axeSeen, haveBrowser, launchChromium, look, newPerson, signIn } from '../support/chromium.js';
import { testIssuer } from '../support/issuer.js';
import { portalPerson } from '../support/portal.js';
import { freeUdpPort, missingBinaries, scenarios, startChild, startKamailio, udpPortTaken, type Child, type Kamailio } from '../pbx/harness.js';
import { clockedApp, deviceTenant, freshMac, TestClock, type DeviceTenant } from '../devices/helpers.js';

/**
 * The Devices page in a real browser (issue 21 point 5; Debian's chromium
 * driven by playwright-core, axe-core on every page, photographed at 1280 and
 * 390 px into FORFAIT_SCREENS): a technicien adds a device, imports a file
 * after a dry run that listed its line errors, sees devices registered and
 * aged after the registrar's reports (POST /v1/devices/registrations with the
 * pbx key, on the app's injected clock), restarts one through a real
 * Kamailio to a sipp phone (its 200 shown, then the 408 once the phone is
 * gone), exports the line states and retires one; a comptable has no Devices;
 * another tenant's device is a 404. Skipped only where chromium, kamailio or
 * sipp is missing, never in CI.
 */
const missing = [...(haveBrowser ? [] : ['chromium']), ...missingBinaries(['kamailio', 'sipp'])];
const skip = missing.length > 0 && process.env.CI !== 'true';
if (skip) console.warn(`test/portal/devicesBrowser.test.ts skipped: ${missing.join(', ')} not installed`);

const clock = new TestClock(new Date('2026-11-03T09:00:00Z'));
let dir: string;
let app: App;
let server: Server;
let origin: string;
let browser: Browser;
let kamailio: Kamailio | undefined;
let phone: Child | undefined;
let t: DeviceTenant;
const { db } = testDb();

describe.skipIf(skip)('the Devices page in chromium', () => {
  beforeAll(async () => {
    if (missing.length) throw new Error(`CI must have ${missing.join(', ')}: .ci/run installs them`);
    dir = await mkdtemp(path.join(tmpdir(), 'forfait-devpage-'));
    const [port, rpcPort] = [await freePort(), await freePort()];
    origin = `http://127.0.0.1:${port}`;
    app = clockedApp(clock, { issuer: testIssuer, rateLimits: unlimited, kamailioRpc: { url: `http://127.0.0.1:${rpcPort}/RPC`, timeoutMs: 4_000 } });
    server = serve({ fetch: app.app.fetch, port, hostname: '127.0.0.1' }) as Server;
    t = await deviceTenant(app);
    kamailio = await startKamailio({ dir: path.join(dir, 'kamailio'), port: await freeUdpPort(), gateway: 'sip:127.0.0.1:9', forfaitUrl: origin, key: t.pbxKey, rpcPort });
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    process.stdout.write(`axe on ${axeSeen.length} pages: ${JSON.stringify(axeSeen.filter((s) => s.violations.length))}\n`);
    await browser?.close();
    await phone?.stop();
    await kamailio?.stop();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    await app?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Clicks and waits for the page it leads to. */
  const go = (page: Page, selector: string) => Promise.all([page.waitForNavigation(), page.click(selector)]);
  const badge = (page: Page, mac: string) => page.textContent(`table.list tr:has(a:text("${mac}")) .badge`);

  it('a technicien adds, imports after a dry run, sees registrations, restarts through Kamailio, exports the line states and retires; a comptable has no Devices; another tenant’s device is a 404', async () => {
    const techPerson = await portalPerson(app, t, ['technicien']);
    const tech = await newPerson(browser);
    const page = tech.page;
    await signIn(page, origin, techPerson.email, techPerson.password);
    expect(page.url()).toBe(`${origin}/portal/directory`);
    await go(page, 'nav.menu a[href="/portal/devices"]');
    expect(await page.textContent('table.list')).toContain('Aucun appareil.');
    await look(page, 'devices-01-empty');

    // add a device: site, approved type, MAC as the label on the phone says it, a line
    const [macA, macB, macC] = [freshMac(), freshMac(), freshMac()];
    const [lineA, lineB, lineC] = t.users.map((u) => u.identifiant);
    await go(page, 'a.button[href="/portal/devices/new"]');
    await look(page, 'devices-02-new');
    await page.fill('#mac', macA.toUpperCase());
    await page.selectOption('#device-site', 'Paris');
    await page.selectOption('#deviceType', t.desk);
    await page.fill('#line1', lineA!);
    await page.fill('#notes', 'Accueil, rez-de-chaussée');
    await go(page, 'form.device-form button[type=submit]');
    expect(page.url()).toMatch(/\/portal\/devices\/[0-9a-f-]{36}\?ok=saved$/);
    const pageA = page.url().replace(/\?.*/, '');
    expect(await page.textContent('.toolbar .badge')).toContain('Non enregistré');

    // import: the dry run lists every line error and writes nothing; then the plan, confirmed
    await page.goto(`${origin}/portal/devices/import`);
    const bad = `mac,device_type,site,lines\r\n${macB},${t.desk},Paris,1:${lineB}\r\n00:1A:2B,${t.desk},Paris,\r\n${macC},${t.single},Paris,1:${lineC}\r\n`;
    await page.setInputFiles('#file', { name: 'appareils.csv', mimeType: 'text/csv', buffer: Buffer.from(bad) });
    await go(page, 'form[enctype="multipart/form-data"] button[type=submit]');
    const errors = await page.textContent('.error-box');
    // a French page: the API's refusal said in French, each line's field by its label
    expect(errors).toContain('Des valeurs sont refusées. À corriger : « Adresse MAC », « Type d’appareil »');
    expect(errors).toMatch(/3\s*Adresse MAC\s*00:1A:2B\s*n’est pas une adresse MAC/);
    expect(errors).toMatch(/4\s*Type d’appareil\s*\S+\s*type non approuvé pour le site Paris/);
    await look(page, 'devices-03-import-errors');
    const good = `mac,device_type,site,lines,notes\r\n${macB},${t.desk},Paris,1:${lineB},Salle de réunion\r\n${macC},${t.single},Lyon,1:${lineC},\r\n`;
    await page.setInputFiles('#file', { name: 'appareils.csv', mimeType: 'text/csv', buffer: Buffer.from(good) });
    await go(page, 'form[enctype="multipart/form-data"] button[type=submit]');
    expect(await page.textContent('[data-count=created]')).toBe('2');
    expect(await db.selectFrom('devices').select('id').where('tenantId', '=', t.id).execute()).toHaveLength(1);
    await look(page, 'devices-04-import-plan');
    await go(page, 'form[action="/portal/devices/import/confirm"] button[type=submit]');
    expect(await page.textContent('.notice')).toContain('Import effectué : 2 créé(s)');
    expect(await db.selectFrom('devices').select('id').where('tenantId', '=', t.id).execute()).toHaveLength(3);

    // the registrar reports (what forfait-devices.cfg posts): A for 600 s, B for 60 s; two minutes later B is aged
    const sipPort = await freeUdpPort();
    for (const [identifiant, mac, expires] of [
      [lineA!, macA, 600],
      [lineB!, macB, 60],
    ] as const) {
      const r = await call(app, 'POST', '/v1/devices/registrations', {
        key: t.pbxKey,
        json: { identifiant, contact: `sip:${identifiant}@127.0.0.1:${sipPort}`, expires, userAgent: `Yealink SIP-T46U 108.86.0.20 ${mac.toUpperCase()}`, sourceIp: '127.0.0.1', sourcePort: sipPort },
      });
      expect(r.status, r.text).toBe(200);
    }
    clock.advance(120_000);
    await page.goto(`${origin}/portal/devices`);
    expect(await badge(page, macA)).toContain('Enregistré');
    expect(await badge(page, macB)).toContain('Âgé');
    expect(await badge(page, macC)).toContain('Non enregistré');
    await look(page, 'devices-05-list');
    await page.selectOption('#status', 'aged');
    await go(page, 'form.filters button[type=submit]');
    expect(await page.textContent('table.list')).toContain(macB);
    expect(await page.textContent('table.list')).not.toContain(macA);

    // the device's page, from the row's Actions menu (seed 003): status, last registration, user agent, IP, lines
    await page.goto(`${origin}/portal/devices`);
    await page.click(`table.list tr:has(a:text("${macA}")) details.row-actions summary`);
    await go(page, `table.list tr:has(a:text("${macA}")) details.row-actions a:text("État de l’appareil")`);
    expect(page.url()).toBe(pageA);
    expect(await page.textContent('.toolbar .badge')).toContain('Enregistré');
    expect(await page.textContent('[data-field=userAgent]')).toBe(`Yealink SIP-T46U 108.86.0.20 ${macA.toUpperCase()}`);
    expect(await page.textContent('[data-field=ip]')).toBe(`127.0.0.1:${sipPort}`);
    expect(await page.textContent('table.lines')).toContain(lineA);
    await look(page, 'devices-06-device');

    // restart through the real Kamailio to a sipp phone: the NOTIFY arrives, its 200 is shown
    const log = path.join(dir, 'phone.log');
    phone = startChild('sipp', ['-sf', scenarios.phoneNotify, '-i', '127.0.0.1', '-p', String(sipPort), '-t', 'u1', '-m', '1', '-nostdin', '-trace_logs', '-log_file', log]);
    for (let i = 0; i < 300 && !(await udpPortTaken(sipPort)); i++) await new Promise((r) => setTimeout(r, 100)); // sipp binds its port
    page.once('dialog', (d) => void d.accept());
    await go(page, `form[action="${new URL(pageA).pathname}/restart"] button[type=submit]`);
    expect(await page.textContent('.notice')).toContain('le téléphone a répondu 200 OK');
    expect(await page.textContent('[data-field=lastRestart]')).toContain('200 OK');
    expect((await readFile(log, 'utf8')).split('\n').find((l) => l.startsWith('notify '))).toMatch(/ check-sync /);
    await look(page, 'devices-07-restart-200');
    // the answer is on a page of its own: reloading it restarts nothing
    await page.reload();
    expect(await page.textContent('.notice')).toContain('200 OK');
    const deviceA = pageA.split('/').pop()!;
    expect(await db.selectFrom('deviceRestarts').select('sipStatus').where('deviceId', '=', deviceA).execute()).toEqual([{ sipStatus: 200 }]);
    // the phone is gone: no answer within the timeout, the 408 is shown
    await phone.stop();
    page.once('dialog', (d) => void d.accept());
    await go(page, `form[action="${new URL(pageA).pathname}/restart"] button[type=submit]`);
    expect(await page.textContent('.error-box')).toContain('Le téléphone n’a pas répondu (408');
    await look(page, 'devices-08-restart-408');

    // the line-state report, downloaded through the portal
    await page.goto(`${origin}/portal/devices?site=Paris`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('a[href^="/portal/devices/line-states"]')]);
    const states = await readFile((await download.path())!, 'utf8');
    expect(states.split('\r\n')[0]).toBe('site,mac,device_type,port,user,identifiant,status,last_seen');
    expect(states).toContain(`Paris,${macA},${t.desk},1,`);
    expect(states).not.toContain(macC);

    // retire C, after the confirmation page; it stays in the history
    await page.goto(`${origin}/portal/devices?site=Lyon`);
    await go(page, `table.list a:text("${macC}")`);
    await go(page, 'a.button.danger');
    await look(page, 'devices-09-retire');
    await go(page, 'button.danger');
    expect(await page.textContent('.notice')).toContain(`Appareil ${macC} retiré.`);
    expect(await page.textContent('table.list')).not.toContain(macC);
    await page.goto(`${origin}/portal/devices?retired=true`);
    expect(await page.textContent('table.list')).toContain(macC);

    // the sites, and the list in English
    await page.goto(`${origin}/portal/devices/sites`);
    await look(page, 'devices-10-sites');
    await page.goto(`${origin}/portal/devices?lang=en`);
    expect(await page.textContent('h1')).toBe('Devices');
    await look(page, 'devices-11-list-en');
    await page.goto(`${origin}/portal/devices?lang=fr`);

    // another tenant's device: a 404 that shows nothing of it
    const other = await deviceTenant(app);
    const theirs = await call(app, 'POST', '/v1/devices', { key: other.adminKey, json: { mac: freshMac(), deviceType: other.desk, site: 'Paris', notes: 'Theirs' } });
    expect(theirs.status, theirs.text).toBe(201);
    const lost = await page.goto(`${origin}/portal/devices/${theirs.json.id}`);
    expect(lost?.status()).toBe(404);
    expect(await page.textContent('main')).not.toContain(theirs.json.macDisplay);
    await look(page, 'devices-12-not-found');

    // a comptable: no Devices in the menu, and its URL is the API's 403
    const comptablePerson = await portalPerson(app, t, ['comptable']);
    const comptable = await newPerson(browser);
    await signIn(comptable.page, origin, comptablePerson.email, comptablePerson.password);
    expect(await comptable.page.textContent('nav.menu')).not.toContain('Appareils');
    expect((await comptable.page.goto(`${origin}/portal/devices`))?.status()).toBe(403);
    await look(comptable.page, 'devices-13-comptable-403');
    for (const x of [tech, comptable]) await x.context.close();
  }, 300_000);
});
