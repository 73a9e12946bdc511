import { sql, type Kysely } from 'kysely';

// CDR ingestion and rerating (issue 6).
// - cdrs.cost is the cost accounted for now; a rerate that changes it keeps the
//   first rating's cost in original_cost and stamps rerated_at, and appends a
//   `rerate` ledger entry for the difference (the ledger itself is never edited).
// - One pending reject per call id: importing the same file twice does not store
//   its rejects twice; reprocessing marks them (reprocessed_at) and frees the key.
// - Reprocess walks the pending rejects of a tenant.

export async function up(db: Kysely<any>): Promise<void> {
  // Rating updates each caller's row once per batch (balance, counters, rev: no
  // indexed column). Free space on the page lets those be HOT updates that touch
  // no index; new pages keep 20 % free.
  await sql`ALTER TABLE users SET (fillfactor = 80)`.execute(db);
  await sql`ALTER TABLE cdrs ADD COLUMN original_cost numeric(20,4), ADD COLUMN rerated_at timestamptz`.execute(db);
  await sql`CREATE UNIQUE INDEX rejected_cdrs_pending_call_uq ON rejected_cdrs (tenant_id, call_id) WHERE reprocessed_at IS NULL`.execute(db);
  await sql`CREATE INDEX rejected_cdrs_pending_idx ON rejected_cdrs (tenant_id, id) WHERE reprocessed_at IS NULL`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX IF EXISTS rejected_cdrs_pending_idx`.execute(db);
  await sql`DROP INDEX IF EXISTS rejected_cdrs_pending_call_uq`.execute(db);
  await sql`ALTER TABLE cdrs DROP COLUMN IF EXISTS rerated_at, DROP COLUMN IF EXISTS original_cost`.execute(db);
  await sql`ALTER TABLE users RESET (fillfactor)`.execute(db);
}
