import { describe, expect, it } from 'vitest';
import { call, testApp } from '../support/app.js';
import { uniqueName } from '../support/factory.js';
import { cdrTenant, TARIFF_CSV } from '../cdrs/helpers.js';
import { DRAFT, seedCalls } from './helpers.js';

const app = testApp({ portal: { mail: { from: 'f@forfait.test', outboxDir: 'var/test-outbox' } } });
const origin = 'http://localhost';

/** A person of the tenant signed in to the portal: its session cookie and the page's CSRF field. */
async function signedIn(t: { adminKey: string }, roles: string[]) {
  const email = `${uniqueName('sim').toLowerCase()}@example.test`;
  const p = await call(app, 'POST', '/v1/people', { key: t.adminKey, json: { email, name: 'Finance', roles, delivery: 'password' } });
  expect(p.status, p.text).toBe(201);
  const signin = await call(app, 'POST', '/portal/signin', {
    body: new URLSearchParams({ email, password: p.json.password }).toString(),
    headers: { origin, 'content-type': 'application/x-www-form-urlencoded' },
  });
  const cookie = `forfait_session=${/forfait_session=([^;]*)/.exec(signin.headers.get('set-cookie') ?? '')![1]}`;
  const page = await call(app, 'GET', '/portal/simulation', { headers: { cookie } });
  return { cookie, page, csrf: /name="_csrf" value="([^"]+)"/.exec(page.text)?.[1] ?? '' };
}

describe('portal: the simulation page', () => {
  it('uploads a draft tariff and shows what the tenant would have paid; a bad line is named', async () => {
    const t = await cdrTenant(app);
    await seedCalls(app, t);
    const b = await signedIn(t, ['administrateur']);
    expect(b.page.status).toBe(200);
    expect(b.page.text).toContain('href="/portal/simulation"');
    const post = (file: string) => {
      const form = new FormData();
      form.set('_csrf', b.csrf);
      form.set('tariff', t.tariffId);
      form.set('from', '2026-10-01');
      form.set('to', '2026-12-01');
      form.set('file', new Blob([file], { type: 'text/csv' }), 'draft.csv');
      return app.app.request('/portal/simulation', { method: 'POST', body: form, headers: { cookie: b.cookie, origin } });
    };
    const ok = await post(DRAFT);
    const html = await ok.text();
    expect(ok.status, html).toBe(200);
    const api = await call(app, 'POST', `/v1/tariffs/${t.tariffId}/simulate`, { key: t.adminKey, json: { from: '2026-10-01', to: '2026-12-01', tariffCsv: DRAFT } });
    const tenant = api.json.result.tenants[0];
    expect(html).toContain(`<td>${tenant.name}</td><td>13</td>`);
    expect(html).toContain(`<td>${tenant.differencePercent}</td>`);
    const bad = await post(`${TARIFF_CSV}39,Italie,international,abc,0,60,60,false,,\n`);
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/<td>6<\/td>/);
  });

  it('is not in the menu of a person without tariffs:manage, and the API refuses it', async () => {
    const t = await cdrTenant(app);
    const b = await signedIn(t, ['comptable']);
    expect(b.page.text).not.toContain('href="/portal/simulation"');
    const form = new FormData();
    form.set('_csrf', b.csrf);
    form.set('tariff', t.tariffId);
    form.set('from', '2026-10-01');
    form.set('to', '2026-12-01');
    const r = await app.app.request('/portal/simulation', { method: 'POST', body: form, headers: { cookie: b.cookie, origin } });
    expect(r.status).toBe(403);
  });
});
