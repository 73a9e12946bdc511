import { randomUUID } from 'node:crypto';
import { sql, type Selectable } from 'kysely';
import type postgres from 'postgres';
import type { Logger } from 'pino';
import { clientLike, withTransaction, type Db, type Trx } from '../../db/connection.js';
import type { UserTable } from '../../db/schema.js';
import { freeNumberSet, parseMoney4, parseNumber, tenantCountry, type CountryCode, type Money4 } from '../../engine/index.js';
import { UnavailableError } from '../shared/errors.js';
import { NumberCache } from '../cdrs/normalize.js';
import { LoadingCache } from '../shared/loadingCache.js';
import { ShardedMap } from './shardedMap.js';

/**
 * The account book: each tenant's accounts and reservation holds, in memory, in
 * the one process that owns the tenant.
 *
 * Why: an authorization must be answered in a millisecond or two, and a database
 * round trip with a row lock per call set-up does not get there. So decisions
 * are made here, against memory, and only the reservation they create is
 * written (group commit, see writer.ts) before the answer goes out.
 *
 * Single writer: a process owns a tenant's holds once it holds the PostgreSQL
 * advisory lock (LOCK_CLASS, hashtext(tenant id)) on a connection of its own;
 * another process asking for that tenant gets 503 until the owner stops. Only
 * the owner creates and releases reservations in memory, so two servers cannot
 * both spend the same credit.
 *
 * Everything else may change accounts from any process (a top-up, an import, a
 * CDR batch that debits a balance and closes a reservation): triggers NOTIFY
 * `forfait_accounts` with the tenant, and the owner re-reads that tenant's users
 * and open reservations in one snapshot (reconcile). A hold is released only
 * when the snapshot that shows its reservation closed is the one whose balance
 * is applied, so memory never shows a released hold with a balance from before
 * its debit: the book errs on the side of holding too much, never too little.
 * Snapshots of a tenant are taken and applied one after the other, so a later
 * one never carries older rows than what memory already has.
 */

export const LOCK_CLASS = 0x466f7266; // "Forf"

export interface Account {
  readonly userId: string;
  identifiant: string;
  enabled: boolean;
  billingEnabled: boolean;
  forfaitSeconds: number;
  usedSeconds: number;
  balance: Money4;
  /** Slots 1–10 (index 0–9): E.164 or a short number, or null. */
  authorized: (string | null)[];
  heldForfait: number;
  heldMoney: Money4;
}

export interface AuthorizationAnswer {
  decision: 'allow' | 'deny';
  reason?: string;
  maxSeconds: number;
  reservationId?: string;
  callee: string | null;
  destination?: string;
  class?: string;
  pricePerMinute?: string;
  lowBalance?: boolean;
}

export interface Hold {
  readonly id: string;
  readonly callId: string;
  readonly account: Account;
  readonly forfait: number;
  readonly money: Money4;
  readonly expiresAt: number;
  readonly answer: AuthorizationAnswer;
  /** Commit sequence number once the reservation is durable; undefined while pending. */
  committed: number | undefined;
  /** Settles when the reservation is committed (or failed). */
  durable: Promise<unknown>;
  released: boolean;
}

export interface TenantSettings {
  id: string;
  status: 'active' | 'suspended';
  country: CountryCode;
  tariffId: string | null;
  maxCallSeconds: number;
  lowBalanceThreshold: Money4;
  freeNumbers: ReadonlySet<string>;
}

export class TenantBook {
  settings: TenantSettings;
  /** Callees as dialled → E.164: PBX traffic repeats the same few numbers (10 per user at most are allowed). */
  numbers: NumberCache;
  readonly byIdentifiant = new Map<string, Account>();
  readonly byUserId = new Map<string, Account>();
  /** Open (or committing) holds by reservation id: sharded, as it can grow large (see ShardedMap). */
  readonly holds = new ShardedMap<Hold>();
  /** Holds whose callId was given by the PBX (the others' callId is their id: `holds` finds them). */
  private readonly byGivenCallId = new ShardedMap<Hold>();
  reconciling: Promise<void> | undefined;
  /** What notifications asked to re-read, not read yet. */
  pending = { full: false, settings: false, users: new Set<string>(), reservations: new Set<string>() };

  hasPending(): boolean {
    const p = this.pending;
    return p.full || p.settings || p.users.size > 0 || p.reservations.size > 0;
  }

  takePending() {
    const p = this.pending;
    this.pending = { full: false, settings: false, users: new Set(), reservations: new Set() };
    return p;
  }

  constructor(settings: TenantSettings) {
    this.settings = settings;
    this.numbers = new NumberCache(settings.country);
  }

  /** New settings (a NOTIFY); the number cache follows the country. */
  configure(settings: TenantSettings): void {
    if (settings.country !== this.settings.country) this.numbers = new NumberCache(settings.country);
    this.settings = settings;
  }

  /** The open (or committing) hold of this callId. */
  byCallId(callId: string): Hold | undefined {
    const given = this.byGivenCallId.get(callId);
    if (given) return given;
    const h = this.holds.get(callId);
    return h?.callId === callId ? h : undefined;
  }

  hold(h: Hold): void {
    this.holds.set(h.id, h);
    if (h.callId !== h.id) this.byGivenCallId.set(h.callId, h);
    h.account.heldForfait += h.forfait;
    h.account.heldMoney = (h.account.heldMoney + h.money) as Money4;
  }

  release(h: Hold): void {
    if (h.released) return;
    h.released = true;
    this.holds.delete(h.id);
    if (h.callId !== h.id && this.byGivenCallId.get(h.callId) === h) this.byGivenCallId.delete(h.callId);
    h.account.heldForfait -= h.forfait;
    h.account.heldMoney = (h.account.heldMoney - h.money) as Money4;
  }
}

// The book's reads, each written once, typed by db/schema.ts through Kysely.

/** A tenant's settings row. */
function tenantRow(db: Db | Trx, tenantId: string) {
  return db
    .selectFrom('tenants')
    .select(['id', 'status', 'country', 'tariffId', 'maxCallSeconds', 'lowBalanceThreshold', 'freeNumbers'])
    .where('id', '=', tenantId)
    .executeTakeFirst();
}
type TenantRow = NonNullable<Awaited<ReturnType<typeof tenantRow>>>;

/** The tenant's users, or those of `ids`, as accounts need them. */
function userRows(db: Db | Trx, tenantId: string, ids?: readonly string[]) {
  const rows = db
    .selectFrom('users')
    .select(['id', 'identifiant', 'accountStatus', 'billingEnabled', 'forfaitMinutes', 'usedSeconds', 'balance'])
    // to_json: postgres.js reads a NULL element of text[] as the string "NULL"
    .select(sql<Selectable<UserTable>['authorizedNumbers']>`to_json(authorized_numbers)`.as('authorizedNumbers'))
    .where('tenantId', '=', tenantId);
  return (ids ? rows.where('id', 'in', ids) : rows).execute();
}
type UserRow = Awaited<ReturnType<typeof userRows>>[number];

/** The tenant's open reservations, as holds need them. */
function openReservationRows(db: Db | Trx, tenantId: string) {
  return db
    .selectFrom('reservations')
    .select(['id', 'userId', 'callId', 'holdForfaitSeconds', 'holdMoney', 'expiresAt', 'answer', 'maxSeconds', 'callee'])
    .where('tenantId', '=', tenantId)
    .where('status', '=', 'open')
    .execute();
}

/** Which of the reservations `ids` are no longer open. */
function closedReservationIds(db: Db | Trx, tenantId: string, ids: readonly string[]) {
  return db
    .selectFrom('reservations')
    .select('id')
    .where('tenantId', '=', tenantId)
    .where('id', 'in', ids)
    .where('status', '<>', 'open')
    .execute();
}

/** Closes the tenant's open reservations whose call outlived its grace: those of `ids`, or all that are past `expiresAt`. */
function expireReservations(db: Db, tenantId: string, ids?: readonly string[]) {
  const open = db
    .updateTable('reservations')
    .set({ status: 'expired', releasedAt: sql<Date>`now()` })
    .where('tenantId', '=', tenantId)
    .where('status', '=', 'open');
  return (ids ? open.where('id', 'in', ids) : open.where('expiresAt', '<', sql<Date>`now()`)).execute();
}

/** A read of several of the above that sees one moment of the database. */
function inSnapshot<T>(db: Db, read: (trx: Trx) => Promise<T>): Promise<T> {
  return db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(read);
}

function settingsOf(t: TenantRow): TenantSettings {
  const country = tenantCountry(t.country);
  const free = freeNumberSet(t.freeNumbers, (n) => {
    const p = parseNumber(n, country);
    return p.ok ? p.e164 : null;
  });
  return {
    id: t.id,
    status: t.status,
    country,
    tariffId: t.tariffId,
    maxCallSeconds: t.maxCallSeconds,
    lowBalanceThreshold: parseMoney4(t.lowBalanceThreshold),
    freeNumbers: free,
  };
}

function fill(a: Account, u: UserRow): void {
  a.identifiant = u.identifiant;
  a.enabled = u.accountStatus === 'enabled';
  a.billingEnabled = u.billingEnabled;
  a.forfaitSeconds = u.forfaitMinutes * 60;
  a.usedSeconds = u.usedSeconds;
  a.balance = parseMoney4(u.balance);
  a.authorized = u.authorizedNumbers;
}

export class AccountBook {
  private readonly tenants = new LoadingCache<TenantBook>((tenantId) => this.load(tenantId));
  private lockConn: postgres.Sql | undefined;
  private listening: postgres.ListenMeta | undefined;
  private stopped = false;
  /** Incremented at each reservation commit; orders commits against snapshots. */
  seq = 0;
  /**
   * Run on the lock's connection once a tenant's lock is taken, before its book
   * is read: several servers (services/cluster/) record there that this one
   * now owns the tenant.
   */
  claim: ((conn: postgres.Sql, tenantId: string) => Promise<unknown>) | undefined;

  constructor(
    private readonly db: Db,
    /** For what Kysely does not do: LISTEN, and the advisory locks on a connection of their own. */
    private readonly sql: postgres.Sql,
    private readonly logger: Logger,
    private readonly onTariffChange: (tariffId: string) => void = () => undefined,
  ) {}

  /** Subscribes to account changes made by other transactions and processes. */
  async start(): Promise<void> {
    this.listening = await this.sql.listen('forfait_accounts', (payload) => this.notified(payload));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.listening?.unlisten().catch(() => undefined);
    for (const tb of this.tenants.all()) await tb.then((b) => b.reconciling).catch(() => undefined);
    if (this.lockConn) {
      const conn = this.lockConn;
      await conn`select pg_advisory_unlock_all()`.catch(() => undefined);
      await conn.end({ timeout: 5 });
    }
    this.tenants.clear();
  }

  async loadedBooks(): Promise<TenantBook[]> {
    const settled = await Promise.allSettled(this.tenants.all());
    return settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  }

  /** The tenant's book, loaded (and locked to this process) on first use. */
  tenant(tenantId: string): Promise<TenantBook> {
    return this.tenants.get(tenantId);
  }

  /** The tenant's book when it is loaded already, else undefined (then `tenant` loads it). */
  loaded(tenantId: string): TenantBook | undefined {
    return this.tenants.peek(tenantId);
  }

  /**
   * The session that holds this process's tenant locks: a client of one
   * connection of its own (opened on first use). Not a connection reserved from
   * the pool: postgres.js crashes the process when a query is sent on a
   * reserved connection PostgreSQL has closed, while a client of its own
   * connects again (a new session, without the locks: services/cluster/ sees
   * its pid change and takes them again).
   */
  lockSession(): postgres.Sql {
    this.lockConn ??= clientLike(this.sql, 'forfait-locks');
    return this.lockConn;
  }

  /** Drops the tenant's book from memory (it belongs to another server now); the next request loads it again. */
  forget(tenantId: string): void {
    this.tenants.delete(tenantId);
  }

  private async load(tenantId: string): Promise<TenantBook> {
    if (this.stopped) throw new UnavailableError('the server is stopping');
    const conn = this.lockSession();
    const [got] = await conn<{ ok: boolean }[]>`select pg_try_advisory_lock(${LOCK_CLASS}, hashtext(${tenantId})) as ok`;
    if (!got?.ok) {
      throw new UnavailableError('this tenant’s accounts are owned by another Forfait server: send its PBX traffic there');
    }
    await this.claim?.(conn, tenantId);
    // reservations whose call outlived its grace while nobody owned the tenant
    await expireReservations(this.db, tenantId);
    const snap = await this.snapshot(tenantId);
    if (!snap.tenant) throw new UnavailableError('tenant not found');
    const tb = new TenantBook(settingsOf(snap.tenant));
    this.applyUsers(tb, snap.users);
    for (const r of snap.reservations) {
      const account = tb.byUserId.get(r.userId);
      if (!account) continue; // user deleted: nothing left to spend from
      const answer: AuthorizationAnswer =
        r.answer !== null ? (JSON.parse(r.answer) as AuthorizationAnswer) : { decision: 'allow', maxSeconds: r.maxSeconds, reservationId: r.id, callee: r.callee };
      tb.hold({
        id: r.id,
        callId: r.callId,
        account,
        forfait: r.holdForfaitSeconds,
        money: parseMoney4(r.holdMoney),
        expiresAt: r.expiresAt.getTime(),
        answer,
        committed: 0,
        durable: Promise.resolve(),
        released: false,
      });
    }
    this.logger.debug({ tenantId, users: tb.byUserId.size, holds: tb.holds.size }, 'account book loaded');
    return tb;
  }

  /** The whole of a tenant's book, as the database has it at one moment. */
  private snapshot(tenantId: string) {
    return inSnapshot(this.db, async (trx) => ({
      tenant: await tenantRow(trx, tenantId),
      users: await userRows(trx, tenantId),
      reservations: await openReservationRows(trx, tenantId),
    }));
  }

  /** Applies user rows; users of `scope` (all when absent) missing from the rows were deleted. */
  private applyUsers(tb: TenantBook, users: UserRow[], scope?: ReadonlySet<string>): void {
    const seen = new Set<string>();
    for (const u of users) {
      seen.add(u.id);
      const existing = tb.byUserId.get(u.id);
      if (existing) {
        if (existing.identifiant !== u.identifiant && tb.byIdentifiant.get(existing.identifiant) === existing) {
          tb.byIdentifiant.delete(existing.identifiant);
        }
        fill(existing, u);
        tb.byIdentifiant.set(existing.identifiant, existing);
      } else {
        const a: Account = {
          userId: u.id,
          identifiant: '',
          enabled: false,
          billingEnabled: true,
          forfaitSeconds: 0,
          usedSeconds: 0,
          balance: 0 as Money4,
          authorized: [],
          heldForfait: 0,
          heldMoney: 0 as Money4,
        };
        fill(a, u);
        tb.byUserId.set(a.userId, a);
        tb.byIdentifiant.set(a.identifiant, a);
      }
    }
    for (const [id, a] of tb.byUserId) {
      if (seen.has(id) || (scope && !scope.has(id))) continue;
      tb.byUserId.delete(id);
      if (tb.byIdentifiant.get(a.identifiant) === a) tb.byIdentifiant.delete(a.identifiant);
    }
  }

  private barriers = new Map<string, () => void>();

  /**
   * Resolves once every change committed before this call has been applied to
   * the books: a NOTIFY sent now arrives after those of earlier commits.
   */
  async barrier(): Promise<void> {
    if (this.tenants.size === 0) return;
    const token = randomUUID();
    const reached = new Promise<void>((resolve) => this.barriers.set(token, resolve));
    await this.sql`select pg_notify('forfait_accounts', ${'s:' + token})`;
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 2000).unref());
    if ((await Promise.race([reached, timeout])) === 'timeout') {
      // the LISTEN connection is down: read everything again instead
      this.barriers.delete(token);
      for (const tb of await this.loadedBooks()) tb.pending.full = true;
    }
    await Promise.all((await this.loadedBooks()).map((tb) => this.reconcile(tb)));
  }

  private notified(payload: string): void {
    const [kind, id, list] = payload.split(':', 3) as [string, string | undefined, string | undefined];
    if (!id) return;
    if (kind === 's') {
      const done = this.barriers.get(id);
      this.barriers.delete(id);
      done?.();
      return;
    }
    if (kind === 'p') {
      this.onTariffChange(id);
      return;
    }
    if (!this.tenants.has(id)) return;
    void this.tenant(id)
      .then((tb) => {
        const ids = list ? list.split(',') : undefined;
        if (kind === 't') tb.pending.settings = true;
        else if (!ids) tb.pending.full = true;
        else for (const x of ids) (kind === 'u' ? tb.pending.users : tb.pending.reservations).add(x);
        return this.reconcile(tb);
      })
      .catch((err: unknown) => this.logger.error({ err, tenantId: id }, 'account book reconcile failed'));
  }

  /** Applies what notifications asked for, one read at a time per tenant. */
  reconcile(tb: TenantBook): Promise<void> {
    if (!tb.reconciling) {
      const run = (async () => {
        while (tb.hasPending() && !this.stopped) {
          const work = tb.takePending();
          try {
            await this.apply(tb, work);
          } catch (err) {
            tb.pending.full = true; // what was taken is read again, all of it, next time
            throw err;
          }
        }
      })();
      tb.reconciling = run.finally(() => {
        tb.reconciling = undefined;
      });
      // a notification may land between the loop's last check and the line above
      run.then(
        () => {
          if (tb.hasPending() && !this.stopped && !tb.reconciling) {
            this.reconcile(tb).catch((err: unknown) => this.logger.error({ err }, 'account book reconcile failed'));
          }
        },
        () => undefined,
      );
    }
    return tb.reconciling;
  }

  private async apply(tb: TenantBook, work: ReturnType<TenantBook['takePending']>): Promise<void> {
    const startSeq = this.seq;
    if (work.full) {
      const snap = await this.snapshot(tb.settings.id);
      if (snap.tenant) tb.configure(settingsOf(snap.tenant));
      this.applyUsers(tb, snap.users);
      const open = new Set(snap.reservations.map((r) => r.id));
      for (const h of [...tb.holds.values()]) {
        if (h.committed !== undefined && h.committed <= startSeq && !open.has(h.id)) tb.release(h);
      }
      return;
    }
    // targeted: the users named, and the owners of the reservations named (a
    // hold is released together with its owner's balance from the same snapshot)
    const userIds = new Set(work.users);
    for (const r of work.reservations) {
      const h = tb.holds.get(r);
      if (h) userIds.add(h.account.userId);
    }
    const tenantId = tb.settings.id;
    const snap = await inSnapshot(this.db, async (trx) => ({
      tenant: work.settings ? await tenantRow(trx, tenantId) : undefined,
      users: userIds.size ? await userRows(trx, tenantId, [...userIds]) : [],
      closed: work.reservations.size ? await closedReservationIds(trx, tenantId, [...work.reservations]) : [],
    }));
    if (snap.tenant) tb.configure(settingsOf(snap.tenant));
    this.applyUsers(tb, snap.users, userIds);
    for (const { id } of snap.closed) {
      const h = tb.holds.get(id);
      if (h && h.committed !== undefined && h.committed <= startSeq) tb.release(h);
    }
  }

  /**
   * An operator releases an open reservation the PBX never ended (DELETE
   * /v1/reservations/{id}): this process must own the tenant (the book is
   * loaded, and locked, first), the reservation is closed as `released` and
   * `record` writes what the ledger keeps of it in the same transaction; then
   * its hold leaves memory, so the user's credit is free at once. Undefined
   * when the tenant has no such reservation, its status when it is not open.
   */
  async releaseReservation<T>(
    tenantId: string,
    id: string,
    record: (trx: Trx, released: { userId: string; callId: string; callee: string; holdMoney: string; holdForfaitSeconds: number }) => Promise<T>,
  ): Promise<{ released: T } | { status: string } | undefined> {
    const tb = await this.tenant(tenantId);
    const outcome = await withTransaction(this.db, async (trx) => {
      const row = await trx
        .updateTable('reservations')
        .set({ status: 'released', releasedAt: sql<Date>`now()` })
        .where('tenantId', '=', tenantId)
        .where('id', '=', id)
        .where('status', '=', 'open')
        .returning(['userId', 'callId', 'callee', 'holdMoney', 'holdForfaitSeconds'])
        .executeTakeFirst();
      if (row) return { released: await record(trx, row) };
      const other = await trx.selectFrom('reservations').select('status').where('tenantId', '=', tenantId).where('id', '=', id).executeTakeFirst();
      return other && { status: other.status };
    });
    if (outcome !== undefined && 'released' in outcome) {
      const h = tb.holds.get(id);
      if (h) tb.release(h);
    }
    return outcome;
  }

  /** Closes reservations whose call outlived maxSeconds + 60 s (the expiry job). */
  async expire(now = Date.now()): Promise<number> {
    let released = 0;
    for (const tb of await this.loadedBooks()) {
      const due = [...tb.holds.values()].filter((h) => h.committed !== undefined && h.expiresAt <= now);
      if (!due.length) continue;
      await expireReservations(this.db, tb.settings.id, due.map((h) => h.id));
      for (const h of due) tb.release(h);
      released += due.length;
    }
    return released;
  }
}
