import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { Counter, Histogram, type Registry } from 'prom-client';
import { errorCode } from '../db/errors.js';
import type { AccountBook } from '../services/authorization/book.js';
import type { Membership, ServerRef } from '../services/cluster/membership.js';
import { bearer, type KeyCache } from './auth.js';
import { errorBody } from './errors.js';
import { requestIdOf } from './requestId.js';

/** What the app serves: Hono's fetch, with the Node adapter's env passed through. */
export type Fetch = (req: Request, env?: unknown) => Response | Promise<Response>;

/** Set on a request one server forwards to another: the receiver answers it itself, it never forwards it again. */
export const FORWARDED_HEADER = 'x-forfait-forwarded-by';

/** Bodies up to this size are read before they are sent on, so a request refused at connect can go to the next owner. */
const REPLAYABLE_BYTES = 1024 * 1024;

/** Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, not the message. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host']);

/** Errors that mean the request never reached the owner (nothing was done there): it may go elsewhere. */
const NOT_DELIVERED = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EPIPE']);

export interface ForwardOptions {
  keys: KeyCache;
  book: AccountBook;
  membership: Membership;
  logger: Logger;
  /** The app's metrics registry: forwarded requests are counted there. */
  registry: Registry;
  /** How long a request to the owner may take in all (the owner's own answer included). */
  timeoutMs?: number;
  /** How long an owner found in the database is trusted without asking again (a failure forgets it at once). */
  ownerTtlMs?: number;
}

/**
 * The one forwarding layer (docs/operations.md): any server answers any
 * request, and those that need a tenant's account book (the PBX's
 * authorizations and call ends, and every write made with a tenant's key,
 * which its book must see before the next authorization) are served by the
 * server that owns the tenant: here when this server holds the book, else
 * passed to the owner over a kept-alive HTTP connection and its answer passed
 * back unchanged (status, headers, body).
 *
 * A tenant nobody owns is taken here (the book takes the lock on first use).
 * When the owner cannot be reached (it died: its PostgreSQL session goes with
 * it, and so its locks), the owner is looked up again: none, and the tenant is
 * taken here; still the same, and the answer is 503 with Retry-After: 1 until
 * PostgreSQL lets the lock go. A request that reached the owner is never sent a
 * second time. Everything else (reads, reseller keys, health, metrics) is
 * answered here as always.
 */
export class Forwarder {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' });
  private readonly owners = new Map<string, { owner: ServerRef | undefined; until: number }>();
  private readonly timeoutMs: number;
  private readonly ownerTtlMs: number;
  private readonly forwarded: Counter<'status'>;
  private readonly hop: Histogram;

  constructor(
    private readonly app: Fetch,
    private readonly o: ForwardOptions,
  ) {
    this.timeoutMs = o.timeoutMs ?? 10_000;
    this.ownerTtlMs = o.ownerTtlMs ?? 30_000;
    this.forwarded = new Counter({
      name: 'forfait_forwarded_requests_total',
      help: 'Requests forwarded to the server owning their tenant, by the status it answered (or "unreachable")',
      labelNames: ['status'] as const,
      registers: [o.registry],
    });
    this.hop = new Histogram({
      name: 'forfait_forwarded_request_duration_seconds',
      help: 'Time from sending a request to the owner to its answer’s headers',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [o.registry],
    });
  }

  /** The server's fetch: the app's, with forwarding in front of it. */
  readonly fetch: Fetch = (req, env) => {
    const tenantId = this.membersTenant(req);
    if (tenantId === undefined) return this.app(req, env);
    if (tenantId instanceof Promise) {
      return tenantId.then((id) => (id === undefined ? this.app(req, env) : this.owned(id, req, env)));
    }
    return this.owned(tenantId, req, env);
  };

  /** Here when the book is here (a 503 then may be the fence: see `moved`), else `route`. */
  private owned(tenantId: string, req: Request, env: unknown): Response | Promise<Response> {
    if (!this.o.book.loaded(tenantId)) return this.route(tenantId, req, env);
    const res = this.app(req, env);
    if (!(res instanceof Promise)) return res;
    return res.then((r) => {
      if (r.status === 503) void this.moved(tenantId);
      return r;
    });
  }

  /**
   * A 503 for a tenant whose book is here: if another server owns the tenant
   * now (this server's lock session was lost and the fence refused its
   * reservation), the book here is stale: it is dropped, and the next request
   * goes to the owner.
   */
  private async moved(tenantId: string): Promise<void> {
    this.owners.delete(tenantId);
    const owner = await this.ownerOf(tenantId).catch(() => undefined);
    if (owner !== undefined && owner.id !== this.o.membership.id) {
      this.o.logger.warn({ tenantId, owner }, 'tenant owned by another server now: its book here is dropped');
      this.o.book.forget(tenantId);
    }
  }

  close(): void {
    this.agent.destroy();
  }

  /**
   * The tenant whose book the request needs when it may be forwarded; undefined
   * when it is answered here whoever owns what (the app then also answers a bad
   * key as usual).
   */
  private membersTenant(req: Request): string | undefined | Promise<string | undefined> {
    if (!this.o.membership.joined || req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return undefined;
    if (!req.url.includes('/v1/')) return undefined;
    if (req.headers.get(FORWARDED_HEADER) !== null) return undefined;
    const key = bearer(req.headers.get('authorization') ?? undefined);
    if (key === undefined) return undefined;
    const found = this.o.keys.principal(key);
    const tenant = (p: Awaited<typeof found>) => (p?.kind === 'tenant' ? p.tenantId : undefined);
    return found instanceof Promise ? found.then(tenant, () => undefined) : tenant(found);
  }

  /** A request for a tenant whose book is not here: to its owner, or here when nobody (or this server) owns it. */
  private async route(tenantId: string, req: Request, env: unknown): Promise<Response> {
    const owner = await this.ownerOf(tenantId);
    if (owner === undefined || owner.id === this.o.membership.id) return this.local(tenantId, req, env);
    const length = Number(req.headers.get('content-length') ?? Number.NaN);
    const replayable = req.body === null || (Number.isFinite(length) && length <= REPLAYABLE_BYTES);
    const body = replayable && req.body !== null ? await bytesOf(req, env) : undefined;
    let answered: Response;
    try {
      answered = await this.send(owner, req, body ?? req.body);
    } catch (err) {
      this.owners.delete(tenantId);
      if (!replayable || !notDelivered(err)) return unavailable(req, 'the tenant’s server did not answer: try again', String(err));
      this.o.logger.warn({ err, tenantId, owner }, 'tenant owner unreachable: looking it up again');
      const next = await this.ownerOf(tenantId);
      if (next?.id === owner.id) return unavailable(req, 'the tenant’s server is being replaced: try again in a second');
      return this.again(tenantId, next, req, body, env);
    }
    // a 503 of the owner did nothing (Retry-After): it may no longer own the tenant, whose new owner is asked once
    if (answered.status !== 503) return answered;
    this.owners.delete(tenantId);
    if (!replayable) return answered;
    const next = await this.ownerOf(tenantId);
    if (next?.id === owner.id) return answered;
    await answered.body?.cancel();
    return this.again(tenantId, next, req, body, env);
  }

  /** The request once more, to the owner found now (`next`), or here if nobody (or this server) owns the tenant. */
  private again(tenantId: string, next: ServerRef | undefined, req: Request, body: Uint8Array | undefined, env: unknown): Promise<Response> {
    if (next === undefined || next.id === this.o.membership.id) return this.local(tenantId, rebuilt(req, body), env);
    return this.send(next, req, body ?? null).catch((err: unknown) => unavailable(req, 'the tenant’s server did not answer: try again', String(err)));
  }

  /** Answered here; a 503 (the lock taken by another server meanwhile) makes the next request look the owner up again. */
  private async local(tenantId: string, req: Request, env: unknown): Promise<Response> {
    const res = await this.app(req, env);
    if (res.status === 503) this.owners.delete(tenantId);
    return res;
  }

  private async ownerOf(tenantId: string): Promise<ServerRef | undefined> {
    const now = Date.now();
    const hit = this.owners.get(tenantId);
    if (hit && hit.until > now) return hit.owner;
    const owner = await this.o.membership.ownerOf(tenantId);
    // nobody: not remembered, the next request takes the tenant or finds who did
    if (owner) this.owners.set(tenantId, { owner, until: now + this.ownerTtlMs });
    else this.owners.delete(tenantId);
    return owner;
  }

  /** The request to `owner`, its answer as it came. */
  private send(owner: ServerRef, req: Request, body: Uint8Array | ReadableStream<Uint8Array> | null): Promise<Response> {
    const target = new URL(req.url);
    const base = new URL(owner.address);
    const headers: Record<string, string> = {};
    req.headers.forEach((value, name) => {
      if (!HOP_BY_HOP.has(name)) headers[name] = value;
    });
    headers[FORWARDED_HEADER] = this.o.membership.id;
    if (body instanceof Uint8Array) headers['content-length'] = String(body.byteLength);
    const started = performance.now();
    return new Promise<Response>((resolve, reject) => {
      const out = httpRequest(
        {
          agent: this.agent,
          protocol: base.protocol,
          hostname: base.hostname,
          port: base.port,
          method: req.method,
          path: target.pathname + target.search,
          headers,
          timeout: this.timeoutMs,
        },
        (res) => {
          this.hop.observe((performance.now() - started) / 1000);
          this.forwarded.labels(String(res.statusCode)).inc();
          answerOf(res).then(resolve, reject);
        },
      );
      // a request's headers and body leave at once, never held back by Nagle's algorithm for an ACK
      out.setNoDelay(true);
      out.on('timeout', () => out.destroy(Object.assign(new Error('forwarded request timed out'), { code: 'ETIMEDOUT' })));
      out.on('error', (err) => {
        this.forwarded.labels('unreachable').inc();
        reject(err);
      });
      if (body instanceof Uint8Array) out.end(body);
      else if (body === null) out.end();
      else Readable.fromWeb(body as import('node:stream/web').ReadableStream<Uint8Array>).on('error', (e) => out.destroy(e)).pipe(out);
    });
  }
}

/**
 * The request's body, read whole: from the Node request itself when the
 * adapter gives it (`env.incoming`), which spares building a web Request and
 * its stream; through the web Request otherwise.
 */
function bytesOf(req: Request, env: unknown): Promise<Uint8Array> {
  const incoming = typeof env === 'object' && env !== null && 'incoming' in env ? (env as { incoming: unknown }).incoming : undefined;
  if (!(incoming instanceof Readable) || incoming.readableEnded || incoming.readableDidRead) {
    return req.arrayBuffer().then((b) => new Uint8Array(b));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (c: Buffer) => chunks.push(c));
    incoming.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    incoming.on('error', reject);
  });
}

function notDelivered(err: unknown): boolean {
  return NOT_DELIVERED.has(errorCode(err) ?? '');
}

/**
 * The owner's answer as a web Response: status, headers (but hop-by-hop ones)
 * and body unchanged. A body of known size up to REPLAYABLE_BYTES (every PBX
 * answer) is read whole and handed over as bytes, which the Node adapter
 * writes at once; a larger or chunked one is streamed through.
 */
function answerOf(res: IncomingMessage): Promise<Response> {
  const headers = new Headers();
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    const name = res.rawHeaders[i]!;
    if (!HOP_BY_HOP.has(name.toLowerCase())) headers.append(name, res.rawHeaders[i + 1]!);
  }
  const status = res.statusCode ?? 502;
  if (status === 204 || status === 304) {
    res.resume();
    return Promise.resolve(new Response(null, { status, headers }));
  }
  const length = Number(res.headers['content-length'] ?? Number.NaN);
  if (!(length <= REPLAYABLE_BYTES)) return Promise.resolve(new Response(Readable.toWeb(res) as ReadableStream<Uint8Array>, { status, headers }));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(new Response(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), { status, headers })));
    res.on('error', reject);
  });
}

/** The request again, with its body read already (the original's stream is spent). */
function rebuilt(req: Request, body: Uint8Array | undefined): Request {
  return new Request(req.url, { method: req.method, headers: req.headers, body: body ?? null });
}

/** 503 in the §7 envelope, with Retry-After: 1 (a takeover takes well under a second once PostgreSQL frees the lock). */
function unavailable(req: Request, message: string, cause?: string): Response {
  const requestId = requestIdOf(req.headers.get('x-request-id') ?? undefined);
  void cause;
  return new Response(JSON.stringify(errorBody('SERVICE_UNAVAILABLE', message, requestId)), {
    status: 503,
    headers: { 'content-type': 'application/json', 'retry-after': '1', 'x-request-id': requestId },
  });
}
