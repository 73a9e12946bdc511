/**
 * The rate limits of the API (issue #24): failed authentications per client
 * address and per key id, and requests per tenant key. A limit exceeded is a
 * `429 TOO_MANY_REQUESTS` with `Retry-After`, counted in /metrics
 * (`forfait_rate_limited_total{limit}`) and logged once when it starts.
 *
 * The counters are rate-limiter-flexible's in-memory fixed windows, one set per
 * server: a cluster of N servers allows N times the figures below to a client
 * that spreads its requests over all of them.
 */
import type { Context } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import ipaddr from 'ipaddr.js';
import type { Logger } from 'pino';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { Principal } from '../services/access/access.js';
import { ApiError } from './errors.js';
import type { Metrics } from './metrics.js';

export interface RateLimits {
  /** Failed authentications a client address (an IPv6 /64) may make per window; then 429 for blockSeconds. */
  failuresPerAddress: number;
  /** Failed authentications (wrong secrets) of one existing key id per window; then 429 for blockSeconds. */
  failuresPerKey: number;
  failureWindowSeconds: number;
  blockSeconds: number;
  /** Requests a tenant key may make per keyWindowSeconds; 0: no limit. */
  keyRequests: number;
  keyWindowSeconds: number;
  /** Authorizations (POST /v1/authorize, /v1/calls/{id}/end: a pbx key's traffic) are never limited below this per key and window. */
  pbxAuthorizeFloor: number;
  /** Proxies (addresses or ranges) whose X-Forwarded-For names the client (FORFAIT_TRUSTED_PROXIES); none by default. */
  trustedProxies: readonly string[];
}

export const defaultRateLimits: RateLimits = {
  failuresPerAddress: 30,
  failuresPerKey: 10,
  failureWindowSeconds: 60,
  blockSeconds: 300,
  keyRequests: 100,
  keyWindowSeconds: 1,
  // above what one server answers (benchmarks/RESULTS.md): a PBX is not limited unless this is lowered
  pbxAuthorizeFloor: 50_000,
  trustedProxies: [],
};

export type LimitName = 'address' | 'key_id' | 'key_requests' | 'pbx_authorizations';

/** An address range: an address and the bits of its prefix. */
export type AddressRange = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** `10.0.0.0/8`, `2001:db8::/32` or one address as a range; undefined when it is neither. */
export function addressRange(text: string): AddressRange | undefined {
  const t = text.trim();
  if (ipaddr.isValidCIDR(t)) return ipaddr.parseCIDR(t);
  if (!ipaddr.isValid(t)) return undefined;
  const address = ipaddr.process(t);
  return [address, address.kind() === 'ipv4' ? 32 : 128];
}

function within(address: ipaddr.IPv4 | ipaddr.IPv6, ranges: readonly AddressRange[]): boolean {
  return ranges.some(([range, bits]) => range.kind() === address.kind() && address.match(range, bits));
}

/**
 * Who a request comes from, for the failure limit: the socket's address; when
 * that is a trusted proxy, the nearest address of `X-Forwarded-For` (read from
 * the right) that is not one, so a client cannot choose its address by sending
 * the header itself. An IPv4-mapped IPv6 address counts as IPv4, and an IPv6
 * address as its /64 (one host commonly holds a whole /64, and would otherwise
 * have 2^64 addresses to try from). An in-process request (tests) is "in-process".
 */
export function clientAddress(c: Context, trustedProxies: readonly AddressRange[] = []): string {
  let socket: string | undefined;
  try {
    socket = getConnInfo(c).remote.address;
  } catch {
    return 'in-process';
  }
  if (!socket || !ipaddr.isValid(socket)) return socket ?? 'unknown';
  let address = ipaddr.process(socket);
  if (trustedProxies.length > 0 && within(address, trustedProxies)) {
    const hops = (c.req.header('x-forwarded-for') ?? '').split(',').map((h) => h.trim());
    for (let i = hops.length - 1; i >= 0 && ipaddr.isValid(hops[i]!); i--) {
      address = ipaddr.process(hops[i]!);
      if (!within(address, trustedProxies)) break;
    }
  }
  if (address.kind() === 'ipv4') return address.toString();
  const parts = (address as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16));
  return `${parts.join(':')}::/64`;
}

function isLimited(err: unknown): err is RateLimiterRes {
  return err instanceof RateLimiterRes;
}

export class RateLimiter {
  private readonly addresses: RateLimiterMemory;
  private readonly keyIds: RateLimiterMemory;
  private readonly apiRequests: RateLimiterMemory | undefined;
  private readonly pbxAuthorizations: RateLimiterMemory | undefined;
  private readonly proxies: AddressRange[];

  constructor(
    readonly limits: RateLimits,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {
    this.proxies = limits.trustedProxies.map((p) => {
      const range = addressRange(p);
      if (!range) throw new Error(`not an address or range: ${p}`);
      return range;
    });
    const failures = { duration: limits.failureWindowSeconds, blockDuration: limits.blockSeconds };
    this.addresses = new RateLimiterMemory({ ...failures, points: limits.failuresPerAddress, keyPrefix: 'address' });
    this.keyIds = new RateLimiterMemory({ ...failures, points: limits.failuresPerKey, keyPrefix: 'key' });
    if (limits.keyRequests > 0) {
      this.apiRequests = new RateLimiterMemory({ points: limits.keyRequests, duration: limits.keyWindowSeconds, keyPrefix: 'requests' });
      const pbx = Math.max(limits.keyRequests, limits.pbxAuthorizeFloor);
      this.pbxAuthorizations = new RateLimiterMemory({ points: pbx, duration: limits.keyWindowSeconds, keyPrefix: 'pbx' });
    }
  }

  /** Who the request comes from (see clientAddress), behind the trusted proxies. */
  clientOf(c: Context): string {
    return clientAddress(c, this.proxies);
  }

  /** Whether the address has used up its failures: its next unknown key is refused (failed) before any look-up. */
  async exhausted(address: string): Promise<boolean> {
    const res = await this.addresses.get(address);
    return res !== null && res.consumedPoints >= this.limits.failuresPerAddress;
  }

  /**
   * A failed authentication from `address` (and of `keyId` when the key id
   * exists and its secret was wrong): the 401 to answer, or the 429 once a limit
   * is exceeded.
   */
  async failed(address: string, keyId: string | undefined, message: string): Promise<ApiError> {
    this.metrics.authFailure();
    const unauthorized = new ApiError('UNAUTHORIZED', message);
    try {
      await this.addresses.consume(address);
    } catch (err) {
      if (!isLimited(err)) throw err;
      return this.refusal('address', err, { address });
    }
    if (keyId === undefined) return unauthorized;
    try {
      await this.keyIds.consume(keyId);
    } catch (err) {
      if (!isLimited(err)) throw err;
      return this.refusal('key_id', err, { address, keyId });
    }
    return unauthorized;
  }

  /**
   * Counts a request of an authenticated tenant key; rejects with a 429 past
   * its limit. The PBX's routes (`pbxAuthorization`: authorize, end a call) are
   * counted apart, at the key limit or the floor, whichever is higher: API
   * traffic of the same key never uses up its authorizations.
   */
  request(principal: Principal, pbxAuthorization: boolean): Promise<void> | undefined {
    if (principal.kind !== 'tenant') return undefined;
    const limiter = pbxAuthorization ? this.pbxAuthorizations : this.apiRequests;
    if (!limiter) return undefined;
    const limit: LimitName = limiter === this.pbxAuthorizations ? 'pbx_authorizations' : 'key_requests';
    return limiter.consume(principal.keyId).then(
      () => undefined,
      (err: unknown) => {
        throw isLimited(err) ? this.refusal(limit, err, { keyId: principal.keyId, tenantId: principal.tenantId }) : err;
      },
    );
  }

  private refusal(limit: LimitName, res: RateLimiterRes, who?: Record<string, string>): ApiError {
    this.metrics.rateLimited(limit);
    const seconds = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
    // one line when a limit starts refusing, not one per refused request of a flood
    if (who && res.consumedPoints === this.pointsOf(limit) + 1) this.logger.warn({ limit, ...who, retryAfterSeconds: seconds }, 'rate limit reached');
    const what = limit === 'address' || limit === 'key_id' ? 'too many failed authentications' : 'too many requests for this key';
    return new ApiError('TOO_MANY_REQUESTS', `${what}: retry in ${seconds} s`, undefined, { 'Retry-After': String(seconds) });
  }

  private pointsOf(limit: LimitName): number {
    if (limit === 'address') return this.limits.failuresPerAddress;
    if (limit === 'key_id') return this.limits.failuresPerKey;
    if (limit === 'key_requests') return this.limits.keyRequests;
    return Math.max(this.limits.keyRequests, this.limits.pbxAuthorizeFloor);
  }
}
