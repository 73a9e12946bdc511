import { describe, expect, it } from 'vitest';
import { migrateTo, migrateToLatest } from '../../db/migrate.js';
import { scratchDatabase } from '../support/scratchDb.js';

/**
 * Migration 0050 on a database that holds CDRs, with a column, an index and a
 * trigger another feature's migration added to cdrs before it (as issue 18 adds
 * a column): the partitioned table is built from the columns cdrs has, every
 * row moves to its month with its id, what was added comes along, ids go on.
 */
const scratch = scratchDatabase('forfait_part');

describe('migration 0050 (cdrs partitioned by month)', () => {
  it('moves the rows of an unpartitioned cdrs, with what other migrations added to it', async () => {
    const h = scratch.handle();
    // every migration before 0050 (0030 adds number_check to cdrs: it must be there before the rows are read)
    await migrateTo(h.db, '2026_12_02_0040_devices');
    const { sql } = h;
    const tenant = '00000000-0000-4000-8000-000000000001';
    // what another feature's migration could have added before this one
    await sql`ALTER TABLE cdrs ADD COLUMN source_file text DEFAULT 'none' CHECK (source_file <> 'refused')`;
    await sql`CREATE INDEX cdrs_source_file_idx ON cdrs (tenant_id, source_file)`;
    await sql`CREATE FUNCTION cdrs_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.site := coalesce(NEW.site, 'touched'); RETURN NEW; END $$`;
    await sql`CREATE TRIGGER cdrs_touch BEFORE INSERT ON cdrs FOR EACH ROW EXECUTE FUNCTION cdrs_touch()`;
    await sql`
      INSERT INTO cdrs (tenant_id, call_id, callee, direction, started_at, duration_seconds, disposition, source_file)
      SELECT ${tenant}, 'm-' || g, '+33142000000', 'out', timestamptz '2026-10-31T22:00:00Z' + g * interval '1 hour', g, 'answered', 'f' || g
        FROM generate_series(1, 5) g`;
    await sql`INSERT INTO cdrs (tenant_id, call_id, callee, direction, started_at, duration_seconds, disposition) VALUES (${tenant}, 'old', '+33142000000', 'out', '2019-02-03T10:00:00Z', 1, 'answered')`;
    const before = await sql`SELECT * FROM cdrs ORDER BY id`;
    expect(before.every((r) => r.site === 'touched')).toBe(true);

    await migrateToLatest(h.db);
    const [kind] = await sql<{ relkind: string }[]>`SELECT relkind FROM pg_class WHERE oid = 'cdrs'::regclass`;
    expect(kind!.relkind).toBe('p');
    expect(await sql`SELECT * FROM cdrs ORDER BY id`).toEqual(before);
    const parts = await sql<{ part: string; n: number }[]>`SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM cdrs GROUP BY 1 ORDER BY 1`;
    expect(parts).toEqual([
      { part: 'cdrs_y2019m02', n: 1 },
      { part: 'cdrs_y2026m10', n: 1 },
      { part: 'cdrs_y2026m11', n: 4 },
    ]);
    const indexes = await sql<{ name: string }[]>`SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indrelid = 'cdrs'::regclass ORDER BY 1`;
    expect(indexes.map((i) => i.name)).toEqual(['cdrs_pk', 'cdrs_source_file_idx', 'cdrs_started_idx', 'cdrs_user_idx']);
    // the trigger and the column default came along; ids go on after the old ones; a call id is once per month
    const [row] = await sql<{ id: string; site: string; sourceFile: string }[]>`
      INSERT INTO cdrs (tenant_id, call_id, callee, direction, started_at, duration_seconds, disposition)
      VALUES (${tenant}, 'new', '+33142000000', 'out', '2026-11-05T10:00:00Z', 1, 'answered') RETURNING id::text, site, source_file AS "sourceFile"`;
    expect(row).toMatchObject({ site: 'touched', sourceFile: 'none' });
    expect(BigInt(row!.id)).toBeGreaterThan(BigInt(before.at(-1)!.id));
    await expect(sql`
      INSERT INTO cdrs (tenant_id, call_id, callee, direction, started_at, duration_seconds, disposition)
      VALUES (${tenant}, 'm-3', '+33142000000', 'out', '2026-11-20T10:00:00Z', 1, 'answered')`).rejects.toMatchObject({ code: '23505', constraint_name: 'cdrs_y2026m11_call_id_uq' });
    expect(await sql`SELECT 1 FROM pg_tables WHERE tablename = 'cdrs_unpartitioned'`).toHaveLength(0);
    // the column's CHECK came along, in the partitions made since too
    await sql`SELECT cdrs_ensure_month('2031-05-05T00:00:00Z')`;
    await expect(sql`
      INSERT INTO cdrs (tenant_id, call_id, callee, direction, started_at, duration_seconds, disposition, source_file)
      VALUES (${tenant}, 'chk', '+33142000000', 'out', '2031-05-05T10:00:00Z', 1, 'answered', 'refused')`).rejects.toMatchObject({ code: '23514' });
    // migration 0052: the stored calls near a month's edge (31 October 23:00 to 1 November 03:00) keep their key
    const keys = await sql<{ callId: string }[]>`SELECT call_id AS "callId" FROM cdr_boundary_keys ORDER BY call_id`;
    expect(keys.map((k) => k.callId)).toEqual(['m-1', 'm-2', 'm-3', 'm-4', 'm-5']);
  });
});
