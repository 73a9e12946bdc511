import { simulationPages } from './simulation.js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { getConnInfo } from '@hono/node-server/conninfo';
import { Hono, type Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { csrf } from 'hono/csrf';
import { secureHeaders } from 'hono/secure-headers';
import { personOfToken, redeemToken, requestReset } from '../../services/people/people.js';
import { changePassword, csrfMatches, defaultSessionLimits, signIn, signOut } from '../../services/people/sessions.js';
import { ValidationError } from '../../services/shared/errors.js';
import type { ApiFailure } from './client.js';
import { sessionCookie } from '../auth.js';
import { peopleContext } from '../routes/people.js';
import { adminPages } from './admin.js';
import { devicePages } from './devices.js';
import { directoryPages } from './directory.js';
import { formOf, localeOf, viewerOf, type PortalDeps, type PortalEnv } from './env.js';
import { Csrf, Field, Layout, menuFor } from './layout.js';
import { Submit } from './page.js';
import { say } from './labels.js';
import { workPages } from './work.js';

const assetDir = path.resolve(import.meta.dirname, '../../reports/portal');
const dashboardDir = path.resolve(import.meta.dirname, '../../reports/dashboard');
const assets: Record<string, string> = { 'portal.css': 'text/css; charset=utf-8', 'portal.js': 'text/javascript; charset=utf-8' };

function clientAddress(c: Parameters<typeof getConnInfo>[0]): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'in-process';
  }
}

function isLoopbackUrl(url: string): boolean {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** A relative portal path to go back to after signing in (never another site). */
function safeNext(next: string | undefined): string {
  return next && /^\/portal(\/[\w\-./?=&%]*)?$/.test(next) && !next.startsWith('//') ? next : '/portal';
}

/**
 * The portal (issue 20): server-rendered pages (Hono JSX) for people signed in
 * with their email and password. Sign-in, sign-out and the one-time links are
 * served here; every other action is a request to the API as the person
 * (client.ts), through the same routes and checks as a key.
 */
export function portalApp(pd: PortalDeps) {
  const app = new Hono<PortalEnv>();
  const secure = pd.deps.config.portal.publicUrl?.startsWith('https://') ?? false;
  const limits = pd.deps.config.portal.session ?? defaultSessionLimits;
  const now = () => pd.deps.clock?.() ?? new Date();

  app.use(
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
      },
      referrerPolicy: 'same-origin',
    }),
  );
  // a form posted from another site is refused before anything reads it (Origin / Sec-Fetch-Site)
  app.use(csrf());
  app.use(async (c, next) => {
    await next();
    c.header('cache-control', 'no-store');
  });

  app.get('/assets/:file', async (c) => {
    const type = assets[c.req.param('file')];
    if (!type) return c.notFound();
    return c.body(await readFile(path.join(assetDir, c.req.param('file'))), 200, { 'content-type': type, 'cache-control': 'no-cache' });
  });

  // ---- signed out --------------------------------------------------------------

  const signInPage = (c: Parameters<typeof localeOf>[0], o: { message?: string; notice?: string; email?: string; next?: string }, status: 200 | 400 | 401 | 429 = 200) => {
    const locale = localeOf(c);
    const t = (k: Parameters<typeof say>[1]) => say(locale, k);
    return c.html(
      <Layout locale={locale} title={t('signInTitle')} path="/portal/signin" notice={o.notice} error={o.message ? { code: 'UNAUTHORIZED', message: o.message, said: true } : undefined}>
        <form method="post" action="/portal/signin" class="card form narrow">
          <input type="hidden" name="next" value={o.next ?? ''} />
          <Field id="email" label={t('email')}>
            <input id="email" name="email" type="email" autocomplete="username" required value={o.email ?? ''} />
          </Field>
          <Field id="password" label={t('password')}>
            <input id="password" name="password" type="password" autocomplete="current-password" required />
          </Field>
          <button type="submit" class="primary">
            {t('signIn')}
          </button>
          <p>
            <a href="/portal/forgot">{t('forgot')}</a>
          </p>
        </form>
      </Layout>,
      status,
    );
  };

  app.get('/signin', (c) => {
    const notice = c.req.query('done') === 'password' ? 'passwordSet' : c.req.query('ended') === '1' ? 'sessionEnded' : undefined;
    return signInPage(c, { next: c.req.query('next'), notice: notice && say(localeOf(c), notice) });
  });

  app.post('/signin', async (c) => {
    const { fields } = await formOf(c);
    const locale = localeOf(c);
    const r = await signIn(pd.deps.db, { email: fields.email ?? '', password: fields.password ?? '', address: clientAddress(c) }, now(), limits);
    if (!r.ok) {
      const message = say(locale, r.reason === 'invalid' ? 'badCredentials' : r.reason);
      return signInPage(c, { message, email: fields.email, next: fields.next }, r.reason === 'invalid' ? 401 : 429);
    }
    setCookie(c, sessionCookie, r.token, { path: '/', httpOnly: true, sameSite: 'Lax', secure, maxAge: limits.lifetimeHours * 3600 });
    return c.redirect(safeNext(fields.next), 303);
  });

  app.get('/forgot', (c) => {
    const locale = localeOf(c);
    const t = (k: Parameters<typeof say>[1]) => say(locale, k);
    return c.html(
      <Layout locale={locale} title={t('forgotTitle')} path="/portal/forgot" notice={c.req.query('sent') ? t('forgotSent') : undefined}>
        <form method="post" action="/portal/forgot" class="card form narrow">
          <p>{t('forgotHelp')}</p>
          <Field id="email" label={t('email')}>
            <input id="email" name="email" type="email" autocomplete="username" required />
          </Field>
          <button type="submit" class="primary">
            {t('send')}
          </button>
          <p>
            <a href="/portal/signin">{t('backToSignIn')}</a>
          </p>
        </form>
      </Layout>,
    );
  });

  app.post('/forgot', async (c) => {
    const { fields } = await formOf(c);
    // anyone may ask: the link goes to FORFAIT_PUBLIC_URL, never to a Host header an attacker chose
    // (a loopback address is the one exception: `npm start` on a laptop needs no setting)
    const ctx = peopleContext(c, pd.deps, pd.mailer);
    if (pd.deps.config.portal.publicUrl || isLoopbackUrl(ctx.linkBase)) await requestReset(pd.deps.db, fields.email ?? '', ctx);
    else pd.deps.logger.warn('password reset asked but not sent: set FORFAIT_PUBLIC_URL, the address people open');
    return c.redirect('/portal/forgot?sent=1', 303);
  });

  // accept an invitation, or a reset link: the same form, a password chosen
  for (const purpose of ['invitation', 'reset'] as const) {
    const route = purpose === 'invitation' ? '/accept' : '/reset';
    const page = async (c: Parameters<typeof localeOf>[0], error?: ApiFailure, status: 200 | 400 | 404 = 200) => {
      const token = c.req.query('token') ?? '';
      const person = await personOfToken(pd.deps.db, purpose, token, new Date());
      const locale = localeOf(c, person?.locale);
      const t = (k: Parameters<typeof say>[1], v?: Record<string, string>) => say(locale, k, v);
      const title = t(purpose === 'invitation' ? 'acceptTitle' : 'resetTitle');
      if (!person) {
        return c.html(
          <Layout locale={locale} title={title} path={`/portal${route}`} error={{ code: 'NOT_FOUND', message: t('badLink'), said: true }}>
            <p>
              <a href="/portal/forgot">{t('forgot')}</a>
            </p>
          </Layout>,
          404,
        );
      }
      return c.html(
        <Layout locale={locale} title={title} path={`/portal${route}?token=${encodeURIComponent(token)}`} error={error}>
          <form method="post" action={`/portal${route}?token=${encodeURIComponent(token)}`} class="card form narrow">
            <p>{t('acceptHelp', { name: person.name, email: person.email })}</p>
            <input type="hidden" name="email" autocomplete="username" value={person.email} />
            <Field id="password" label={t('newPassword')}>
              <input id="password" name="password" type="password" autocomplete="new-password" minlength={12} required />
            </Field>
            <button type="submit" class="primary">
              {t('save')}
            </button>
          </form>
        </Layout>,
        status,
      );
    };
    app.get(route, (c) => page(c));
    app.post(route, async (c) => {
      const { fields } = await formOf(c);
      try {
        const done = await redeemToken(pd.deps.db, purpose, c.req.query('token') ?? '', fields.password ?? '', new Date());
        if (!done) return page(c, undefined, 404);
      } catch (err) {
        if (err instanceof ValidationError) return page(c, { code: 'VALIDATION_FAILED', message: err.message, details: err.details }, 400);
        throw err;
      }
      return c.redirect('/portal/signin?done=password', 303);
    });
  }

  // ---- signed in -----------------------------------------------------------------

  app.use('*', async (c, next) => {
    const token = getCookie(c, sessionCookie);
    const session = token ? await pd.keys.session(token) : undefined;
    if (!token || !session) {
      // a cookie whose session is gone (idle too long, past its lifetime, ended elsewhere): said on the sign-in page
      const ended = token ? 'ended=1&' : '';
      if (token) deleteCookie(c, sessionCookie, { path: '/' });
      if (c.req.method !== 'GET') return c.redirect(`/portal/signin${ended ? '?ended=1' : ''}`, 303);
      return c.redirect(`/portal/signin?${ended}next=${encodeURIComponent(c.req.path + (new URL(c.req.url).search || ''))}`, 302);
    }
    c.set('token', token);
    c.set('session', session);
    c.set('viewer', viewerOf(session));
    c.set('locale', localeOf(c, session.person.locale));
    await next();
  });

  app.post('/signout', async (c) => {
    const { csrf: presented } = await formOf(c);
    if (!csrfMatches(c.get('session').csrf, presented)) return c.text(say(c.get('locale'), 'csrfRefused'), 403);
    await signOut(pd.deps.db, c.get('token'));
    deleteCookie(c, sessionCookie, { path: '/' });
    return c.redirect('/portal/signin', 303);
  });

  // the person's own password: the current one, then the new (bootstrap credentials are changed here)
  const accountPage = (c: Context<PortalEnv>, o: { notice?: string; error?: ApiFailure; status?: 200 | 400 | 401 } = {}) => {
    const locale = c.get('locale');
    const t = (k: Parameters<typeof say>[1]) => say(locale, k);
    const v = c.get('viewer');
    return c.html(
      <Layout locale={locale} title={t('myAccount')} viewer={v} path="/portal/account" notice={o.notice} error={o.error}>
        <p>
          {v.name} · {v.email}
        </p>
        <form method="post" action="/portal/account" class="card form narrow">
          <Csrf viewer={v} />
          <input type="hidden" name="email" autocomplete="username" value={v.email} />
          <Field id="current" label={t('currentPassword')}>
            <input id="current" name="current" type="password" autocomplete="current-password" required />
          </Field>
          <Field id="next" label={t('newPassword')}>
            <input id="next" name="next" type="password" autocomplete="new-password" minlength={12} required />
          </Field>
          <Submit label={t('changePassword')} />
        </form>
      </Layout>,
      o.status ?? 200,
    );
  };
  app.get('/account', (c) => accountPage(c));
  app.post('/account', async (c) => {
    const { fields, csrf: presented } = await formOf(c);
    const locale = c.get('locale');
    if (!csrfMatches(c.get('session').csrf, presented)) return c.text(say(locale, 'csrfRefused'), 403);
    try {
      const r = await changePassword(pd.deps.db, { person: c.get('session').person, token: c.get('token') }, fields.current ?? '', fields.next ?? '', new Date());
      if (r === 'wrong') return accountPage(c, { error: { code: 'UNAUTHORIZED', message: say(locale, 'wrongPassword'), said: true }, status: 401 });
    } catch (err) {
      if (err instanceof ValidationError) return accountPage(c, { error: { code: 'VALIDATION_FAILED', message: err.message, details: err.details }, status: 400 });
      throw err;
    }
    return accountPage(c, { notice: say(locale, 'passwordChanged') });
  });

  app.get('/', (c) => {
    const first = menuFor(c.get('viewer'))[0];
    return c.redirect(first?.href ?? '/portal/admin', 302);
  });

  // the manager dashboard with the session instead of a pasted key (its script asks the API with the cookie)
  app.get('/dashboard', async (c) => {
    const html = await readFile(path.join(dashboardDir, 'page.html'), 'utf8');
    const locale = c.get('locale');
    return c.html(
      html
        .replace('<html lang="fr">', `<html lang="${locale}">`)
        .replace('</head>', '<link rel="stylesheet" href="/portal/assets/portal.css">\n</head>')
        .replace('<body>', `<body data-session="1" data-lang="${locale}"><nav class="menu" aria-label="${say(locale, 'nav')}"><a href="/portal">← ${say(locale, 'appName')}</a></nav>`),
    );
  });

  directoryPages(app, pd);
  workPages(app, pd);
  devicePages(app, pd);
  adminPages(app, pd);
  simulationPages(app, pd);

  app.notFound((c) => {
    const locale = localeOf(c);
    return c.html(
      <Layout locale={locale} title={say(locale, 'notFoundTitle')} viewer={c.var.viewer}>
        <p>{say(locale, 'notFound')}</p>
      </Layout>,
      404,
    );
  });
  return app;
}
