import { sql, type Kysely } from 'kysely';

// An invoice keeps its frozen details (issue 22): what the details CSV shows of
// each invoiced call — its call id, start, callee, destination, class and the
// identifiant it was made from — is copied into its invoice_items row when the
// invoice is issued, as its cost and charged seconds already were. The CDR's
// month may then be archived and dropped (services/archives/): the details CSV
// reads invoice_items alone and stays the same file, byte for byte.
//
// Items issued before this migration get the values of their CDR now. An item
// whose CDR was archived before it (the archive job of the same wave) keeps
// NULLs (the rows stay immutable, but such an item may receive its own CDR's
// details once, and nothing else may change): the details CSV refuses it with a 409 naming the archive files to
// restore, and `forfait archives restore` fills them in (services/invoices/frozenCalls.ts).

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    ALTER TABLE invoice_items
      ADD COLUMN call_id text,
      ADD COLUMN started_at timestamptz,
      ADD COLUMN callee text,
      ADD COLUMN destination text,
      ADD COLUMN class text,
      ADD COLUMN identifiant text`.execute(db);
  // rows stay immutable but for this: a call item without details may receive its own CDR's, once, and nothing else
  await sql`
    CREATE FUNCTION invoice_items_fill_details() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'UPDATE' AND OLD.kind = 'call' AND OLD.call_id IS NULL AND NEW.call_id IS NOT NULL
         AND (NEW.tenant_id, NEW.invoice_id, NEW.id, NEW.line_no, NEW.kind, NEW.user_id, NEW.cdr_id, NEW.charged_seconds, NEW.cost, NEW.amount)
             IS NOT DISTINCT FROM (OLD.tenant_id, OLD.invoice_id, OLD.id, OLD.line_no, OLD.kind, OLD.user_id, OLD.cdr_id, OLD.charged_seconds, OLD.cost, OLD.amount)
         AND EXISTS (SELECT 1 FROM cdrs c WHERE c.tenant_id = OLD.tenant_id AND c.id = OLD.cdr_id
                        AND (c.call_id, c.started_at, c.callee, c.destination, c.class, c.identifiant)
                            IS NOT DISTINCT FROM (NEW.call_id, NEW.started_at, NEW.callee, NEW.destination, NEW.class, NEW.identifiant))
      THEN RETURN NEW;
      END IF;
      RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME;
    END $$`.execute(db);
  await sql`DROP TRIGGER invoice_items_immutable ON invoice_items`.execute(db);
  await sql`CREATE TRIGGER invoice_items_immutable BEFORE UPDATE OR DELETE ON invoice_items
              FOR EACH ROW EXECUTE FUNCTION invoice_items_fill_details()`.execute(db);
  await sql`
    UPDATE invoice_items i
       SET call_id = c.call_id, started_at = c.started_at, callee = c.callee, destination = c.destination, class = c.class, identifiant = c.identifiant
      FROM cdrs c
     WHERE i.kind = 'call' AND c.tenant_id = i.tenant_id AND c.id = i.cdr_id`.execute(db);
  // a call item always has its call's details, but for those archived before this migration
  await sql`CREATE INDEX invoice_items_unfrozen_idx ON invoice_items (tenant_id, invoice_id) WHERE kind = 'call' AND call_id IS NULL`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX IF EXISTS invoice_items_unfrozen_idx`.execute(db);
  await sql`DROP TRIGGER invoice_items_immutable ON invoice_items`.execute(db);
  await sql`CREATE TRIGGER invoice_items_immutable BEFORE UPDATE OR DELETE ON invoice_items
              FOR EACH ROW EXECUTE FUNCTION forbid_change()`.execute(db);
  await sql`DROP FUNCTION invoice_items_fill_details()`.execute(db);
  await sql`
    ALTER TABLE invoice_items
      DROP COLUMN IF EXISTS call_id, DROP COLUMN IF EXISTS started_at, DROP COLUMN IF EXISTS callee,
      DROP COLUMN IF EXISTS destination, DROP COLUMN IF EXISTS class, DROP COLUMN IF EXISTS identifiant`.execute(db);
}
