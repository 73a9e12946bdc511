import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { rawSql, withTransaction } from '../../db/connection.js';
import { testDb } from '../support/app.js';

/** Kysely and postgres.js statements of one withTransaction share its connection and its fate. */
describe('withTransaction with rawSql', () => {
  it('runs typed queries and raw statements (COPY included) on one connection, in one transaction', async () => {
    const { db } = testDb();
    await sql`CREATE TABLE IF NOT EXISTS test_dialect_rows (n int)`.execute(db);
    const seen = await withTransaction(db, async (trx) => {
      const raw = await rawSql(trx);
      const [typed] = (await sql<{ xid: string; pid: number }>`SELECT txid_current()::text AS xid, pg_backend_pid() AS pid`.execute(trx)).rows;
      const [direct] = await raw<{ xid: string; pid: number }[]>`SELECT txid_current()::text AS xid, pg_backend_pid() AS pid`;
      expect(direct).toEqual(typed);
      const copy = await raw`COPY test_dialect_rows (n) FROM STDIN`.writable();
      await new Promise<void>((resolve, reject) => copy.end('1\n2\n3\n', () => resolve()).on('error', reject));
      await sql`INSERT INTO test_dialect_rows VALUES (4)`.execute(trx);
      return (await sql<{ n: string }>`SELECT count(*) AS n FROM test_dialect_rows`.execute(trx)).rows[0]!.n;
    });
    expect(seen).toBe('4');
    await expect(
      withTransaction(db, async (trx) => {
        const raw = await rawSql(trx);
        await raw`INSERT INTO test_dialect_rows VALUES (5)`;
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    const after = await sql<{ n: string }>`SELECT count(*) AS n FROM test_dialect_rows`.execute(db);
    expect(after.rows[0]!.n).toBe('4');
    await sql`DROP TABLE test_dialect_rows`.execute(db);
  });
});
