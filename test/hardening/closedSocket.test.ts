// A connection that PostgreSQL closes while a query is on its way to it must
// fail that query, not the process: during a switchover the monthly jobs' query
// met such a connection and both servers of test/cluster/switchover.test.ts
// exited with postgres.js's TypeError (reading 'write' of null), thrown from a
// timer where nothing can catch it. patches/postgres+3.4.9.patch (applied by
// patch-package on install) settles the write with CONNECTION_CLOSED instead.
// The child (test/fixtures/closedSocket.mjs) crashed in 1 round of 3 unpatched.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';

const fixture = path.resolve(import.meta.dirname, '../fixtures/closedSocket.mjs');

describe('a write to a connection PostgreSQL has just closed (postgres.js, patched)', () => {
  it('fails its queries with CONNECTION_CLOSED and leaves the process running', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [fixture, inject('databaseUrl')], { timeout: 60_000 });
    expect(stdout).toMatch(/^survived /);
    expect(stdout).toContain('CONNECTION_CLOSED');
  }, 90_000);
});
