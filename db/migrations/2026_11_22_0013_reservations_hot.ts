import { sql, type Kysely } from 'kysely';

// Every PBX allow inserts a reservation (issue 5), as every CDR inserts a row
// (0006): the foreign key from reservations to tenants ran a per-row trigger that
// looked the tenant up and locked its row FOR KEY SHARE — with two group commits
// in flight, the same tenant row is share-locked by two transactions at once,
// which PostgreSQL records as a MultiXact for every commit. Tenant ids come from
// the PBX key and tenants are never deleted; tenant_id stays NOT NULL and first in
// every key of the table.

export async function up(db: Kysely<any>): Promise<void> {
  const fks = await sql<{ name: string }>`
    SELECT conname AS name FROM pg_constraint
     WHERE conrelid = 'reservations'::regclass AND contype = 'f' AND confrelid = 'tenants'::regclass`.execute(db);
  for (const fk of fks.rows) await sql`ALTER TABLE reservations DROP CONSTRAINT ${sql.ref(fk.name)}`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE reservations ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE`.execute(db);
}
