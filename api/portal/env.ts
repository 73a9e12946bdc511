import type { Context } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import type { Locale } from '../../services/invoices/labels.js';
import type { Session } from '../../services/people/sessions.js';
import type { LicenceUse } from '../../services/tenants/licences.js';
import type { ExportQueue } from '../../services/exports/queue.js';
import type { Mailer } from '../../services/mail/mailer.js';
import type { KeyCache } from '../auth.js';
import type { Deps } from '../context.js';
import { decodeCsv } from '../../services/shared/csvText.js';
import { ValidationError } from '../../services/shared/errors.js';
import { PortalApi } from './client.js';
import type { Viewer } from './layout.js';

export interface PortalDeps {
  deps: Deps;
  keys: KeyCache;
  exports: ExportQueue;
  mailer: Mailer;
  /** The app's own fetch: the portal acts through the API (client.ts). */
  fetch: (request: Request) => Response | Promise<Response>;
}

export interface PortalEnv {
  Variables: {
    locale: Locale;
    session: Session;
    token: string;
    viewer: Viewer;
  };
}

export type PortalContext = Context<PortalEnv>;

export const langCookie = 'forfait_lang';

/** ?lang= (kept in a cookie), else the cookie, else the person's language, else the browser's, else French. */
export function localeOf(c: Context, personLocale?: Locale): Locale {
  const asked = c.req.query('lang');
  if (asked === 'fr' || asked === 'en') {
    setCookie(c, langCookie, asked, { path: '/portal', sameSite: 'Lax', httpOnly: true, maxAge: 365 * 86_400 });
    return asked;
  }
  const kept = getCookie(c, langCookie);
  if (kept === 'fr' || kept === 'en') return kept;
  if (personLocale) return personLocale;
  return /^en\b/i.test(c.req.header('accept-language') ?? '') ? 'en' : 'fr';
}

export function viewerOf(session: Session): Viewer {
  const p = session.principal;
  return {
    name: session.person.name,
    email: session.person.email,
    reseller: p.kind === 'reseller',
    permissions: p.kind === 'tenant' ? p.permissions : new Set(),
    csrf: session.csrf,
  };
}

/** The API as the signed-in person; `csrf` is the token the submitted form carried. */
export function apiOf(pd: PortalDeps, c: PortalContext, csrf?: string): PortalApi {
  return new PortalApi(pd.fetch, new URL(c.req.url).origin, c.get('token'), csrf);
}

/**
 * A file the form carried, as text: every upload of the portal is a CSV, read as
 * the API reads one (services/shared/csvText.ts: a BOM, UTF-8, or Excel's
 * Windows-1252), so "Hélène" saved by a French Excel reaches the API intact.
 * Bytes that no encoding explains go on as UTF-8, for the API to name the line.
 */
async function fileText(file: File): Promise<string> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  try {
    return decodeCsv(bytes).text;
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    return new TextDecoder().decode(bytes);
  }
}

/** The form's fields as strings (files read as text), and its CSRF token. */
export async function formOf(c: Context): Promise<{ fields: Record<string, string>; all: Record<string, string[]>; csrf: string | undefined }> {
  const body = await c.req.parseBody({ all: true });
  const fields: Record<string, string> = {};
  const all: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(body)) {
    const values = Array.isArray(v) ? v : [v];
    const texts: string[] = [];
    for (const x of values) texts.push(typeof x === 'string' ? x : await fileText(x));
    all[k] = texts;
    fields[k] = texts[0] ?? '';
  }
  return { fields, all, csrf: fields._csrf };
}

export async function licenceOf(pd: PortalDeps, c: PortalContext): Promise<LicenceUse | undefined> {
  const v = c.get('viewer');
  if (v.reseller || !(v.permissions.has('directory:manage') || v.permissions.has('directory:import') || v.permissions.has('access:manage'))) return undefined;
  const r = await apiOf(pd, c).get<{ items: LicenceUse[] }>('/v1/licences');
  return r.ok ? r.json.items[0] : undefined;
}
