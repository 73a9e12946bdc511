import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../api/app.js';
import { call, testApp, testDb } from '../support/app.js';
import { newTenant, uniqueName, type TenantFixture } from '../support/factory.js';
import { PortalBrowser, portalPerson, portalSignedIn } from '../support/portal.js';

/**
 * The portal's pages in process (the browser story is test/portal/browser.test.ts):
 * forms post with the session cookie and its CSRF field, through the API.
 */
let app: App;
let t: TenantFixture;
let other: TenantFixture;
const origin = 'http://localhost';
const { db } = testDb();

beforeAll(async () => {
  app = testApp({ portal: { mail: { from: 'f@forfait.test', outboxDir: 'var/test-outbox' } } });
  t = await newTenant(app, { productType: 'essentiel' });
  other = await newTenant(app);
});
afterAll(() => app.close());

/** A browser of one person (test/support/portal.ts), on this file's app. */
class Browser extends PortalBrowser {
  constructor() {
    super(app, origin);
  }
}
const personOf = (tt: TenantFixture, roles: string[], locale: 'fr' | 'en' = 'fr') => portalPerson(app, tt, roles, locale);
const signedIn = (tt: TenantFixture, roles: string[], locale: 'fr' | 'en' = 'fr') => portalSignedIn(app, tt, roles, locale);

describe('portal pages', () => {
  it('signed out: every page sends to the sign-in; a wrong password says so in the chosen language', async () => {
    const r = await call(app, 'GET', '/portal/directory');
    expect(r.status).toBe(302);
    expect(r.headers.get('location')).toBe('/portal/signin?next=%2Fportal%2Fdirectory');
    const b = new Browser();
    const bad = await b.post('/portal/signin?lang=en', { email: 'nobody@example.test', password: 'x' }, { csrf: false });
    expect(bad.status).toBe(401);
    expect(bad.text).toContain('Wrong email or password.');
    expect(bad.text).toContain('<html lang="en">');
    const page = await call(app, 'GET', '/portal/signin');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('x-frame-options')).toBe('SAMEORIGIN');
  });

  it('a reset link is never built from a Host header someone chose (no FORFAIT_PUBLIC_URL, not loopback: no mail)', async () => {
    const p = await personOf(t, ['acheteur']);
    const outbox = path.resolve('var/test-outbox');
    const count = async () => (await readdir(outbox).catch(() => [])).length;
    const before = await count();
    const foreign = await app.app.request('http://evil.example/portal/forgot', {
      method: 'POST',
      body: new URLSearchParams({ email: p.email }).toString(),
      headers: { origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(foreign.status).toBe(303);
    expect(await count()).toBe(before);
    const local = await new Browser().post('/portal/forgot', { email: p.email }, { csrf: false });
    expect(local.status).toBe(303);
    expect(await count()).toBe(before + 1);
  });

  it('a form from another site is refused before it is read', async () => {
    const r = await call(app, 'POST', '/portal/signin', { body: 'email=a&password=b', headers: { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' } });
    expect(r.status).toBe(403);
  });

  it('directory: create, edit, top up with a reason; a form without its CSRF token changes nothing', async () => {
    const b = await signedIn(t, ['administrateur']);
    const list = await b.get('/portal/directory');
    expect(list.status).toBe(200);
    expect(list.text).toContain('Licences : 0/');
    const matricule = `2026${String(Date.now()).slice(-10)}`;
    const created = await b.post('/portal/directory/new', { fullName: 'Zoé Martin', matricule, identifiant: '1234567', n1: '06 12 34 56 78', forfaitMinutes: '60' });
    expect(created.status, created.text).toBe(303);
    const userPath = created.headers.get('location')!.replace(/\?.*/, '');
    const id = userPath.split('/').pop()!;
    const page = await b.get(userPath);
    expect(page.text).toContain('Zoé Martin');
    expect(page.text).toContain('+33612345678');
    // a bad value: the API's error, naming the field, and nothing changed
    const bad = await b.post(userPath, { fullName: 'Zoé Martin', matricule: 'abc', identifiant: '1234567' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('matricule');
    // no CSRF field: refused by the API, nothing written
    const forged = await b.post(userPath, { fullName: 'Forged', matricule, identifiant: '1234567' }, { csrf: false });
    expect(forged.status).toBe(403);
    expect(forged.text).toMatch(/jeton de sécurité|security token/);
    const topup = await b.post(`${userPath}/ledger`, { kind: 'topup', amount: '12,50', reason: 'Avance', idempotencyKey: 'portal-test-1' });
    expect(topup.status, topup.text).toBe(303);
    const again = await b.post(`${userPath}/ledger`, { kind: 'topup', amount: '12,50', reason: 'Avance', idempotencyKey: 'portal-test-1' });
    expect(again.status).toBe(303);
    const user = await db.selectFrom('users').select(['fullName', 'balance']).where('id', '=', id).executeTakeFirstOrThrow();
    expect(user).toEqual({ fullName: 'Zoé Martin', balance: '12.5000' });
    const history = await b.get(userPath);
    expect(history.text).toContain('Avance');
    // the sheet and the calls download are the API's own routes, with the session
    const pdf = await call(app, 'GET', `/v1/users/${id}.pdf`, { headers: { cookie: b.cookie } });
    expect(pdf.status).toBe(200);
    expect(pdf.headers.get('content-type')).toBe('application/pdf');
    // delete with a confirmation page
    expect((await b.get(`${userPath}/delete`)).text).toContain('Oui, supprimer');
    const del = await b.post(`${userPath}/delete`, {});
    expect(del.status).toBe(200);
    expect(await db.selectFrom('users').select('id').where('id', '=', id).executeTakeFirst()).toBeUndefined();
  });

  it('a French page says the API’s refusal in French, naming the field and its value; an English page keeps the API’s words', async () => {
    const form = { fullName: 'Zoé Martin', matricule: 'abc', identifiant: '1234567', forfaitMinutes: '60' };
    const fr = await signedIn(t, ['administrateur'], 'fr');
    await fr.get('/portal/directory/new');
    const bad = await fr.post('/portal/directory/new', form);
    expect(bad.status).toBe(400);
    const box = /<div class="alert error-box"[\s\S]*?<\/div>/.exec(bad.text)![0];
    expect(box).toContain('Des valeurs sont refusées. À corriger : « Matricule ».');
    expect(box).toMatch(/<td>Matricule<\/td>\s*<td>abc<\/td>\s*<td>doit compter exactement 14 chiffres<\/td>/);
    expect(box).not.toMatch(/invalid request|must be|exactly 14 digits/);
    // a conflict with no detail: the code's sentence
    const role = await fr.post('/portal/admin/roles', { name: 'comptable', inherits: 'comptable' });
    expect(role.status).toBe(409);
    expect(role.text).toContain('Impossible dans l’état actuel des données.');
    const en = await signedIn(t, ['administrateur'], 'en');
    await en.get('/portal/directory/new');
    const english = await en.post('/portal/directory/new', form);
    expect(english.status).toBe(400);
    expect(english.text).toContain('exactly 14 digits');
    expect(english.text).toMatch(/<td>Matricule<\/td>\s*<td>abc<\/td>/);
  });

  it('another tenant’s user, import or person is a 404 page, never a read or a write', async () => {
    const theirs = await call(app, 'POST', '/v1/users', { key: other.adminKey, json: { fullName: 'Secret Other', matricule: '20269999999999', identifiant: '7777777' } });
    expect(theirs.status, theirs.text).toBe(201);
    const b = await signedIn(t, ['administrateur']);
    const page = await b.get(`/portal/directory/${theirs.json.id}`);
    expect(page.status).toBe(404);
    expect(page.text).not.toContain('Secret Other');
    await b.get('/portal/directory');
    const write = await b.post(`/portal/directory/${theirs.json.id}`, { fullName: 'Hijacked', matricule: '20269999999999', identifiant: '7777777' });
    expect(write.status).toBe(404);
    const topup = await b.post(`/portal/directory/${theirs.json.id}/ledger`, { kind: 'topup', amount: '5', reason: 'x', idempotencyKey: 'x' });
    expect(topup.status).toBe(404);
    const otherPerson = await personOf(other, ['comptable']);
    const row = await db.selectFrom('people').select('id').where('email', '=', otherPerson.email).executeTakeFirstOrThrow();
    expect((await b.post(`/portal/admin/people/${row.id}`, { status: 'disabled' })).status).toBe(404);
    const after = await db.selectFrom('users').select(['fullName', 'balance']).where('id', '=', theirs.json.id).executeTakeFirstOrThrow();
    expect(after).toEqual({ fullName: 'Secret Other', balance: '0.0000' });
    expect((await db.selectFrom('people').select('status').where('id', '=', row.id).executeTakeFirstOrThrow()).status).toBe('active');
  });

  it('import: a dry run shows the plan and writes nothing; confirming imports; restore puts it back', async () => {
    const b = await signedIn(t, ['technicien']);
    await b.get('/portal/import');
    const csv = 'Alice Import,20260000000101,2000101,0612345601,,,,,,,,,\r\nBob Import,20260000000102,2000102,,,,,,,,,,\r\n';
    const form = new FormData();
    form.set('_csrf', b.csrf);
    form.set('mode', 'upsert');
    form.set('file', new Blob([csv], { type: 'text/csv' }), 'users.csv');
    const dry = await app.app.request('/portal/import', { method: 'POST', body: form, headers: { cookie: b.cookie, origin } });
    const text = await dry.text();
    expect(dry.status, text).toBe(200);
    expect(text).toMatch(/data-count="created">2</);
    expect(text).toContain('20260000000101');
    expect(await db.selectFrom('users').select('id').where('tenantId', '=', t.id).where('matricule', '=', '20260000000101').executeTakeFirst()).toBeUndefined();
    const confirm = await b.post('/portal/import/confirm', { mode: 'upsert', csv });
    expect(confirm.status, confirm.text).toBe(303);
    expect(await db.selectFrom('users').select('id').where('tenantId', '=', t.id).where('matricule', '=', '20260000000101').executeTakeFirst()).toBeDefined();
    const history = await b.get('/portal/import');
    const importId = /action="\/portal\/import\/([0-9a-f-]{36})\/restore"/.exec(history.text)![1]!;
    const restore = await b.post(`/portal/import/${importId}/restore`, {});
    expect(restore.status, restore.text).toBe(303);
    expect(await db.selectFrom('users').select('id').where('tenantId', '=', t.id).where('matricule', '=', '20260000000101').executeTakeFirst()).toBeUndefined();
    // a file with errors: every line named, nothing written
    const badForm = new FormData();
    badForm.set('_csrf', b.csrf);
    badForm.set('mode', 'append');
    badForm.set('file', new Blob(['Bad,12,x\r\n'], { type: 'text/csv' }), 'bad.csv');
    const bad = await app.app.request('/portal/import', { method: 'POST', body: badForm, headers: { cookie: b.cookie, origin } });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/<td>1<\/td>/);
  });

  it('import: a file saved by a French Excel (Windows-1252) keeps its accents, as the API reads it', async () => {
    const b = await signedIn(t, ['technicien']);
    await b.get('/portal/import');
    // "Hélène Çœur" in Windows-1252: é = 0xE9, Ç = 0xC7, œ = 0x9C (not Latin-1)
    const line = 'H\u00e9l\u00e8ne \u00c7\u0153ur,20260000000201,2000201,,,,,,,,,,\r\n';
    const bytes = Uint8Array.from([...line].map((ch) => ({ '\u00e9': 0xe9, '\u00e8': 0xe8, '\u00c7': 0xc7, '\u0153': 0x9c })[ch] ?? ch.charCodeAt(0)));
    const form = new FormData();
    form.set('_csrf', b.csrf);
    form.set('mode', 'upsert');
    form.set('file', new Blob([bytes], { type: 'text/csv' }), 'excel.csv');
    const dry = await app.app.request('/portal/import', { method: 'POST', body: form, headers: { cookie: b.cookie, origin } });
    const text = await dry.text();
    expect(dry.status, text).toBe(200);
    expect(text).toMatch(/data-count="created">1</);
    expect(text).toContain('Hélène Çœur');
    expect(text).not.toContain('\ufffd');
  });

  it('the menu follows the roles; a page beyond them is the API’s 403', async () => {
    const b = await signedIn(t, ['comptable']);
    const home = await b.get('/portal');
    expect(home.status).toBe(302);
    const calls = await b.get('/portal/calls');
    expect(calls.status).toBe(200);
    expect(calls.text).toContain('href="/portal/invoices"');
    expect(calls.text).not.toContain('href="/portal/directory"');
    expect((await b.get('/portal/directory')).status).toBe(403);
    expect((await b.get('/portal/invoices')).status).toBe(200);
  });

  it('administration: invite by generated password shown once, create a key shown once, revoke it; the trail shows it', async () => {
    const b = await signedIn(t, ['administrateur']);
    await b.get('/portal/admin');
    const email = `${uniqueName('adm').toLowerCase()}@example.test`;
    const invited = await b.post('/portal/admin/people', { email, name: 'New Comptable', locale: 'en', roles: ['comptable'], delivery: 'password' });
    expect(invited.status, invited.text).toBe(200);
    const password = /<code data-secret[^>]*>([^<]+)<\/code>/.exec(invited.text);
    expect(password).not.toBeNull();
    const them = new Browser();
    expect((await them.post('/portal/signin', { email, password: password![1]! }, { csrf: false })).status).toBe(303);
    expect((await them.get('/portal/invoices')).text).toContain('<html lang="en">');
    const key = await b.post('/portal/admin/keys', { name: 'from the portal', roles: ['comptable'] });
    const shown = /(ffk_[0-9a-f]{16}_[A-Za-z0-9_-]+)/.exec(key.text)![1]!;
    expect((await call(app, 'GET', '/v1/invoices', { key: shown })).status).toBe(200);
    const keyId = shown.split('_')[1]!;
    const revoke = await b.post(`/portal/admin/keys/${keyId}/revoke`, {});
    expect(revoke.status).toBe(303);
    expect((await call(app, 'GET', '/v1/invoices', { key: shown })).status).toBe(401);
    const admin = await b.get('/portal/admin');
    expect(admin.text).toContain('key.revoke');
    expect(admin.text).toContain('person.create');
  });

  it('my account: the current password first; a change ends the other sessions, not this one', async () => {
    const p = await personOf(t, ['acheteur']);
    const here = new Browser();
    const elsewhere = new Browser();
    for (const b of [here, elsewhere]) expect((await b.post('/portal/signin', { email: p.email, password: p.password }, { csrf: false })).status).toBe(303);
    expect((await here.get('/portal/account')).text).toContain(p.email);
    expect((await here.post('/portal/account', { current: 'not it at all', next: 'a brand new password' })).status).toBe(401);
    expect((await here.post('/portal/account', { current: p.password, next: 'short' })).status).toBe(400);
    expect((await here.post('/portal/account', { current: p.password, next: 'a brand new password' }, { csrf: false })).status).toBe(403);
    const ok = await here.post('/portal/account', { current: p.password, next: 'a brand new password' });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('Mot de passe changé');
    expect((await here.get('/portal/account')).status).toBe(200);
    expect((await elsewhere.get('/portal/account')).status).toBe(302);
    expect((await new Browser().post('/portal/signin', { email: p.email, password: 'a brand new password' }, { csrf: false })).status).toBe(303);
    expect((await new Browser().post('/portal/signin', { email: p.email, password: p.password }, { csrf: false })).status).toBe(401);
  });

  it('calls: the export streams through the portal; a full export queue is said on the page, with when to retry', async () => {
    const b = await signedIn(t, ['comptable']);
    const csv = await b.get('/portal/calls/export?from=2026-10-01&to=2026-11-01');
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(csv.text.split('\n')[0]).toMatch(/call_id/);
    // a server whose queue takes nothing: the API's 429 becomes the page's message
    const full = testApp({ exportLimits: { running: 0, waiting: 0, maxWaitMs: 1000 } });
    try {
      const r = await call(full, 'GET', '/portal/calls/export?from=2026-10-01', { headers: { cookie: b.cookie } });
      expect(r.status).toBe(429);
      expect(r.text).toMatch(/Trop d’exports en cours.*Réessayez dans \d+ s/);
    } finally {
      await full.close();
    }
  });

  it('the licence banner when every licence is used', async () => {
    const small = await newTenant(app, { productType: 'essentiel' });
    const max = (await db.selectFrom('productTypes').select('maxUsers').where('code', '=', 'essentiel').executeTakeFirstOrThrow()).maxUsers;
    const lines = Array.from({ length: max }, (_, i) => `User ${i},${String(20260000010000 + i)},${3000000 + i},,,,,,,,,,`).join('\r\n');
    const imp = await call(app, 'POST', '/v1/users/import?mode=append', { key: small.adminKey, body: lines, headers: { 'content-type': 'text/csv' } });
    expect(imp.status, imp.text).toBe(200);
    const b = await signedIn(small, ['administrateur']);
    const page = await b.get('/portal/directory');
    expect(page.text).toContain(`Toutes les licences sont utilisées — ${max}/${max}`);
    const en = await b.get('/portal/directory?lang=en');
    expect(en.text).toContain(`All licences are used — ${max}/${max}`);
  });
});
