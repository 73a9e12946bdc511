import { sql, type Kysely } from 'kysely';

// Invoices (issue 7).
//
// - user_status_events: when each user was enabled, disabled or removed, so an
//   invoice can count "users enabled during the month" (SPEC §9) after the fact,
//   even for users deleted since (a deletion removes the users row). Written by
//   triggers on users, so every path (API, CSV import/sync, restore, scripts) is
//   covered. Statement-level triggers for INSERT and DELETE (one INSERT … SELECT
//   per statement, not one per row); the UPDATE trigger is per row but fires only
//   for statements that SET account_status AND change it, so the rating path's
//   balance and counter updates never pay for it. Users that exist when this
//   migration runs get one event at their created_at with their current status
//   (the history before this migration is not known).
// - invoice_items: what an issued invoice is made of, frozen at issue: one row
//   per licensed user and one per invoiced CDR with the cost it had then. The
//   details CSV reads them, so it still sums to the invoice after a rerate or a
//   late CDR. Immutable like the invoice. Its foreign key is deferred: the items
//   are written before the invoice row so the invoice-number lock is held only
//   for the last statements of the transaction.
// - invoice numbers are unique for the whole issuer (one sequence per year), not
//   only per tenant.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE user_status_events (
      tenant_id uuid NOT NULL,
      id bigint GENERATED ALWAYS AS IDENTITY,
      user_id uuid NOT NULL,
      status text NOT NULL CHECK (status IN ('enabled','disabled','deleted')),
      at timestamptz NOT NULL DEFAULT now(),
      matricule text,
      identifiant text,
      full_name text,
      CONSTRAINT user_status_events_pk PRIMARY KEY (tenant_id, id)
    )`.execute(db);
  await sql`CREATE INDEX user_status_events_user_idx ON user_status_events (tenant_id, user_id, at)`.execute(db);
  await sql`
    INSERT INTO user_status_events (tenant_id, user_id, status, at, matricule, identifiant, full_name)
    SELECT tenant_id, id, account_status, created_at, matricule, identifiant, full_name FROM users`.execute(db);

  await sql`
    CREATE FUNCTION users_status_added() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO user_status_events (tenant_id, user_id, status, matricule, identifiant, full_name)
      SELECT tenant_id, id, account_status, matricule, identifiant, full_name FROM added;
      RETURN NULL;
    END $$`.execute(db);
  await sql`
    CREATE FUNCTION users_status_removed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO user_status_events (tenant_id, user_id, status, matricule, identifiant, full_name)
      SELECT tenant_id, id, 'deleted', matricule, identifiant, full_name FROM removed;
      RETURN NULL;
    END $$`.execute(db);
  await sql`
    CREATE FUNCTION users_status_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO user_status_events (tenant_id, user_id, status, matricule, identifiant, full_name)
      VALUES (NEW.tenant_id, NEW.id, NEW.account_status, NEW.matricule, NEW.identifiant, NEW.full_name);
      RETURN NULL;
    END $$`.execute(db);
  await sql`CREATE TRIGGER users_status_ins AFTER INSERT ON users REFERENCING NEW TABLE AS added
              FOR EACH STATEMENT EXECUTE FUNCTION users_status_added()`.execute(db);
  await sql`CREATE TRIGGER users_status_del AFTER DELETE ON users REFERENCING OLD TABLE AS removed
              FOR EACH STATEMENT EXECUTE FUNCTION users_status_removed()`.execute(db);
  await sql`CREATE TRIGGER users_status_upd AFTER UPDATE OF account_status ON users FOR EACH ROW
              WHEN (OLD.account_status IS DISTINCT FROM NEW.account_status)
              EXECUTE FUNCTION users_status_changed()`.execute(db);

  await sql`
    CREATE TABLE invoice_items (
      tenant_id uuid NOT NULL,
      invoice_id uuid NOT NULL,
      id bigint GENERATED ALWAYS AS IDENTITY,
      line_no integer NOT NULL,
      kind text NOT NULL CHECK (kind IN ('licence','call')),
      user_id uuid,
      cdr_id bigint,
      charged_seconds integer NOT NULL DEFAULT 0,
      cost numeric(20,4) NOT NULL,
      amount numeric(20,4) NOT NULL,
      CONSTRAINT invoice_items_pk PRIMARY KEY (tenant_id, invoice_id, id),
      CONSTRAINT invoice_items_invoice_fk FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoices (tenant_id, id)
        DEFERRABLE INITIALLY DEFERRED
    )`.execute(db);
  await sql`CREATE TRIGGER invoice_items_immutable BEFORE UPDATE OR DELETE ON invoice_items
              FOR EACH ROW EXECUTE FUNCTION forbid_change()`.execute(db);
  await sql`CREATE UNIQUE INDEX invoices_number_global_uq ON invoices (number)`.execute(db);
  await sql`CREATE INDEX invoices_list_idx ON invoices (tenant_id, period DESC, number DESC)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX IF EXISTS invoices_list_idx`.execute(db);
  await sql`DROP INDEX IF EXISTS invoices_number_global_uq`.execute(db);
  await sql`DROP TABLE IF EXISTS invoice_items`.execute(db);
  for (const t of ['ins', 'del', 'upd']) await sql.raw(`DROP TRIGGER IF EXISTS users_status_${t} ON users`).execute(db);
  await sql`DROP FUNCTION IF EXISTS users_status_added(), users_status_removed(), users_status_changed()`.execute(db);
  await sql`DROP TABLE IF EXISTS user_status_events`.execute(db);
}
