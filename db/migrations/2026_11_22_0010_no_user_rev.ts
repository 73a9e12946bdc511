import { sql, type Kysely } from 'kysely';

// users.rev (migration 0003) let the account book tell a newer row from an
// older one. The book now applies a tenant's snapshots strictly one after the
// other, so it needs no revision, and every user update (an import, a CDR
// batch) no longer pays a row trigger for it.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`DROP TRIGGER IF EXISTS users_rev ON users`.execute(db);
  await sql`DROP FUNCTION IF EXISTS users_bump_rev()`.execute(db);
  await sql`ALTER TABLE users DROP COLUMN IF EXISTS rev`.execute(db);
  await sql`DROP SEQUENCE IF EXISTS users_rev_seq`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`CREATE SEQUENCE IF NOT EXISTS users_rev_seq`.execute(db);
  await sql`ALTER TABLE users ADD COLUMN IF NOT EXISTS rev bigint NOT NULL DEFAULT nextval('users_rev_seq')`.execute(db);
  await sql`
    CREATE FUNCTION users_bump_rev() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN NEW.rev := nextval('users_rev_seq'); RETURN NEW; END $$`.execute(db);
  await sql`CREATE TRIGGER users_rev BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION users_bump_rev()`.execute(db);
}
