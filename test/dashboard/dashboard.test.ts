import { serve } from '@hono/node-server';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../db/embedded.js';
import { testApp } from '../support/app.js';
import { keyWithRoles } from '../support/factory.js';
import { cdrTenant, cdrUser } from '../cdrs/helpers.js';
import { postCdrs, prng, randomCdrs } from '../indicators/data.js';
import type { Indicators } from '../../services/indicators/query.js';

/**
 * The manager's dashboard in a real browser (Debian's chromium driven by
 * playwright-core): a key typed in, the October figures shown equal to the
 * API's, no request leaving the server, the CSV export asked with the same
 * filters. Screenshots in var/screenshots/ (fr and en) for a human to look at.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const shots = path.resolve(import.meta.dirname, '../../var/screenshots');
const app = testApp();
let server: Server;
let origin: string;
let context: BrowserContext;
let userDataDir: string;

const haveBrowser = existsSync(CHROMIUM);

/** The environment without libfaketime's variables: chromium crashes with it preloaded. */
function browserEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && e[0] !== 'LD_PRELOAD' && !e[0].startsWith('FAKETIME')));
}

beforeAll(async () => {
  if (!haveBrowser) return;
  await mkdir(shots, { recursive: true });
  const port = await freePort();
  server = serve({ fetch: app.app.fetch, port, hostname: '127.0.0.1' }) as Server;
  origin = `http://127.0.0.1:${port}`;
  userDataDir = await mkdtemp(path.join(tmpdir(), 'forfait-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
    locale: 'fr-FR',
    timezoneId: 'America/Los_Angeles', // not the tenant's: the page must show the tenant's days
    env: browserEnv(),
  });
  // the page's clock is the test's (test/clock/suite-at.sh moves the test's clock; chromium cannot run under libfaketime)
  await context.clock.setSystemTime(Date.now());
}, 120_000);

afterAll(async () => {
  await context?.close();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
});

const digits = (s: string) => s.replace(/\D/g, '');

async function kpis(page: Page): Promise<Record<string, string>> {
  return page.$$eval('[data-kpi]', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-kpi'), (e.textContent ?? '').trim()])));
}

describe.skipIf(!haveBrowser && !process.env.CI)('GET /dashboard in chromium', () => {
  it('opens with a key, shows the API’s numbers in fr and en, exports with the same filters', async () => {
    const t = await cdrTenant(app, { locale: 'fr', currency: 'EUR' });
    const users = await Promise.all(Array.from({ length: 6 }, () => cdrUser(t.id, { balance: '100000', forfaitMinutes: 60 })));
    await postCdrs(app, t.adminKey, randomCdrs(prng(8), 3000, users.map((u) => u.identifiant), { start: '2026-10-01T00:00:00', days: 31, zone: 'Europe/Paris' }, 'dash'), 1000);
    const manager = await keyWithRoles(app, t, ['comptable']);
    const api = (await (
      await fetch(`${origin}/v1/indicators?from=2026-10-01&to=2026-11-01&granularity=day`, { headers: { authorization: `Bearer ${manager.key}` } })
    ).json()) as Indicators;

    const page = await context.newPage();
    const requested: string[] = [];
    page.on('request', (r) => requested.push(r.url()));
    await page.goto(`${origin}/dashboard?from=2026-10-01&to=2026-11-01&granularity=day`);
    await page.waitForSelector('#login:not([hidden])');
    await page.screenshot({ path: path.join(shots, 'dashboard-login.png') });
    await page.fill('#key', manager.key);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('body[data-loaded]');

    const fr = await kpis(page);
    expect(digits(fr['outgoing.calls']!)).toBe(String(api.outgoing.calls));
    expect(digits(fr['outgoing.answered']!)).toBe(String(api.outgoing.answered));
    expect(digits(fr['incoming.calls']!)).toBe(String(api.incoming.calls));
    expect(digits(fr['incoming.missed']!)).toBe(String(api.incoming.missed));
    // money with 2 decimals and the currency sign: "1 234,57 €"
    const [units, cents = ''] = (api.outgoing.cost as string).split('.');
    const rounded = (BigInt(units! + cents.slice(0, 4)) + 50n) / 100n;
    expect(digits(fr['outgoing.cost']!)).toBe(rounded.toString());
    expect(fr['outgoing.cost']).toContain('€');
    expect(fr['outgoing.cost']).toMatch(/\d,\d{2}/);
    expect(await page.getAttribute('html', 'lang')).toBe('fr');
    expect(await page.textContent('h2')).toBe('Appels dans le temps');
    // the period table: one row per day of October, totals equal to the API's
    const rows = await page.$$eval('#table tbody tr', (trs) => trs.length);
    expect(rows).toBe(31);
    const foot = await page.$$eval('#table tfoot td', (tds) => tds.map((td) => td.textContent ?? ''));
    expect(digits(foot[1]!)).toBe(String(api.outgoing.calls));
    expect(digits(foot[3]!)).toBe(String(api.incoming.calls));
    // every chart drew
    const charts = await page.$$eval('canvas', (cs) => cs.map((c) => Number(c.getAttribute('width')) > 0));
    expect(charts).toEqual([true, true, true, true, true]);
    await page.screenshot({ path: path.join(shots, 'dashboard-fr.png'), fullPage: true });

    await page.click('[data-lang=en]');
    const en = await kpis(page);
    expect(digits(en['outgoing.calls']!)).toBe(String(api.outgoing.calls));
    expect(en['outgoing.cost']).toMatch(/^€[\d,]+\.\d{2}$/);
    expect(await page.textContent('h2')).toBe('Calls over time');
    expect(await page.textContent('#status')).toMatch(/^Updated at .* Europe\/Paris$/);
    await page.screenshot({ path: path.join(shots, 'dashboard-en.png'), fullPage: true });

    // the key stays for the session: a reload opens the dashboard directly
    await page.reload();
    await page.waitForSelector('body[data-loaded]');
    expect(await page.isHidden('#login')).toBe(true);

    // export: the CDR export with the same period and filters, the key as a Bearer header
    await page.fill('#site', 'Lyon');
    const exportRequest = page.waitForRequest((r) => r.url().includes('/v1/cdrs/export.csv'));
    await page.click('#export');
    const req = await exportRequest;
    const url = new URL(req.url());
    expect(Object.fromEntries(url.searchParams)).toEqual({ from: '2026-10-01', to: '2026-11-01', site: 'Lyon' });
    expect(req.headers().authorization).toBe(`Bearer ${manager.key}`);

    // everything came from this server: no CDN
    expect(requested.length).toBeGreaterThan(3);
    for (const u of requested) expect(u.startsWith(origin) || u.startsWith('blob:') || u.startsWith('data:'), u).toBe(true);
    await page.close();
  }, 120_000);

  it('tells a manager whose key is wrong', async () => {
    const page = await context.newPage();
    await page.goto(`${origin}/dashboard`);
    await page.fill('#key', 'ffk_0000000000000000_notavalidsecretatall');
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#login-error:not(:empty)');
    expect(await page.textContent('#login-error')).toMatch(/clé|key/);
    await page.close();
  }, 60_000);
});
