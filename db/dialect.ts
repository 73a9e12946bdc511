/**
 * Kysely on postgres.js. kysely-postgres-js does the same, but keeps the
 * postgres.js connection under a Kysely transaction private; here it can be
 * reached (`rawSql(trx)`), so COPY and the few statements Kysely cannot
 * express run in the same transaction as the typed queries around them.
 * Transactions, savepoints and compilation are Kysely's own PostgreSQL ones.
 */
import { type CompiledQuery, type DatabaseConnection, type Dialect, type Driver, type Kysely, PostgresAdapter, PostgresDriver, type PostgresDialectConfig, PostgresIntrospector, PostgresQueryCompiler, type QueryResult, type Transaction } from 'kysely';
import type postgres from 'postgres';

class RawConnection implements DatabaseConnection {
  constructor(readonly sql: postgres.ReservedSql) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.sql.unsafe(query.sql, [...query.parameters] as postgres.ParameterOrJSON<never>[]);
    const { command, count } = result;
    const changed = command === 'INSERT' || command === 'UPDATE' || command === 'DELETE' || command === 'MERGE';
    return { numAffectedRows: changed ? BigInt(count) : undefined, rows: Array.from(result.values()) as R[] };
  }

  async *streamQuery<R>(query: CompiledQuery, chunkSize = 100): AsyncIterableIterator<QueryResult<R>> {
    const cursor = this.sql.unsafe(query.sql, [...query.parameters] as postgres.ParameterOrJSON<never>[]).cursor(chunkSize);
    for await (const rows of cursor) yield { rows: rows as R[] };
  }
}

/** Kysely's PostgreSQL driver with postgres.js's pool in place of pg's. */
class RawDriver extends PostgresDriver implements Driver {
  constructor(private readonly pool: postgres.Sql) {
    super({} as PostgresDialectConfig);
  }
  override async init(): Promise<void> {}
  override async destroy(): Promise<void> {
    await this.pool.end();
  }
  override async acquireConnection(): Promise<DatabaseConnection> {
    return new RawConnection(await this.pool.reserve());
  }
  override async releaseConnection(connection: DatabaseConnection): Promise<void> {
    (connection as RawConnection).sql.release();
  }
}

export class PostgresRawDialect implements Dialect {
  constructor(private readonly pool: postgres.Sql) {}
  createAdapter() {
    return new PostgresAdapter();
  }
  createDriver(): Driver {
    return new RawDriver(this.pool);
  }
  createIntrospector(db: Kysely<unknown>) {
    return new PostgresIntrospector(db);
  }
  createQueryCompiler() {
    return new PostgresQueryCompiler();
  }
}

/**
 * The postgres.js connection a Kysely transaction runs on: statements sent
 * through it (COPY, tagged templates) are inside that transaction.
 */
export async function rawSql<DB>(trx: Transaction<DB>): Promise<postgres.ReservedSql> {
  return trx.getExecutor().provideConnection(async (c) => (c as RawConnection).sql);
}
