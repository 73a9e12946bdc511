import { sql, type Kysely } from 'kysely';

// The answer given to the PBX is kept only to give it again to a retried
// authorization (same callId), also after a restart: it is read back whole and
// never queried inside. Stored as text, PostgreSQL no longer parses it into
// jsonb on every allow (measured alone: benchmarks/RESULTS.md, authorize).

export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE reservations ALTER COLUMN answer TYPE text USING answer::text`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE reservations ALTER COLUMN answer TYPE jsonb USING answer::jsonb`.execute(db);
}
