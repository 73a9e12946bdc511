import type { Context, MiddlewareHandler, Next } from 'hono';
import { timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { secretMatches, splitKey, type KeyRecord, type Permission, type Principal } from '../services/access/access.js';
import { getCookie } from 'hono/cookie';
import { csrfMatches, type Session } from '../services/people/sessions.js';
import { ApiError } from './errors.js';
import type { AppEnv } from './context.js';
import type { RateLimiter } from './limits.js';

/**
 * Who may call a route. Declared on every route (and published in the OpenAPI
 * document as x-forfait-access) so the isolation test can walk them all.
 */
export type Access =
  | { scope: 'public' }
  | { scope: 'reseller' }
  | { scope: 'tenant'; permission: Permission; anyOf?: Permission[]; reseller?: boolean };

/** A clock of milliseconds, as `performance` is one: the key cache's TTLs run on it. */
export interface Clock {
  now(): number;
}

export interface KeyCacheOptions {
  /** How long a key id's record (or its absence) is trusted before it is read again. */
  ttlMs: number;
  /** Key ids held at most: past it the least recently used is dropped, not the whole cache. */
  max: number;
  clock: Clock;
  /** A portal session by its cookie's token (services/people/sessions.ts); never cached: disabling a person takes effect at once. */
  loadSession: (token: string) => Promise<Session | undefined>;
}

const defaultKeyCacheOptions: KeyCacheOptions = { ttlMs: 30_000, max: 10_000, clock: performance, loadSession: async () => undefined };

/** A key id's record, or null for an id that is unknown or revoked (cached too: a flood of one bad key costs one query). */
interface Entry {
  record: KeyRecord | null;
  /**
   * The secret that last matched the record's hash, as bytes: the next request with the same key is compared
   * with it (constant time) instead of hashing its secret again, ~2 µs of SHA-256 on each of the PBX's calls
   * (benchmarks/RESULTS.md). Held as long as the entry (ttlMs); the process holds every request's key anyway.
   */
  matched?: Buffer;
}

type KeyParts = { id: string; secret: string };

/** The principal a key id's record grants to this secret: the one check behind every way a key is read. */
function granted(parts: KeyParts, entry: Entry | undefined): Principal | undefined {
  const record = entry?.record;
  if (!record) return undefined;
  const { matched } = entry;
  if (matched) {
    const presented = Buffer.from(parts.secret);
    if (presented.length === matched.length && timingSafeEqual(presented, matched)) return record.principal;
  }
  if (!secretMatches(parts.secret, record.secretHash)) return undefined;
  entry.matched = Buffer.from(parts.secret);
  return record.principal;
}

/**
 * Resolves keys to principals. Key ids' records (secret hash and principal) are
 * kept in an LRU cache whose entries age out after `ttlMs`: the PBX calls on
 * every call set-up and a key check must not cost a database round trip each
 * time, a wrong secret for a known id is refused from memory, and a flood of
 * random ids pushes out the oldest entries instead of emptying the cache.
 * Revocations and role changes made through this process clear the cache.
 *
 * Failed authentications are counted per client address and per key id
 * (limits.ts). An address over its limit gets 429 before any look-up, except
 * for a key id that authenticated in the last day (one look-up per id and TTL
 * at most), so a PBX behind the same address as an attacker keeps working.
 */
export class KeyCache {
  private readonly records: LRUCache<string, Entry>;
  /** Key ids that authenticated in the last day. */
  private readonly good: LRUCache<string, true>;
  private readonly loadSession: KeyCacheOptions['loadSession'];

  constructor(
    private readonly load: (id: string) => Promise<KeyRecord | undefined>,
    readonly limiter: RateLimiter,
    options: Partial<KeyCacheOptions> = {},
  ) {
    const o = { ...defaultKeyCacheOptions, ...options };
    this.loadSession = o.loadSession;
    this.records = new LRUCache<string, Entry>({
      max: o.max,
      ttl: o.ttlMs,
      ttlResolution: 0,
      perf: o.clock,
      fetchMethod: async (id) => ({ record: (await this.load(id)) ?? null }),
    });
    this.good = new LRUCache<string, true>({ max: 100_000, ttl: 86_400_000, ttlResolution: 0, perf: o.clock });
  }

  /**
   * The principal of the request's `Authorization: Bearer` key: at once when
   * its key id is in memory, else a promise of one query. Throws (or rejects
   * with) 401 for a missing, unknown, revoked or wrong key, 429 past the
   * failure limits.
   */
  caller(c: Context): Principal | Promise<Principal> {
    const key = bearer(c.req.header('authorization'));
    if (!key) return this.refuse(c, undefined, 'missing API key: send Authorization: Bearer <key>');
    const parts = splitKey(key);
    if (!parts) return this.refuse(c, undefined);
    const hit = this.records.get(parts.id);
    if (hit) return this.check(c, parts, hit);
    return this.lookUp(c, parts);
  }

  private async lookUp(c: Context, parts: KeyParts): Promise<Principal> {
    if (!this.good.has(parts.id) && (await this.limiter.exhausted(this.limiter.clientOf(c)))) return this.refuse(c, undefined);
    const entry = await this.records.fetch(parts.id);
    return this.check(c, parts, entry);
  }

  private check(c: Context, parts: KeyParts, entry: Entry | undefined): Principal | Promise<Principal> {
    const principal = granted(parts, entry);
    if (!principal) return this.refuse(c, entry?.record ? parts.id : undefined);
    // set once a day, not on every call set-up: the PBX's hot path
    if (!this.good.has(parts.id)) this.good.set(parts.id, true);
    return principal;
  }

  /** A failed authentication: rejects with 401, or 429 past a limit. */
  private async refuse(c: Context, existingKeyId: string | undefined, message = 'invalid or revoked API key'): Promise<never> {
    throw await this.limiter.failed(this.limiter.clientOf(c), existingKeyId, message);
  }

  /**
   * The principal of a key without a request (the cluster's forwarder: whose
   * tenant a request is for), from the same records; undefined for a bad key,
   * which the owner then refuses and counts.
   */
  principal(key: string): Principal | undefined | Promise<Principal | undefined> {
    const parts = splitKey(key);
    if (!parts) return undefined;
    const hit = this.records.get(parts.id);
    if (hit) return granted(parts, hit);
    return this.records.fetch(parts.id).then((entry) => granted(parts, entry));
  }

  /** How many key ids' records are held (for tests and diagnostics). */
  get size(): number {
    return this.records.size;
  }

  clear(): void {
    this.records.clear();
  }

  /** A portal session (never cached: disabling a person must take effect at once). */
  session(token: string): Promise<Session | undefined> {
    return this.loadSession(token);
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
 * The route's access rule as middleware: sets `principal` for the handler, and
 * counts the request against its key's limit (limits.ts). No await when the
 * key is cached and no request limit applies: the PBX lane runs this on every
 * call set-up.
 */
export function authorize(cache: KeyCache, access: Access): MiddlewareHandler<AppEnv> {
  if (access.scope === 'public') return (_c, next) => next();
  const pbxAuthorization = access.scope === 'tenant' && access.permission === 'pbx:authorize';
  const admitted = (c: Context<AppEnv>, principal: Principal, next: Next) => {
    c.set('principal', admit(access, principal));
    const counted = cache.limiter.request(principal, pbxAuthorization);
    return counted ? counted.then(next) : next();
  };
  return (c, next) => {
    // no Authorization header but the portal's session cookie: the signed-in person
    const token = c.req.header('authorization') === undefined ? getCookie(c, sessionCookie) : undefined;
    if (token) return sessionCaller(cache, c, token).then((principal) => admitted(c, principal, next));
    const found = cache.caller(c);
    if (found instanceof Promise) return found.then((principal) => admitted(c, principal, next));
    return admitted(c, found, next);
  };
}

export function tenantOf(principal: Principal): string {
  if (principal.kind !== 'tenant') throw new ApiError('FORBIDDEN', 'this route needs a tenant key');
  return principal.tenantId;
}
