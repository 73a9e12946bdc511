import { sql, type Kysely } from 'kysely';

// Every PBX allow inserts a reservation, so each index on the table is paid on
// the hot path. Expiry works from the owner's memory (by id) and, at load, by
// tenant and status, which reservations_open_idx (tenant_id, user_id) WHERE
// status = 'open' serves: the index on expires_at is never used.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX IF EXISTS reservations_expiry_idx`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`CREATE INDEX IF NOT EXISTS reservations_expiry_idx ON reservations (expires_at) WHERE status = 'open'`.execute(db);
}
