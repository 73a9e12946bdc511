import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import { principalOfKey, type Permission, type Principal } from '../services/access/access.js';
import { csrfMatches, sessionOf, type Session } from '../services/people/sessions.js';
import { ApiError } from './errors.js';
import type { AppEnv, Deps } from './context.js';

/**
 * Who may call a route. Declared on every route (and published in the OpenAPI
 * document as x-forfait-access) so the isolation test can walk them all.
 */
export type Access =
  | { scope: 'public' }
  | { scope: 'reseller' }
  | { scope: 'tenant'; permission: Permission; anyOf?: Permission[]; reseller?: boolean };

const cacheTtlMs = 30_000;

/**
 * Resolves keys to principals, caching for a short time: the PBX calls on every
 * call set-up and a key check must not cost a database round trip each time.
 * Revocations and role changes made through this process clear the cache.
 */
export class KeyCache {
  private entries = new Map<string, { principal: Principal | undefined; expires: number }>();
  constructor(private readonly deps: Deps) {}

  /**
   * The key's principal (undefined for an unknown or revoked key): at once when
   * the key is cached, else a promise of one query.
   */
  principal(key: string): Principal | undefined | Promise<Principal | undefined> {
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && hit.expires > now) return hit.principal;
    return this.load(key, now);
  }

  private async load(key: string, now: number): Promise<Principal | undefined> {
    const principal = await principalOfKey(this.deps.db, key);
    if (this.entries.size > 10_000) this.entries.clear();
    // bad keys are cached briefly too, so a flood of them costs no queries
    this.entries.set(key, { principal, expires: now + (principal ? cacheTtlMs : 2_000) });
    return principal;
  }

  clear(): void {
    this.entries.clear();
  }

  /** A portal session (never cached: disabling a person must take effect at once). */
  session(token: string): Promise<Session | undefined> {
    return sessionOf(this.deps.db, token, new Date());
  }
}

/** The portal's session cookie (api/portal/) and the header carrying its CSRF token on a change. */
export const sessionCookie = 'forfait_session';
export const csrfHeader = 'x-csrf-token';

/**
 * A request without `Authorization` but with the portal's session cookie acts
 * as the signed-in person, with the same roles and checks as a key. A change
 * (any method but GET/HEAD) must carry the session's CSRF token in
 * `X-CSRF-Token`: a cookie alone, which another site can make a browser send,
 * never changes anything.
 */
async function sessionCaller(cache: KeyCache, c: Context, token: string): Promise<Principal> {
  const session = await cache.session(token);
  if (!session) throw new ApiError('UNAUTHORIZED', 'the session has ended: sign in again');
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && !csrfMatches(session.csrf, c.req.header(csrfHeader))) {
    throw new ApiError('FORBIDDEN', `missing or wrong CSRF token: send the session's token in ${csrfHeader}`);
  }
  return session.principal;
}

export function bearer(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

/**
 * Who calls: the principal of the request's `Authorization: Bearer` key, 401
 * when there is none or it is unknown or revoked. At once when the key is
 * cached, else a promise.
 */
export function caller(cache: KeyCache, authorization: string | undefined): Principal | Promise<Principal> {
  const key = bearer(authorization);
  if (!key) throw new ApiError('UNAUTHORIZED', 'missing API key: send Authorization: Bearer <key>');
  const found = cache.principal(key);
  return found instanceof Promise ? found.then(known) : known(found);
}

function known(principal: Principal | undefined): Principal {
  if (!principal) throw new ApiError('UNAUTHORIZED', 'invalid or revoked API key');
  return principal;
}

/** The caller when a route's access rule lets it in; 403 otherwise. */
export function admit(access: Exclude<Access, { scope: 'public' }>, principal: Principal): Principal {
  if (access.scope === 'reseller') {
    if (principal.kind !== 'reseller') throw new ApiError('FORBIDDEN', 'this route needs a reseller key');
  } else if (principal.kind === 'reseller') {
    if (!access.reseller) throw new ApiError('FORBIDDEN', 'this route needs a tenant key');
  } else if (!principal.permissions.has(access.permission) && !access.anyOf?.some((p) => principal.permissions.has(p))) {
    throw new ApiError('FORBIDDEN', `missing permission ${[access.permission, ...(access.anyOf ?? [])].join(' or ')}`);
  }
  return principal;
}

/**
 * The route's access rule as middleware: sets `principal` for the handler.
 * (No await when the key is cached: the PBX lane runs this on every call set-up.)
 */
export function authorize(cache: KeyCache, access: Access): MiddlewareHandler<AppEnv> {
  if (access.scope === 'public') return (_c, next) => next();
  return (c, next) => {
    const header = c.req.header('authorization');
    const token = header === undefined ? getCookie(c, sessionCookie) : undefined;
    if (token) {
      return sessionCaller(cache, c, token).then((principal) => {
        c.set('principal', admit(access, principal));
        return next();
      });
    }
    const found = caller(cache, header);
    if (found instanceof Promise) {
      return found.then((principal) => {
        c.set('principal', admit(access, principal));
        return next();
      });
    }
    c.set('principal', admit(access, found));
    return next();
  };
}

export function tenantOf(principal: Principal): string {
  if (principal.kind !== 'tenant') throw new ApiError('FORBIDDEN', 'this route needs a tenant key');
  return principal.tenantId;
}
