import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../api/app.js';
import { call } from '../support/app.js';
import { newTenant, uniqueName, type TenantFixture } from '../support/factory.js';
import { TestClock, clockedApp } from '../devices/helpers.js';

/**
 * Issue 20: a portal session ends after 30 idle minutes and 12 hours after its
 * sign-in at most (FORFAIT_SESSION_IDLE_MINUTES, FORFAIT_SESSION_HOURS); each
 * use renews the idle time. An ended session sends the page to the sign-in,
 * which says why. The app's clock is the test's: no waiting, no machine time.
 */
const clock = new TestClock(new Date('2026-11-10T08:00:00Z'));
const minutes = (n: number) => n * 60_000;
let app: App;
let t: TenantFixture;

beforeAll(async () => {
  app = clockedApp(clock, { portal: { mail: { from: 'f@forfait.test', outboxDir: 'var/test-outbox' } } });
  t = await newTenant(app);
});
afterAll(() => app.close());

/** Signs a new administrator in at the clock's time; answers its cookie. */
async function signedIn(): Promise<string> {
  const email = `${uniqueName('s').toLowerCase()}@example.test`;
  const p = await call(app, 'POST', '/v1/people', { key: t.adminKey, json: { email, name: 'Ana', roles: ['administrateur'], delivery: 'password', locale: 'fr' } });
  expect(p.status, p.text).toBe(201);
  const body = new URLSearchParams({ email, password: p.json.password }).toString();
  const r = await call(app, 'POST', '/portal/signin', { body, headers: { origin: 'http://localhost', 'content-type': 'application/x-www-form-urlencoded' } });
  expect(r.status).toBe(303);
  return `forfait_session=${/forfait_session=([^;]*)/.exec(r.headers.get('set-cookie')!)![1]}`;
}

const page = (cookie: string) => call(app, 'GET', '/portal/directory', { headers: { cookie } });

async function expectEnded(cookie: string): Promise<void> {
  const r = await page(cookie);
  expect(r.status).toBe(302);
  expect(r.headers.get('location')).toBe('/portal/signin?ended=1&next=%2Fportal%2Fdirectory');
  expect(r.headers.get('set-cookie')).toMatch(/forfait_session=;.*Max-Age=0/);
  const signin = await call(app, 'GET', r.headers.get('location')!);
  expect(signin.text).toContain('Votre session a pris fin : reconnectez-vous.');
  // the API with the same cookie: the session is over there too
  expect((await call(app, 'GET', '/v1/users', { headers: { cookie } })).status).toBe(401);
}

describe('portal sessions', () => {
  it('end after 30 idle minutes; each use renews them', async () => {
    const cookie = await signedIn();
    clock.advance(minutes(29));
    expect((await page(cookie)).status).toBe(200);
    // 58 minutes after sign-in, 29 after the last use: still open
    clock.advance(minutes(29));
    expect((await page(cookie)).status).toBe(200);
    clock.advance(minutes(29) + 59_000);
    expect((await page(cookie)).status).toBe(200);
    // then 30 minutes without a request
    clock.advance(minutes(30) + 1_000);
    await expectEnded(cookie);
  });

  it('end 12 hours after sign-in however busy', async () => {
    const cookie = await signedIn();
    for (let elapsed = 0; elapsed < minutes(12 * 60 - 20); elapsed += minutes(20)) {
      clock.advance(minutes(20));
      expect((await page(cookie)).status, `after ${(elapsed + minutes(20)) / 60_000} minutes`).toBe(200);
    }
    // 11 h 40 so far: 19 more minutes is 11 h 59, open; 2 more is past 12 h
    clock.advance(minutes(19));
    expect((await page(cookie)).status).toBe(200);
    clock.advance(minutes(2));
    await expectEnded(cookie);
  });

  it('a page asked without a cookie is sent to the sign-in without the message', async () => {
    const r = await call(app, 'GET', '/portal/directory');
    expect(r.headers.get('location')).toBe('/portal/signin?next=%2Fportal%2Fdirectory');
    expect((await call(app, 'GET', '/portal/signin')).text).not.toContain('Votre session a pris fin');
  });
});
