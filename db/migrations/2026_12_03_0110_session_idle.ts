import { sql, type Kysely } from 'kysely';

// Portal sessions end after an idle time as well as at their absolute end
// (issue 20): the last time each was used, renewed as the person works.
// Sessions open at the upgrade count from it.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE sessions ADD COLUMN last_seen_at timestamptz NOT NULL DEFAULT now()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE sessions DROP COLUMN last_seen_at`.execute(db);
}
