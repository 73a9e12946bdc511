import type { MiddlewareHandler } from 'hono';
import { principalOfKey, type Permission, type Principal } from '../services/access/access.js';
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

  async resolve(key: string): Promise<Principal | undefined> {
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && hit.expires > now) return hit.principal;
    const principal = await principalOfKey(this.deps.db, key);
    if (this.entries.size > 10_000) this.entries.clear();
    // bad keys are cached briefly too, so a flood of them costs no queries
    this.entries.set(key, { principal, expires: now + (principal ? cacheTtlMs : 2_000) });
    return principal;
  }

  /** The cached principal of a key, without a query; undefined when not cached (or expired). */
  peek(key: string): Principal | undefined {
    const hit = this.entries.get(key);
    return hit && hit.expires > Date.now() ? hit.principal : undefined;
  }

  clear(): void {
    this.entries.clear();
  }
}

export function bearer(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

export function authorize(cache: KeyCache, access: Access): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (access.scope === 'public') return next();
    const key = bearer(c.req.header('authorization'));
    if (!key) throw new ApiError('UNAUTHORIZED', 'missing API key: send Authorization: Bearer <key>');
    const principal = await cache.resolve(key);
    if (!principal) throw new ApiError('UNAUTHORIZED', 'invalid or revoked API key');
    if (access.scope === 'reseller') {
      if (principal.kind !== 'reseller') throw new ApiError('FORBIDDEN', 'this route needs a reseller key');
    } else if (principal.kind === 'reseller') {
      if (!access.reseller) throw new ApiError('FORBIDDEN', 'this route needs a tenant key');
    } else {
      const wanted = [access.permission, ...(access.anyOf ?? [])];
      if (!wanted.some((p) => principal.permissions.has(p))) {
        throw new ApiError('FORBIDDEN', `missing permission ${wanted.join(' or ')}`);
      }
    }
    c.set('principal', principal);
    return next();
  };
}

export function tenantOf(principal: Principal): string {
  if (principal.kind !== 'tenant') throw new ApiError('FORBIDDEN', 'this route needs a tenant key');
  return principal.tenantId;
}
