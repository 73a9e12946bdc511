import { sql, type Kysely } from 'kysely';

// Monthly partitions of cdrs (issue 22). `cdrs` becomes a table partitioned by
// RANGE (started_at), one partition per UTC month named cdrs_yYYYYmMM, made by
// cdrs_ensure_month() — ahead by the `cdr-partitions` job, on demand by the
// batch writer for a month it meets first (a late CDR), and here for every month
// the table already holds.
//
// The new table is built from whatever columns cdrs has when this runs (LIKE …):
// migrations of other features that add columns before this one are carried
// over, and db/schema.ts stays the one description of the columns.
//
// Keys (docs/schema.md "Partitions"):
// - cdrs_pk (tenant_id, id, started_at): a key of a partitioned table must hold
//   the partition column; ids come from one sequence, so (tenant_id, id) stays
//   unique and its lookups use the key's prefix.
// - <partition>_call_id_uq (tenant_id, call_id) on each partition: exactly once
//   by call id within the month of started_at, which a resent CDR repeats.
//   PostgreSQL cannot make a unique index over all partitions without the
//   partition column; this one is stronger than (tenant_id, call_id,
//   started_at) (a resend whose start moved within its month is still refused)
//   and stays one month deep whatever the history.
// - cdrs_started_idx (tenant_id, started_at): lists, exports, invoices, rerating.
// - cdrs_user_idx (tenant_id, user_id, started_at): a user's history (dropped by
//   0006 for ingest speed, back now that each month's index is small).

const ENSURE_MONTH = sql`
CREATE OR REPLACE FUNCTION cdrs_ensure_month(at timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  lo timestamptz := date_trunc('month', at, 'UTC');
  -- a month added in UTC: in the session's zone (the server's default) a DST change would move the bound by an hour
  hi timestamptz := (date_trunc('month', at AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
  part text := 'cdrs_' || to_char(lo AT TIME ZONE 'UTC', '"y"YYYY"m"MM');
BEGIN
  IF to_regclass(part) IS NOT NULL THEN RETURN part; END IF;
  -- one creator at a time (the lock ATTACH takes anyway; inserts go on); the
  -- second finds the partition made by the first, read from pg_class by a new snapshot
  LOCK TABLE cdrs IN SHARE UPDATE EXCLUSIVE MODE;
  IF EXISTS (SELECT 1 FROM pg_class WHERE relname = part AND relnamespace = (SELECT c.relnamespace FROM pg_class c WHERE c.oid = 'cdrs'::regclass)) THEN
    RETURN part;
  END IF;
  EXECUTE format('CREATE TABLE %I (LIKE cdrs INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)', part);
  EXECUTE format('CREATE UNIQUE INDEX %I ON %I (tenant_id, call_id)', part || '_call_id_uq', part);
  -- ATTACH takes SHARE UPDATE EXCLUSIVE on cdrs: batches writing other months go on
  EXECUTE format('ALTER TABLE cdrs ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
  RETURN part;
END $$`;

export async function up(db: Kysely<any>): Promise<void> {
  const refs = await sql<{ name: string; tbl: string }>`
    SELECT conname AS name, conrelid::regclass::text AS tbl FROM pg_constraint WHERE confrelid = 'cdrs'::regclass AND contype = 'f'`.execute(db);
  if (refs.rows.length > 0) {
    const list = refs.rows.map((r) => `${r.tbl}.${r.name}`).join(', ');
    throw new Error(`cdrs becomes partitioned by started_at (issue 22): a foreign key to it must reference (tenant_id, id, started_at); found ${list}`);
  }
  // what other migrations added to cdrs besides its known keys: recreated on the new table
  const known = ['cdrs_pk', 'cdrs_call_id_uq', 'cdrs_started_idx', 'cdrs_user_idx'];
  const indexes = await sql<{ name: string; def: string; isUnique: boolean }>`
    SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def, i.indisunique AS "isUnique"
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'cdrs'::regclass`.execute(db);
  const triggers = await sql<{ name: string; def: string }>`
    SELECT tgname AS name, pg_get_triggerdef(oid) AS def FROM pg_trigger WHERE tgrelid = 'cdrs'::regclass AND NOT tgisinternal`.execute(db);
  const extra = indexes.rows.filter((i) => !known.includes(i.name));
  const badUnique = extra.filter((i) => i.isUnique && !/started_at/.test(i.def));
  if (badUnique.length > 0) throw new Error(`a unique index of a partitioned cdrs must include started_at: ${badUnique.map((i) => i.name).join(', ')}`);

  await sql`ALTER TABLE cdrs RENAME TO cdrs_unpartitioned`.execute(db);
  for (const i of indexes.rows) await sql`ALTER INDEX ${sql.ref(i.name)} RENAME TO ${sql.ref(`${i.name}_unpartitioned`.slice(0, 63))}`.execute(db);
  for (const t of triggers.rows) await sql`DROP TRIGGER ${sql.ref(t.name)} ON cdrs_unpartitioned`.execute(db);

  await sql`CREATE TABLE cdrs (LIKE cdrs_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED
              INCLUDING IDENTITY INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE (started_at)`.execute(db);
  await sql`ALTER TABLE cdrs ALTER COLUMN id SET CACHE 1000`.execute(db);
  // the ids go on from where the old sequence was (ledger entries name CDRs by id)
  await sql`SELECT setval(pg_get_serial_sequence('cdrs', 'id'), GREATEST(
              COALESCE((SELECT max(id) FROM cdrs_unpartitioned), 0),
              COALESCE((SELECT last_value FROM pg_sequences
                         WHERE format('%I.%I', schemaname, sequencename) = pg_get_serial_sequence('cdrs_unpartitioned', 'id')), 0),
              1))`.execute(db);
  await ENSURE_MONTH.execute(db);
  await sql`SELECT cdrs_ensure_month(m) FROM (
              SELECT DISTINCT date_trunc('month', started_at, 'UTC') AS m FROM cdrs_unpartitioned
              UNION SELECT now() + make_interval(months => k) FROM generate_series(0, 2) AS k) x ORDER BY m`.execute(db);
  await sql`INSERT INTO cdrs OVERRIDING SYSTEM VALUE SELECT * FROM cdrs_unpartitioned`.execute(db);

  await sql`ALTER TABLE cdrs ADD CONSTRAINT cdrs_pk PRIMARY KEY (tenant_id, id, started_at)`.execute(db);
  await sql`CREATE INDEX cdrs_started_idx ON cdrs (tenant_id, started_at)`.execute(db);
  await sql`CREATE INDEX cdrs_user_idx ON cdrs (tenant_id, user_id, started_at)`.execute(db);
  // their definitions were read before the rename: they name cdrs, now the partitioned table
  for (const i of extra) await sql.raw(i.def).execute(db);
  for (const t of triggers.rows) await sql.raw(t.def).execute(db);
  await sql`DROP TABLE cdrs_unpartitioned`.execute(db);
  await sql`ANALYZE cdrs`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE cdrs RENAME TO cdrs_partitioned`.execute(db);
  await sql`ALTER INDEX cdrs_pk RENAME TO cdrs_pk_partitioned`.execute(db);
  await sql`ALTER INDEX cdrs_started_idx RENAME TO cdrs_started_idx_partitioned`.execute(db);
  await sql`ALTER INDEX cdrs_user_idx RENAME TO cdrs_user_idx_partitioned`.execute(db);
  await sql`CREATE TABLE cdrs (LIKE cdrs_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY INCLUDING STORAGE)`.execute(db);
  await sql`SELECT setval(pg_get_serial_sequence('cdrs', 'id'), GREATEST((SELECT max(id) FROM cdrs_partitioned), 1))`.execute(db);
  await sql`INSERT INTO cdrs OVERRIDING SYSTEM VALUE SELECT * FROM cdrs_partitioned`.execute(db);
  await sql`DROP TABLE cdrs_partitioned`.execute(db);
  await sql`DROP FUNCTION IF EXISTS cdrs_ensure_month(timestamptz)`.execute(db);
  await sql`ALTER TABLE cdrs ADD CONSTRAINT cdrs_pk PRIMARY KEY (tenant_id, id), ADD CONSTRAINT cdrs_call_id_uq UNIQUE (tenant_id, call_id)`.execute(db);
  await sql`CREATE INDEX cdrs_started_idx ON cdrs (tenant_id, started_at)`.execute(db);
}
