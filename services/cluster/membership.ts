import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type postgres from 'postgres';
import type { Logger } from 'pino';
import type { Db } from '../../db/connection.js';
import { LOCK_CLASS, type AccountBook } from '../authorization/book.js';

export { FENCED_SQLSTATE, SERVER_SETTING, isFenced } from './fence.js';

/**
 * Several Forfait servers on one PostgreSQL (docs/operations.md).
 *
 * Who owns a tenant is what PostgreSQL says: the server whose lock session
 * (AccountBook.lockSession) holds the tenant's advisory lock. A server that
 * dies (SIGKILL, a crash, its machine gone) loses its session and so its locks
 * at once; the next server asked for one of its tenants takes the lock and
 * reads the book from committed state. No election, no lease to expire.
 *
 * This module keeps the `servers` row of this process (its id, the address
 * the others forward to, the pid of its lock session) and beats every
 * `heartbeatMs` from that session: if the beat fails, or answers from another
 * backend (the lock client connected again), the session and its locks were
 * lost, and each book in memory is kept only if its lock can be taken again
 * and no other server claimed the tenant meanwhile (relock). Between the loss
 * and that beat, the reservations fence (migration 0080) refuses this server's
 * reservations for a tenant another server has claimed.
 */

export interface ServerRef {
  id: string;
  address: string;
}

export interface ServerView extends ServerRef {
  startedAt: Date;
  heartbeatAt: Date;
  /** Its lock session is connected and it beat within the last `deadAfterMs`. */
  alive: boolean;
  self: boolean;
  /** The tenants (of the asking reseller) whose lock its session holds. */
  tenants: { id: string; name: string; since: Date | null }[];
}

export interface MembershipOptions {
  /** This server's id: generated once per process (and put in every connection's forfait.server_id). */
  id: string;
  heartbeatMs?: number;
  /** A server that has not beaten for this long is shown dead and its row is removed by the others. */
  deadAfterMs?: number;
}

/** A fresh server id, for MembershipOptions.id and the connections' forfait.server_id. */
export const newServerId = (): string => randomUUID();

export class Membership {
  readonly id: string;
  private address: string | undefined;
  private pid: number | undefined;
  /** The lock session was lost and the books not yet checked against the new one. */
  private lost = false;
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private readonly heartbeatMs: number;
  private readonly deadAfterMs: number;

  constructor(
    private readonly db: Db,
    private readonly book: AccountBook,
    private readonly logger: Logger,
    options: MembershipOptions,
  ) {
    this.id = options.id;
    this.heartbeatMs = options.heartbeatMs ?? 1000;
    this.deadAfterMs = options.deadAfterMs ?? 30_000;
  }

  /** Whether this server has joined (then requests may be forwarded). */
  get joined(): boolean {
    return this.address !== undefined;
  }

  /**
   * Registers this server at `address` (where the others reach it) and starts
   * the heartbeat; from now on each tenant this server locks is claimed in
   * tenant_owners before its book is read.
   */
  async join(address: string): Promise<void> {
    this.book.claim = (conn, tenantId) => this.claim(conn, tenantId);
    await this.db
      .insertInto('servers')
      .values({ id: this.id, address })
      .onConflict((oc) => oc.column('id').doUpdateSet({ address }))
      .execute();
    this.address = address;
    // the books loaded before joining (preloaded at start) are claimed now: the fence reads tenant_owners
    await this.claim(this.book.lockSession());
    await this.beat();
    this.timer = setInterval(() => {
      this.beating ??= this.beat().finally(() => {
        this.beating = undefined;
      });
    }, this.heartbeatMs);
    this.timer.unref();
    this.logger.info({ server: this.id, address }, 'joined the cluster');
  }

  /** Stops the heartbeat and removes this server's row (its locks go with the book's stop). */
  async leave(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
    if (this.address === undefined) return;
    this.address = undefined;
    this.book.claim = undefined;
    await this.db.deleteFrom('servers').where('id', '=', this.id).execute().catch(() => undefined);
  }

  /**
   * One beat from the lock session. A beat that fails, or that answers from
   * another backend than the last one (the client connected again: a new
   * session, without the locks), means the session was lost: the books are
   * checked against the new one (relock) before the loss is forgotten.
   */
  private async beat(): Promise<void> {
    try {
      const conn = this.book.lockSession();
      const [row] = await Promise.race([
        conn<{ pid: number }[]>`
          update servers set heartbeat_at = now(), lock_pid = pg_backend_pid() where id = ${this.id} returning lock_pid as pid`,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('heartbeat timed out')), this.heartbeatMs * 3).unref()),
      ]);
      // no row: removed by another server that took this one for dead; registered again
      const [again] = row
        ? [row]
        : await conn<{ pid: number }[]>`
            insert into servers (id, address, lock_pid) values (${this.id}, ${this.address ?? ''}, pg_backend_pid()) returning lock_pid as pid`;
      const pid = again?.pid;
      if (this.pid !== undefined && pid !== this.pid) {
        this.logger.warn({ server: this.id, was: this.pid, now: pid }, 'lock session was replaced: taking the tenants’ locks again');
        this.lost = true;
      }
      this.pid = pid;
      if (this.lost) await this.relock();
      // rows of servers long dead (their lock session is gone too)
      await this.db
        .deleteFrom('servers')
        .where('heartbeatAt', '<', sql<Date>`now() - make_interval(secs => ${this.deadAfterMs / 1000})`)
        .where('id', '<>', this.id)
        .execute();
    } catch (err) {
      if (!this.lost) this.logger.warn({ err, server: this.id }, 'lock session lost: its tenants’ locks are taken again at the next beat');
      this.lost = true;
    }
  }

  /**
   * After a lost lock session, on a new one: each book in memory is kept if
   * its lock is free again and no other server claimed the tenant meanwhile
   * (the claim would have changed tenant_owners: memory is then still the whole
   * truth, since the fence let no other server reserve), else dropped (its
   * next request goes to the owner, or loads it afresh).
   */
  private async relock(): Promise<void> {
    const books = await this.book.loadedBooks();
    const conn = this.book.lockSession();
    for (const tb of books) {
      const tenantId = tb.settings.id;
      const [r] = await conn<{ ok: boolean; owner: string | null }[]>`
        select pg_try_advisory_lock(${LOCK_CLASS}, hashtext(${tenantId})) as ok,
               (select server_id::text from tenant_owners where tenant_id = ${tenantId}) as owner`;
      if (!r?.ok || r.owner !== this.id) {
        if (r?.ok) await conn`select pg_advisory_unlock(${LOCK_CLASS}, hashtext(${tenantId}))`;
        this.book.forget(tenantId);
      }
    }
    this.lost = false;
  }

  /**
   * Records this server as the owner of the tenants whose lock its lock session
   * holds: one tenant once its book took the lock (AccountBook.claim), or, without
   * a tenant, every one already held (the books preloaded before joining). A
   * tenant whose lock is not held is never claimed.
   */
  private async claim(conn: postgres.Sql, tenantId?: string): Promise<void> {
    await conn`
      insert into tenant_owners (tenant_id, server_id)
      select t.id, ${this.id} from tenants t
        join pg_locks l on l.locktype = 'advisory' and l.granted and l.objsubid = 2 and l.pid = pg_backend_pid()
         and l.database = (select oid from pg_database where datname = current_database())
         and l.classid = ${LOCK_CLASS}::oid and l.objid = hashtext(t.id::text)::oid
       where ${tenantId ?? null}::uuid is null or t.id = ${tenantId ?? null}::uuid
      on conflict (tenant_id) do update set server_id = excluded.server_id, since = now()
        where tenant_owners.server_id is distinct from excluded.server_id`;
  }

  /** The server whose lock session holds the tenant's lock now, if any (this one included). */
  async ownerOf(tenantId: string): Promise<ServerRef | undefined> {
    const rows = await sql<ServerRef>`
      select s.id::text as id, s.address
        from pg_locks l join servers s on s.lock_pid = l.pid
       where l.locktype = 'advisory' and l.granted and l.objsubid = 2
         and l.database = (select oid from pg_database where datname = current_database())
         and l.classid = ${LOCK_CLASS}::oid and l.objid = hashtext(${tenantId})::oid
       order by s.heartbeat_at desc
       limit 1`.execute(this.db);
    return rows.rows[0];
  }

  /** The servers, and which of the reseller's tenants each owns now (GET /v1/cluster). */
  async view(resellerId: string): Promise<ServerView[]> {
    const servers = await sql<{ id: string; address: string; startedAt: Date; heartbeatAt: Date; alive: boolean }>`
      select s.id::text as id, s.address, s.started_at as "startedAt", s.heartbeat_at as "heartbeatAt",
             exists (select 1 from pg_stat_activity a where a.pid = s.lock_pid)
               and s.heartbeat_at > now() - make_interval(secs => ${this.deadAfterMs / 1000}) as alive
        from servers s
       order by s.started_at, s.id`.execute(this.db);
    const owned = await sql<{ serverId: string; id: string; name: string; since: Date | null }>`
      select s.id::text as "serverId", t.id::text as id, t.name, o.since
        from tenants t
        join pg_locks l on l.locktype = 'advisory' and l.granted and l.objsubid = 2
                       and l.database = (select oid from pg_database where datname = current_database())
                       and l.classid = ${LOCK_CLASS}::oid and l.objid = hashtext(t.id::text)::oid
        join servers s on s.lock_pid = l.pid
        left join tenant_owners o on o.tenant_id = t.id and o.server_id = s.id
       where t.reseller_id = ${resellerId}
       order by t.name`.execute(this.db);
    return servers.rows.map((s) => ({
      id: s.id,
      address: s.address,
      startedAt: s.startedAt,
      heartbeatAt: s.heartbeatAt,
      alive: s.alive,
      self: s.id === this.id,
      tenants: owned.rows.filter((o) => o.serverId === s.id).map(({ id, name, since }) => ({ id, name, since })),
    }));
  }
}
