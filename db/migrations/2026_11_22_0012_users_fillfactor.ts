import { sql, type Kysely } from 'kysely';

// CDR ingestion (issue 6): every batch updates each of its callers once (balance,
// used_seconds, total_call_seconds — no indexed column). With tables packed full
// (fillfactor 100) no new row version fits on its page, so each update was a
// cold one: a new version elsewhere and an entry in every index of `users`
// (measured: ~0.3 % of the updates of a 500,000-CDR import were HOT). Leaving
// half of each page free makes nearly all of them HOT — same page, no index
// entry — and the batch's UPDATE of the users ~2–3× cheaper
// (docs/schema.md, "Hot tables"). The directory doubles in pages (a few MB for
// 10,000 users). Existing pages get the room as they are rewritten or vacuumed.

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE users SET (fillfactor = 50)`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE users RESET (fillfactor)`.execute(db);
}
