import { CamelCasePlugin, Kysely, type Transaction } from 'kysely';
import postgres from 'postgres';
import { PostgresRawDialect, rawSql } from './dialect.js';
import { noDelaySocket, reconnectBackoff } from './noDelaySocket.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;
export type Trx = Transaction<Database>;

export interface DbHandle {
  db: Db;
  /** The raw postgres.js client, for COPY and other things Kysely does not do. */
  sql: postgres.Sql;
  close(): Promise<void>;
}

export function connect(url: string, options: { max?: number; settings?: Record<string, string> } = {}): DbHandle {
  // `socket` (TCP_NODELAY: no ~40 ms Nagle stalls after a COPY) is a documented
  // postgres.js option its type declarations lack
  const settings: postgres.Options<Record<string, never>> & { socket: typeof noDelaySocket } = {
    max: options.max ?? 10,
    socket: noDelaySocket,
    backoff: reconnectBackoff,
    onnotice: () => undefined,
    // int8 ids and counters come back as strings, numeric (money) as strings:
    // neither is ever turned into a JS float.
    // `settings`: run-time parameters every connection starts with (a clustered server's forfait.server_id)
    connection: { application_name: 'forfait', ...options.settings },
  };
  const sql = postgres(url, settings);
  const db = kyselyOn(sql);
  return {
    db,
    sql,
    async close() {
      await db.destroy();
    },
  };
}

export { rawSql };

/**
 * The options of a client of one connection to the same database as `sql`,
 * with its settings, named `applicationName`: plain data, so a worker thread can
 * open it too (services/indicators/worker.ts).
 */
export function sameDatabase(sql: postgres.Sql, applicationName: string): postgres.Options<Record<string, never>> {
  const o = sql.options;
  // postgres.js keeps its hosts and ports as the arrays it parsed and takes them back as such
  const same = {
    host: o.host,
    port: o.port,
    path: o.path,
    database: o.database,
    user: o.user,
    pass: o.pass,
    ssl: o.ssl,
    // several hosts (Patroni): the same choice of the primary as the pool's
    target_session_attrs: o.target_session_attrs,
  } as unknown as postgres.Options<Record<string, never>>;
  return { ...same, max: 1, connection: { ...o.connection, application_name: applicationName } };
}

/**
 * A client of one connection to the same database as `sql`, with its settings
 * (a session of its own: the account book's advisory locks).
 */
export function clientLike(sql: postgres.Sql, applicationName: string): postgres.Sql {
  return postgres({ ...sameDatabase(sql, applicationName), backoff: reconnectBackoff, onnotice: () => undefined });
}

const kyselies = new WeakMap<postgres.Sql, Db>();

/**
 * The Kysely instance over a postgres.js pool: one per pool, so code handed the
 * pool reaches the same typed queries (and its destroy() ends that pool).
 */
export function kyselyOn(sql: postgres.Sql): Db {
  let db = kyselies.get(sql);
  if (db === undefined) {
    db = new Kysely<Database>({ dialect: new PostgresRawDialect(sql), plugins: [new CamelCasePlugin()] });
    kyselies.set(sql, db);
  }
  return db;
}

/** Runs fn in a transaction, or inside the caller's when it already is one. */
export async function withTransaction<T>(db: Db | Trx, fn: (trx: Trx) => Promise<T>): Promise<T> {
  if (db.isTransaction) return fn(db as Trx);
  return db.transaction().execute(fn);
}
