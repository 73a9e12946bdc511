import type { Child, FC, PropsWithChildren } from 'hono/jsx';
import type { Permission } from '../../services/access/access.js';
import type { Locale } from '../../services/invoices/labels.js';
import type { LicenceUse } from '../../services/tenants/licences.js';
import type { ApiFailure } from './client.js';
import { say, type LabelKey } from './labels.js';
import { sayError } from './apiErrors.js';

/** Who the page is shown to: enough to draw the menu (the API decides what they may do). */
export interface Viewer {
  name: string;
  email: string;
  reseller: boolean;
  permissions: ReadonlySet<Permission>;
  csrf: string;
}

export interface PageProps {
  locale: Locale;
  title: string;
  viewer?: Viewer;
  /** The menu entry to mark as current. */
  current?: string;
  licence?: LicenceUse;
  notice?: string;
  error?: ApiFailure;
  /** The path of this page, for the language links. */
  path?: string;
}

const menu: { key: LabelKey; href: string; show: (v: Viewer) => boolean }[] = [
  { key: 'tenants', href: '/portal/tenants', show: (v) => v.reseller },
  { key: 'directory', href: '/portal/directory', show: (v) => v.permissions.has('directory:manage') },
  { key: 'import', href: '/portal/import', show: (v) => v.permissions.has('directory:import') },
  { key: 'calls', href: '/portal/calls', show: (v) => v.permissions.has('cdrs:read') },
  { key: 'devices', href: '/portal/devices', show: (v) => v.permissions.has('devices:manage') },
  { key: 'invoices', href: '/portal/invoices', show: (v) => v.permissions.has('invoices:read') },
  { key: 'simulation', href: '/portal/simulation', show: (v) => v.reseller || v.permissions.has('tariffs:manage') },
  { key: 'dashboard', href: '/portal/dashboard', show: (v) => v.permissions.has('indicators:read') },
  { key: 'admin', href: '/portal/admin', show: (v) => v.reseller || v.permissions.has('access:manage') },
];

export function menuFor(v: Viewer) {
  return menu.filter((m) => m.show(v));
}

/** The CSRF field every form of a signed-in page carries. */
export const Csrf: FC<{ viewer: Viewer }> = ({ viewer }) => <input type="hidden" name="_csrf" value={viewer.csrf} />;

export const ErrorBox: FC<{ locale: Locale; error: ApiFailure }> = ({ locale, error }) => (
  <div class="alert error-box" role="alert">
    <p>
      <strong>{sayError(locale, error).headline}</strong>
    </p>
    {error.details?.length ? (
      <table class="details">
        <caption class="sr-only">{say(locale, 'lineErrors')}</caption>
        <thead>
          <tr>
            <th scope="col">{say(locale, 'line')}</th>
            <th scope="col">{say(locale, 'field')}</th>
            <th scope="col">{say(locale, 'value')}</th>
            <th scope="col">{say(locale, 'message')}</th>
          </tr>
        </thead>
        <tbody>
          {sayError(locale, error).details.slice(0, 500).map((d) => (
            <tr>
              <td>{d.line ?? ''}</td>
              <td>{d.field}</td>
              <td>{d.value}</td>
              <td>{d.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
    ) : null}
  </div>
);

export const Layout: FC<PropsWithChildren<PageProps>> = (p) => {
  const t = (k: LabelKey, vars?: Record<string, string | number>) => say(p.locale, k, vars);
  const full = p.licence && p.licence.used >= p.licence.max;
  const here = p.path ?? '/portal';
  const sep = here.includes('?') ? '&' : '?';
  return (
    <html lang={p.locale}>
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${p.title} — ${t('appName')}`}</title>
        <link rel="stylesheet" href="/dashboard/assets/dashboard.css" />
        <link rel="stylesheet" href="/portal/assets/portal.css" />
        <script src="/portal/assets/portal.js" defer></script>
      </head>
      <body>
        <a class="skip" href="#main">
          {t('skip')}
        </a>
        <header class="top">
          <div class="brand">
            <span class="logo" aria-hidden="true">
              F
            </span>
            <span>{t('appName')}</span>
          </div>
          <div class="top-right">
            <nav class="lang" aria-label={t('language')}>
              <a href={`${here}${sep}lang=fr`} lang="fr" aria-current={p.locale === 'fr' ? 'true' : undefined}>
                FR
              </a>
              <a href={`${here}${sep}lang=en`} lang="en" aria-current={p.locale === 'en' ? 'true' : undefined}>
                EN
              </a>
            </nav>
            {p.viewer ? (
              <form method="post" action="/portal/signout" class="inline">
                <Csrf viewer={p.viewer} />
                <a class="who" href="/portal/account" title={t('myAccount')}>
                  {p.viewer.email}
                </a>
                <button type="submit" class="link">
                  {t('signOut')}
                </button>
              </form>
            ) : null}
          </div>
        </header>
        {p.viewer ? (
          <nav class="menu" aria-label={t('nav')}>
            {menuFor(p.viewer).map((m) => (
              <a href={m.href} aria-current={p.current === m.key ? 'page' : undefined}>
                {t(m.key)}
              </a>
            ))}
          </nav>
        ) : null}
        {full ? (
          <div class="banner" role="status">
            {t('allLicencesUsed', { used: p.licence!.used, max: p.licence!.max })}
          </div>
        ) : null}
        <main id="main">
          <h1>{p.title}</h1>
          {p.notice ? (
            <div class="alert notice" role="status">
              {p.notice}
            </div>
          ) : null}
          {p.error ? <ErrorBox locale={p.locale} error={p.error} /> : null}
          {p.children}
        </main>
      </body>
    </html>
  );
};

/** A labelled field (label above input): one shape for every form. */
export const Field: FC<{ id: string; label: string; children: Child; hint?: string }> = ({ id, label, children, hint }) => (
  <div class="field">
    <label for={id}>{label}</label>
    {children}
    {hint ? (
      <small id={`${id}-hint`} class="hint">
        {hint}
      </small>
    ) : null}
  </div>
);

/** Money as the locale writes it, from the API's decimal string (never a float). */
export function money(locale: Locale, amount: string, currency = 'EUR'): string {
  const fmt = new Intl.NumberFormat(locale === 'fr' ? 'fr-FR' : 'en-GB', { style: 'currency', currency, minimumFractionDigits: 2, maximumFractionDigits: 4 });
  return fmt.format(amount as unknown as number); // Intl formats a decimal string exactly
}

export function duration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
}

export function when(locale: Locale, iso: string, zone?: string): string {
  return new Intl.DateTimeFormat(locale === 'fr' ? 'fr-FR' : 'en-GB', { dateStyle: 'short', timeStyle: 'short', timeZone: zone ?? 'UTC' }).format(new Date(iso));
}
