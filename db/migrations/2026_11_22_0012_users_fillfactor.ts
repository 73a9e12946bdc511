import { sql, type Kysely } from 'kysely';

// CDR ingestion (issue 6): every batch updates each of its callers once (balance,
// used_seconds, total_call_seconds — no indexed column). Migration 0004 left 20 %
// of each page free (fillfactor 80) for those updates to be HOT — same page, no
// index entry — but a batch rewrites about half of a page's users at once, which
// does not fit: measured on a 500,000-CDR import, 57 % of the updates were HOT and
// the table grew to 7.7 MB; with half of each page free, 100 % were HOT, the table
// stayed at 4.0 MB (pruned between batches) and the batches' UPDATE of the users
// took 420–510 ms instead of 920–950 (docs/schema.md, "Hot tables"). Existing
// pages get the room as they are rewritten or vacuumed.

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE users SET (fillfactor = 50)`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE users RESET (fillfactor)`.execute(db);
}
