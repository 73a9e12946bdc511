import { sql, type Kysely } from 'kysely';

// Reservation ids are time-ordered (UUIDv7, services/authorization/authorize.ts),
// so an index that starts (tenant_id, id) takes each new reservation on its last
// leaf. The open reservations' index was keyed by user, which no query uses (the
// owner loads and expires a tenant's open reservations; everything else goes by
// id or callId): every allow paid a descent to a random leaf for it (measured:
// benchmarks/RESULTS.md, authorize).

export async function up(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX IF EXISTS reservations_open_idx`.execute(db);
  await sql`CREATE INDEX reservations_open_idx ON reservations (tenant_id, id) WHERE status = 'open'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX IF EXISTS reservations_open_idx`.execute(db);
  await sql`CREATE INDEX reservations_open_idx ON reservations (tenant_id, user_id) WHERE status = 'open'`.execute(db);
}
