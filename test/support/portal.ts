import { expect } from 'vitest';
import type { App } from '../../api/app.js';
import { call } from './app.js';
import type { TenantFixture } from './factory.js';
import { uniqueName } from './factory.js';

/**
 * A browser of one person for the portal's pages in process: its cookie jar
 * (the session) and the last page's CSRF field; forms post with both, from the
 * portal's own origin.
 */
export class PortalBrowser {
  cookie = '';
  csrf = '';
  constructor(
    private readonly app: App,
    private readonly origin = 'http://localhost',
  ) {}
  async get(path: string) {
    const r = await call(this.app, 'GET', path, { headers: { cookie: this.cookie } });
    const m = /name="_csrf" value="([^"]+)"/.exec(r.text);
    if (m) this.csrf = m[1]!;
    return r;
  }
  async post(path: string, fields: Record<string, string | string[]>, o: { csrf?: boolean } = {}) {
    const body = new URLSearchParams();
    if (o.csrf !== false) body.set('_csrf', this.csrf);
    for (const [k, v] of Object.entries(fields)) for (const x of [v].flat()) body.append(k, x);
    const r = await call(this.app, 'POST', path, { body: body.toString(), headers: { cookie: this.cookie, origin: this.origin, 'content-type': 'application/x-www-form-urlencoded' } });
    const set = r.headers.get('set-cookie');
    const session = set && /forfait_session=([^;]*)/.exec(set);
    if (session) this.cookie = `forfait_session=${session[1]}`;
    return r;
  }
}

/** A person of the tenant with these roles and a generated password (the API's answer shows it once). */
export async function portalPerson(app: App, tt: TenantFixture, roles: string[], locale: 'fr' | 'en' = 'fr'): Promise<{ email: string; password: string }> {
  const email = `${uniqueName('pg').toLowerCase()}@example.test`;
  const r = await call(app, 'POST', '/v1/people', { key: tt.adminKey, json: { email, name: `Person ${roles.join(' ')}`, roles, delivery: 'password', locale } });
  expect(r.status, r.text).toBe(201);
  return { email, password: r.json.password };
}

/** A new person of the tenant with these roles, signed in. */
export async function portalSignedIn(app: App, tt: TenantFixture, roles: string[], locale: 'fr' | 'en' = 'fr'): Promise<PortalBrowser> {
  const p = await portalPerson(app, tt, roles, locale);
  const b = new PortalBrowser(app);
  const r = await b.post('/portal/signin', { email: p.email, password: p.password }, { csrf: false });
  expect(r.status).toBe(303);
  expect(r.headers.get('set-cookie')).toMatch(/forfait_session=.*HttpOnly.*SameSite=Lax/i);
  return b;
}
