import { sql, type Kysely } from 'kysely';

// The before-images of a users import, one row per statement instead of one row
// per user: the UPDATE (or DELETE) of an import returns the rows it replaced
// (RETURNING old.*) and they are stored as one row of column arrays. A sync wrote
// a row and a primary-key entry per changed user; one row of arrays costs a small
// part of that (benchmarks/RESULTS.md, users-import). Restore unnests them.
// Arrays are stored uncompressed (STORAGE EXTERNAL): pglz on ~1 MB per import
// costs more time than the space is worth. The authorized numbers of each user
// are kept as their array literal (text[]::text), which casts back exactly.
// import_snapshot_users stays for the imports written before this migration;
// restore reads both.

const arrays = [
  'ids',
  'full_names',
  'matricules',
  'identifiants',
  'general_states',
  'account_statuses',
  'forfait_minutes',
  'forfait_periods',
  'used_seconds',
  'total_call_seconds',
  'billing_enabled',
  'authorized_numbers',
  'created_ats',
];

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE import_snapshot_batches (
      tenant_id uuid NOT NULL,
      import_id uuid NOT NULL,
      ids uuid[] NOT NULL,
      full_names text[] NOT NULL,
      matricules text[] NOT NULL,
      identifiants text[] NOT NULL,
      general_states text[] NOT NULL,
      account_statuses text[] NOT NULL,
      forfait_minutes integer[] NOT NULL,
      forfait_periods text[] NOT NULL,
      used_seconds integer[] NOT NULL,
      total_call_seconds bigint[] NOT NULL,
      billing_enabled boolean[] NOT NULL,
      authorized_numbers text[] NOT NULL,
      created_ats timestamptz[] NOT NULL,
      CONSTRAINT import_snapshot_batches_import_fk FOREIGN KEY (tenant_id, import_id)
        REFERENCES import_snapshots (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX import_snapshot_batches_import_idx ON import_snapshot_batches (tenant_id, import_id)`.execute(db);
  for (const column of arrays) await sql.raw(`ALTER TABLE import_snapshot_batches ALTER COLUMN ${column} SET STORAGE EXTERNAL`).execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE IF EXISTS import_snapshot_batches`.execute(db);
}
