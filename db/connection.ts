import net from 'node:net';
import { CamelCasePlugin, Kysely, type Transaction } from 'kysely';
import { PostgresJSDialect } from 'kysely-postgres-js';
import postgres from 'postgres';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;
export type Trx = Transaction<Database>;

export interface DbHandle {
  db: Db;
  /** The raw postgres.js client, for COPY and other things Kysely does not do. */
  sql: postgres.Sql;
  close(): Promise<void>;
}

/**
 * postgres.js's own sockets keep Nagle's algorithm on: a small message sent
 * while an earlier one is unacknowledged (the 5-byte CopyDone after a COPY's
 * data, a query right after another) waits for PostgreSQL's delayed ACK, ~40 ms.
 * This connects the socket itself with TCP_NODELAY (postgres.js then speaks on
 * it, TLS included). Only a single host or a Unix socket path is supported.
 */
export function noDelaySocket(o: { host: string[]; port: number[]; path?: string | false; connect_timeout?: number }): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = o.path ? net.connect(o.path) : net.connect({ host: o.host[0] ?? 'localhost', port: o.port[0] ?? 5432, noDelay: true });
    socket.setNoDelay(true);
    // postgres.js's connect_timeout starts once the socket is handed over: this one covers the connect
    socket.setTimeout((o.connect_timeout ?? 30) * 1000, () => socket.destroy(new Error('connect timeout')));
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

export function connect(url: string, options: { max?: number } = {}): DbHandle {
  // `socket` is a documented postgres.js option its type declarations lack
  const settings: postgres.Options<{}> & { socket: typeof noDelaySocket } = {
    max: options.max ?? 10,
    socket: noDelaySocket,
    onnotice: () => undefined,
    // int8 ids and counters come back as strings, numeric (money) as strings:
    // neither is ever turned into a JS float.
    connection: { application_name: 'forfait' },
  };
  const sql = postgres(url, settings);
  const db = new Kysely<Database>({
    dialect: new PostgresJSDialect({ postgres: sql }),
    plugins: [new CamelCasePlugin()],
  });
  return {
    db,
    sql,
    async close() {
      await db.destroy();
    },
  };
}

/** Runs fn in a transaction, or inside the caller's when it already is one. */
export async function withTransaction<T>(db: Db | Trx, fn: (trx: Trx) => Promise<T>): Promise<T> {
  if (db.isTransaction) return fn(db as Trx);
  return db.transaction().execute(fn);
}
