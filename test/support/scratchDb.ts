import postgres from 'postgres';
import { afterAll, beforeAll, inject } from 'vitest';
import { connect, type DbHandle } from '../../db/connection.js';

/**
 * A database of its own on the suite's server, empty (not migrated), for a
 * migration test that starts from an earlier schema: created before the file's
 * tests, dropped after. Call at the top of the test file; use `handle()` in tests.
 */
export function scratchDatabase(prefix: string): { handle: () => DbHandle } {
  const name = `${prefix}_${process.pid}`;
  let admin: postgres.Sql;
  let h: DbHandle | undefined;
  beforeAll(async () => {
    admin = postgres(inject('databaseUrl'), { max: 1, onnotice: () => undefined });
    await admin.unsafe(`CREATE DATABASE ${name}`);
    const u = new URL(inject('databaseUrl'));
    u.pathname = `/${name}`;
    h = connect(u.toString(), { max: 2 });
  });
  afterAll(async () => {
    await h?.close();
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  });
  return {
    handle: () => {
      if (h === undefined) throw new Error('scratch database not created yet');
      return h;
    },
  };
}
