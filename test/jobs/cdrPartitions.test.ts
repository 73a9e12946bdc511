import { describe, expect, it } from 'vitest';
import { clusterClosedMonths, ensurePartitionsAhead, MONTHS_AHEAD } from '../../jobs/cdrPartitions.js';
import { jobs } from '../../jobs/scheduler.js';
import { testDb } from '../support/app.js';

/** The `cdr-partitions` job: this UTC month's partition and the next ones exist before a CDR needs them. */
describe('cdr-partitions job', () => {
  it('makes the partitions of the clock’s UTC month and the next two, each with its call id key; again or concurrently, nothing more', async () => {
    const { db, sql } = testDb();
    const names = ['cdrs_y2031m12', 'cdrs_y2032m01', 'cdrs_y2032m02'];
    for (const n of names) await sql`DROP TABLE IF EXISTS ${sql(n)}`;
    // 31 December 2031 23:30 in UTC: December's month, then January and February 2032
    const now = new Date('2031-12-31T23:30:00Z');
    await Promise.all([ensurePartitionsAhead(db, now), ensurePartitionsAhead(db, now), ensurePartitionsAhead(db, now)]);
    expect(MONTHS_AHEAD).toBe(2);
    const rows = await sql<{ name: string; key: string | null }[]>`
      SELECT c.relname AS name, to_regclass(c.relname || '_call_id_uq')::text AS key
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = 'cdrs'::regclass AND c.relname = ANY(${names}) ORDER BY 1`;
    expect(rows.map((r) => [r.name, r.key])).toEqual(names.map((n) => [n, `${n}_call_id_uq`]));
    // the bounds are UTC months, whatever the session's zone
    const placed = await sql<{ part: string }[]>`
      INSERT INTO cdrs (tenant_id, call_id, callee, direction, started_at, duration_seconds, disposition)
      VALUES ('00000000-0000-4000-8000-00000000000a', 'edge-1', '+33142000000', 'out', '2031-12-31T23:59:59.999Z', 0, 'no_answer'),
             ('00000000-0000-4000-8000-00000000000a', 'edge-2', '+33142000000', 'out', '2032-01-01T00:00:00Z', 0, 'no_answer')
      RETURNING tableoid::regclass::text AS part`;
    expect(placed.map((p) => p.part)).toEqual(['cdrs_y2031m12', 'cdrs_y2032m01']);
    await ensurePartitionsAhead(db, now);
    for (const n of names) await sql`DROP TABLE ${sql(n)}`;
    expect(jobs.map((j) => j.name)).toEqual(expect.arrayContaining(['cdr-partitions', 'cdr-archive']));
  });
});

describe('cdr-cluster job', () => {
  it("rewrites a closed month in user order, once; the month still open is left alone", async () => {
    const { db, sql } = testDb();
    for (const n of ['cdrs_y2033m01', 'cdrs_y2033m02']) await sql`DROP TABLE IF EXISTS ${sql(n)}`;
    await sql`SELECT cdrs_ensure_month(m) FROM (VALUES (timestamptz '2033-01-01Z'), (timestamptz '2033-02-01Z')) v(m)`;
    const tenant = '00000000-0000-4000-8000-00000000000b';
    const users = ['00000000-0000-4000-8000-0000000000c1', '00000000-0000-4000-8000-0000000000c2', '00000000-0000-4000-8000-0000000000c3'];
    // in time order, the users interleaved (as a PBX writes them)
    for (const month of ['2033-01', '2033-02']) {
      await sql`
        INSERT INTO cdrs (tenant_id, call_id, user_id, callee, direction, started_at, duration_seconds, disposition)
        SELECT ${tenant}, ${month} || '-' || g, (${users}::uuid[])[1 + g % 3], '+33142000000', 'out', ${`${month}-02T00:00:00Z`}::timestamptz + g * interval '1 minute', 1, 'answered'
          FROM generate_series(0, 299) g`;
    }
    const order = async (part: string) => (await sql<{ u: string }[]>`SELECT user_id::text AS u FROM ${sql(part)}`).map((r) => users.indexOf(r.u)).join('');
    expect(await order('cdrs_y2033m01')).toMatch(/^(012)+$/);
    // 10 February 2033: January ended more than 3 days ago, February is open
    const done = await clusterClosedMonths(db, new Date('2033-02-10T04:00:00Z'));
    expect(done).toEqual(['cdrs_y2033m01']);
    expect(await order('cdrs_y2033m01')).toBe('0'.repeat(100) + '1'.repeat(100) + '2'.repeat(100));
    expect(await order('cdrs_y2033m02')).toMatch(/^(012)+$/);
    expect(await clusterClosedMonths(db, new Date('2033-02-10T04:00:00Z'))).toEqual([]);
    for (const n of ['cdrs_y2033m01', 'cdrs_y2033m02']) await sql`DROP TABLE ${sql(n)}`;
  });
});
