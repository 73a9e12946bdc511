import { sql, type Kysely } from 'kysely';

// CDR ingestion (issue 6): every batch updates each of its callers once (balance,
// used_seconds, total_call_seconds — no indexed column). Migration 0004 left 20 %
// of each page free (fillfactor 80) for those updates to be HOT — same page, no
// index entry — but a batch rewrites about half of a page's users at once, which
// does not fit: many updates were not HOT and the table bloated. With half of each
// page free all of them are HOT, the table stays small (pruned between batches)
// and the batches' UPDATE of the users is much cheaper (measured: docs/schema.md,
// "Hot tables"). Existing pages get the room as they are rewritten or vacuumed.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE users SET (fillfactor = 50)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE users RESET (fillfactor)`.execute(db);
}
