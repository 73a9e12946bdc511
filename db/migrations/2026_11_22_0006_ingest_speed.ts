import { sql, type Kysely } from 'kysely';

// CDR ingestion speed (issue 6). Every CDR inserts into `cdrs` and, when it costs
// something, into `ledger_entries`: each index and row trigger on those two tables
// is paid on every row of every import (measured, docs/schema.md "Hot tables").
//
// - No foreign key from cdrs and ledger_entries to tenants: its per-row trigger
//   looked the tenant up for each row. Tenant ids come from the API key (or the
//   CLI's checked --tenant) and tenants are never deleted; tenant_id stays NOT NULL
//   and first in every key.
// - cdrs_user_idx (tenant_id, user_id, started_at) dropped: inserting into it
//   touches a random leaf per row (one per user), the most expensive index of the
//   table. A user's calls are found through cdrs_started_idx (tenant, period) and
//   a filter on user_id.
// - ledger_idempotency_uq becomes partial (idempotency_key IS NOT NULL): `call`
//   entries have no key and no longer cost an index entry. appendLedgerEntry
//   reads the key first and no statement uses it as an ON CONFLICT arbiter.
// - cdrs ids: a batch takes the ids of its rows first (its ledger entries name
//   them), one nextval per row; the sequence now hands each connection blocks of
//   1,000 (CACHE), so most of those calls touch no shared page. Ids keep growing
//   per connection but are no longer in insertion order across connections, and
//   a closed connection leaves a gap: nothing reads order or density into them.

const HOT_TABLES = ['cdrs', 'ledger_entries'];

export async function up(db: Kysely<any>): Promise<void> {
  for (const table of HOT_TABLES) {
    const fks = await sql<{ name: string }>`
      SELECT conname AS name FROM pg_constraint
       WHERE conrelid = ${table}::regclass AND contype = 'f' AND confrelid = 'tenants'::regclass`.execute(db);
    for (const fk of fks.rows) await sql`ALTER TABLE ${sql.table(table)} DROP CONSTRAINT ${sql.ref(fk.name)}`.execute(db);
  }
  await sql`DROP INDEX IF EXISTS cdrs_user_idx`.execute(db);
  await sql`ALTER TABLE cdrs ALTER COLUMN id SET CACHE 1000`.execute(db);
  await sql`ALTER TABLE ledger_entries DROP CONSTRAINT IF EXISTS ledger_idempotency_uq`.execute(db);
  await sql`CREATE UNIQUE INDEX ledger_idempotency_uq ON ledger_entries (tenant_id, user_id, idempotency_key)
              WHERE idempotency_key IS NOT NULL`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX IF EXISTS ledger_idempotency_uq`.execute(db);
  await sql`ALTER TABLE ledger_entries ADD CONSTRAINT ledger_idempotency_uq UNIQUE (tenant_id, user_id, idempotency_key)`.execute(db);
  await sql`ALTER TABLE cdrs ALTER COLUMN id SET CACHE 1`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS cdrs_user_idx ON cdrs (tenant_id, user_id, started_at)`.execute(db);
  for (const table of HOT_TABLES) {
    await sql`ALTER TABLE ${sql.table(table)} ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE`.execute(db);
  }
}
