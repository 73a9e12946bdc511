import { serve } from '@hono/node-server';
import type { Server } from 'node:http';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../api/app.js';
import { freePort } from '../../db/embedded.js';
import { testIssuer } from '../support/issuer.js';
import { runInvoices } from '../../services/invoices/run.js';
import { call, testApp, testDb } from '../support/app.js';
import { axeSeen, haveBrowser, launchChromium, look, newPerson, signIn as signInAs } from '../support/chromium.js';
import { newTenant, resellerKey, uniqueName } from '../support/factory.js';
import { linkIn, startSmtp } from '../support/smtp.js';
import { enabledSince } from '../invoices/helpers.js';

/**
 * The portal's story in a real browser (Debian's chromium driven by
 * playwright-core), issue 20 point 5: a reseller creates a tenant and invites
 * its administrator (the mail caught by this test's SMTP server), who accepts,
 * imports a directory after a dry run, edits a user, tops up, prints the
 * sheet; a comptable signs in and downloads an invoice; five wrong passwords
 * lock an account; a form without its CSRF token is refused; another tenant's
 * URL is a 404. axe-core runs on every page (no serious or critical
 * violation) and every page is photographed at 1280 and 390 px wide for a
 * person to look at (in /work/notes/screens, or FORFAIT_SCREENS; not the repository).
 */
/** The page's document, as the callbacks run in the browser see it (this file is not compiled with the DOM library). */
declare const document: { querySelectorAll(selector: string): Iterable<{ remove(): void }> };

let smtp: Awaited<ReturnType<typeof startSmtp>>;
let app: App;
let server: Server;
let origin: string;
let browser: Browser;
const { db } = testDb();

beforeAll(async () => {
  if (!haveBrowser) return;
  smtp = await startSmtp();
  const port = await freePort();
  origin = `http://127.0.0.1:${port}`;
  app = testApp({ portal: { mail: { smtpUrl: smtp.url, from: 'Forfait <noreply@forfait.test>', outboxDir: 'var/test-outbox' }, publicUrl: origin } });
  server = serve({ fetch: app.app.fetch, port, hostname: '127.0.0.1' }) as Server;
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  await app?.close();
  await smtp?.close();
});

const person = () => newPerson(browser);
const signIn = (page: Page, email: string, password: string) => signInAs(page, origin, email, password);

describe.skipIf(!haveBrowser && !process.env.CI)('the portal in chromium', () => {
  it('a reseller provisions a tenant; its administrator accepts, imports, edits, tops up, prints; a comptable downloads an invoice', async () => {
    // the reseller's own person (what the bootstrap prints on a fresh install)
    const reseller = await resellerKey();
    const resellerEmail = `${uniqueName('reseller').toLowerCase()}@example.test`;
    const made = await call(app, 'POST', '/v1/people', { key: reseller.key, json: { email: resellerEmail, name: 'Rita Reseller', delivery: 'password' } });
    expect(made.status, made.text).toBe(201);

    const r = await person();
    await r.page.goto(`${origin}/portal`);
    expect(r.page.url()).toContain('/portal/signin');
    await look(r.page, '01-signin');
    await signIn(r.page, resellerEmail, made.json.password);
    expect(r.page.url()).toBe(`${origin}/portal/tenants`);
    await look(r.page, '02-tenants');

    // a tenant with product type, reference, country, notes, trial, internal
    const tenantName = uniqueName('Cabinet');
    await r.page.fill('#t-name', tenantName);
    await r.page.selectOption('#t-productType', 'essentiel');
    await r.page.fill('#t-reference', 'REF-2026-42');
    await r.page.fill('#t-country', 'FR');
    await r.page.fill('#t-notes', 'Signed at the fair');
    await Promise.all([r.page.waitForNavigation(), r.page.click('form[action="/portal/tenants"] button[type=submit]')]);
    expect(await r.page.textContent('.notice')).toContain('Invitez maintenant son administrateur');
    const tenantId = r.page.url().split('/').pop()!.replace(/\?.*/, '');
    await look(r.page, '03-tenant');

    // invite its administrateur: the mail is caught by the test's SMTP server
    const adminEmail = `${uniqueName('admin').toLowerCase()}@example.test`;
    await r.page.fill('#p-email', adminEmail);
    await r.page.fill('#p-name', 'Alain Admin');
    expect(await r.page.isChecked('form[action="/portal/admin/people"] input[name=roles][value=administrateur]')).toBe(true);
    const mail = smtp.next(adminEmail);
    await Promise.all([r.page.waitForNavigation(), r.page.click('form[action="/portal/admin/people"] button[type=submit]')]);
    expect(await r.page.textContent('.notice')).toContain(adminEmail);
    const link = linkIn(await mail);
    expect(link.startsWith(`${origin}/portal/accept?token=`)).toBe(true);

    // the administrator accepts and signs in
    const a = await person();
    await a.page.goto(link);
    await look(a.page, '04-accept');
    await a.page.fill('#password', 'un mot de passe solide');
    await Promise.all([a.page.waitForNavigation(), a.page.click('button[type=submit]')]);
    expect(a.page.url()).toContain('/portal/signin?done=password');
    await signIn(a.page, adminEmail, 'un mot de passe solide');
    expect(a.page.url()).toBe(`${origin}/portal/directory`);
    await look(a.page, '05-directory-empty');

    // import a directory: the dry run's plan, then confirmed
    await a.page.click('nav.menu a[href="/portal/import"]');
    const csv = Array.from({ length: 12 }, (_, i) => `Personne ${i + 1},${20261100000001 + i},${4100001 + i},06123456${String(10 + i)},,,,,,,,,`).join('\r\n');
    await a.page.setInputFiles('#file', { name: 'annuaire.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await a.page.check('input[name=mode][value=upsert]');
    await Promise.all([a.page.waitForNavigation(), a.page.click('form[enctype="multipart/form-data"] button[type=submit]')]);
    expect(await a.page.textContent('[data-count=created]')).toBe('12');
    expect(await db.selectFrom('users').select('id').where('tenantId', '=', tenantId).execute()).toHaveLength(0);
    await look(a.page, '06-import-plan');
    await Promise.all([a.page.waitForNavigation(), a.page.click('form[action="/portal/import/confirm"] button[type=submit]')]);
    expect(await db.selectFrom('users').select('id').where('tenantId', '=', tenantId).execute()).toHaveLength(12);
    await look(a.page, '07-import-history');

    // the directory: search, open a user, edit, top up with a reason, print the sheet
    await a.page.goto(`${origin}/portal/directory?q=Personne 3`);
    await look(a.page, '08-directory');
    await Promise.all([a.page.waitForNavigation(), a.page.click('table.list a:text("Personne 3")')]);
    const userUrl = a.page.url();
    await look(a.page, '09-user');
    await a.page.fill('#fullName', 'Personne Trois');
    await a.page.fill('#n2', '01 42 00 00 00');
    await Promise.all([a.page.waitForNavigation(), a.page.click(`form[action="${new URL(userUrl).pathname}"] button[type=submit]`)]);
    expect(await a.page.inputValue('#fullName')).toBe('Personne Trois');
    expect(await a.page.inputValue('#n2')).toBe('+33142000000');
    await a.page.selectOption('#kind', 'topup');
    await a.page.fill('#amount', '25,50');
    await a.page.fill('#reason', 'Avance de frais');
    await Promise.all([a.page.waitForNavigation(), a.page.click('form[action$="/ledger"] button[type=submit]')]);
    expect(await a.page.textContent('.balance-now')).toMatch(/25,50\s€/);
    expect(await a.page.textContent('table.list')).toContain('Avance de frais');
    const sheet = await a.page.getAttribute('a[href$=".pdf"]', 'href');
    const pdf = await a.context.request.get(`${origin}${sheet}`);
    expect(pdf.status()).toBe(200);
    expect(pdf.headers()['content-type']).toBe('application/pdf');
    expect((await pdf.body()).subarray(0, 5).toString()).toBe('%PDF-');
    const calls = await a.context.request.get(`${origin}${await a.page.getAttribute('a[href$="calls.csv"]', 'href')}`);
    expect(calls.status()).toBe(200);

    // delete with confirmation (the last user)
    await a.page.goto(`${origin}/portal/directory?q=Personne 12`);
    await Promise.all([a.page.waitForNavigation(), a.page.click('table.list a:text("Personne 12")')]);
    await Promise.all([a.page.waitForNavigation(), a.page.click('a.button.danger')]);
    await look(a.page, '10-delete-confirm');
    await Promise.all([a.page.waitForNavigation(), a.page.click('button.danger')]);
    expect(await a.page.textContent('.notice')).toContain('20261100000012');

    // a form posted without its CSRF token is refused, and nothing changed
    await a.page.goto(userUrl);
    await a.page.evaluate(() => {
      for (const input of document.querySelectorAll('input[name=_csrf]')) input.remove();
    });
    await a.page.fill('#fullName', 'Forged Name');
    const [refused] = await Promise.all([a.page.waitForNavigation(), a.page.click(`form[action="${new URL(userUrl).pathname}"] button[type=submit]`)]);
    expect(refused?.status()).toBe(403);
    expect(await a.page.textContent('.error-box')).toContain('jeton de sécurité');
    const userId = new URL(userUrl).pathname.split('/').pop()!;
    expect((await db.selectFrom('users').select('fullName').where('id', '=', userId).executeTakeFirstOrThrow()).fullName).toBe('Personne Trois');

    // another tenant's URL is a 404
    const other = await newTenant(app);
    const theirs = await call(app, 'POST', '/v1/users', { key: other.adminKey, json: { fullName: 'Hidden', matricule: '20269900000001', identifiant: '9900001' } });
    const lost = await a.page.goto(`${origin}/portal/directory/${theirs.json.id}`);
    expect(lost?.status()).toBe(404);
    expect(await a.page.textContent('main')).not.toContain('Hidden');
    await look(a.page, '11-not-found');

    // calls, dashboard (with the session), administration
    await a.page.goto(`${origin}/portal/calls?from=2026-10-01&to=2026-11-01`);
    await look(a.page, '12-calls');
    await a.page.goto(`${origin}/portal/dashboard?from=2026-10-01&to=2026-11-01&granularity=day`);
    await a.page.waitForSelector('body[data-loaded]');
    expect(await a.page.isHidden('#login')).toBe(true);
    await look(a.page, '13-dashboard');
    await a.page.goto(`${origin}/portal/admin`);
    await look(a.page, '14-admin');
    await a.page.click('a.who');
    await look(a.page, '14b-account');
    await a.page.goto(`${origin}/portal/admin`);

    // the administrateur adds a comptable with a generated password (shown once)
    const comptableEmail = `${uniqueName('compta').toLowerCase()}@example.test`;
    await a.page.fill('#p-email', comptableEmail);
    await a.page.fill('#p-name', 'Claire Comptable');
    await a.page.check('form[action="/portal/admin/people"] input[name=roles][value=comptable]');
    await a.page.check('input[name=delivery][value=password]');
    await Promise.all([a.page.waitForNavigation(), a.page.click('form[action="/portal/admin/people"] button[type=submit]')]);
    const comptablePassword = (await a.page.textContent('[data-secret]'))!.trim();
    expect(comptablePassword).toMatch(/^[A-Za-z2-9]{16}$/);

    // October is invoiced (the users' story put in September: the test bills a fixed month, whatever today is)
    await enabledSince(tenantId, '2026-09-01T00:00:00Z');
    const run = await runInvoices(db, { tenantId }, '2026-10', { issuer: testIssuer, now: new Date('2026-11-15T12:00:00Z') });
    expect(run.created).toHaveLength(1);

    const c = await person();
    await signIn(c.page, comptableEmail, comptablePassword);
    expect(c.page.url()).toBe(`${origin}/portal/calls`);
    await c.page.click('nav.menu a[href="/portal/invoices"]');
    await c.page.waitForSelector('table.list');
    await look(c.page, '15-invoices');
    expect(await c.page.isVisible('#period')).toBe(true); // a comptable may run a month
    const invoicePdf = await c.page.getAttribute('table.list a[href$=".pdf"]', 'href');
    const downloaded = await c.context.request.get(`${origin}${invoicePdf}`);
    expect(downloaded.status()).toBe(200);
    expect(downloaded.headers()['content-type']).toBe('application/pdf');
    const [csvDownload] = await Promise.all([c.page.waitForEvent('download'), c.page.click('table.list a[href$="details.csv"]')]);
    expect(csvDownload.suggestedFilename()).toMatch(/\.csv$/);
    // a comptable has no directory
    expect((await c.page.goto(`${origin}/portal/directory`))?.status()).toBe(403);

    // the reseller sees the licence use: 11 of essentiel's maximum
    await r.page.goto(`${origin}/portal/tenants`);
    expect(await r.page.textContent(`table.list tr:has(a:text("${tenantName}"))`)).toMatch(/11\/\d+/);
    await r.page.goto(`${origin}/portal/admin`);
    await look(r.page, '16-reseller-admin');
    for (const x of [r, a, c]) await x.context.close();
  }, 240_000);

  it('five wrong passwords lock the account; the forgot page answers the same for anyone', async () => {
    const t = await newTenant(app);
    const email = `${uniqueName('locked').toLowerCase()}@example.test`;
    const made = await call(app, 'POST', '/v1/people', { key: t.adminKey, json: { email, name: 'Lou Locked', roles: ['acheteur'], delivery: 'password' } });
    const p = await person();
    for (let i = 1; i <= 4; i++) {
      await signIn(p.page, email, `wrong password ${i}`);
      expect(await p.page.textContent('.error-box')).toContain('Adresse ou mot de passe incorrect');
    }
    await signIn(p.page, email, 'wrong password 5');
    expect(await p.page.textContent('.error-box')).toContain('verrouillé');
    await signIn(p.page, email, made.json.password);
    expect(p.page.url()).toContain('/portal/signin');
    expect(await p.page.textContent('.error-box')).toContain('verrouillé');
    await look(p.page, '17-locked');
    await p.page.goto(`${origin}/portal/forgot?lang=en`);
    await look(p.page, '18-forgot');
    await p.page.fill('#email', 'nobody-here@example.test');
    await Promise.all([p.page.waitForNavigation(), p.page.click('button[type=submit]')]);
    expect(await p.page.textContent('.notice')).toContain('If an active account matches');
    await p.context.close();
  }, 120_000);

  afterAll(() => {
    // what axe said, serious or not, for the closing note
    process.stdout.write(`axe on ${axeSeen.length} pages: ${JSON.stringify(axeSeen.filter((s) => s.violations.length))}\n`);
  });
});
