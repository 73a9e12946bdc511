import { sql, type Kysely } from 'kysely';

// Issue 18. A CDR whose callee lies outside the ranges the number metadata
// knows is rated all the same and flagged: cdrs.number_check. A plain ALTER
// TABLE (a later migration may partition cdrs: the column goes with it).
// An operator may release an open reservation the PBX never ended: the
// reservation's status `released`, and a ledger entry of kind `release`
// (amount 0: nothing is charged) so the user's history shows it.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE cdrs ADD COLUMN IF NOT EXISTS number_check text CHECK (number_check IN ('unknown_range'))`.execute(db);
  await sql`ALTER TABLE reservations DROP CONSTRAINT IF EXISTS reservations_status_check`.execute(db);
  await sql`ALTER TABLE reservations ADD CONSTRAINT reservations_status_check CHECK (status IN ('open','ended','rated','expired','released'))`.execute(db);
  await sql`ALTER TABLE ledger_entries DROP CONSTRAINT IF EXISTS ledger_entries_kind_check`.execute(db);
  await sql`ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check CHECK (kind IN ('topup','adjustment','call','refund','rerate','release'))`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE ledger_entries DROP CONSTRAINT IF EXISTS ledger_entries_kind_check`.execute(db);
  await sql`ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check CHECK (kind IN ('topup','adjustment','call','refund','rerate'))`.execute(db);
  await sql`ALTER TABLE reservations DROP CONSTRAINT IF EXISTS reservations_status_check`.execute(db);
  await sql`ALTER TABLE reservations ADD CONSTRAINT reservations_status_check CHECK (status IN ('open','ended','rated','expired'))`.execute(db);
  await sql`ALTER TABLE cdrs DROP COLUMN IF EXISTS number_check`.execute(db);
}
