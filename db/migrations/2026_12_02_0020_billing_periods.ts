import { sql, type Kysely } from 'kysely';

// Billing periods done right (issue 17).
//
// - forfait_usage: the forfait seconds each user used in each tenant-local month
//   (period 'YYYY-MM'). A CDR spends the forfait of the month its call started
//   in, so a late October CDR rated in December reads and moves October's row,
//   never users.used_seconds — which stays the figure of the user's current
//   period (users.forfait_period) that authorization reads. Backfilled from the
//   rated CDRs; the current period's row takes users.used_seconds, the
//   authoritative counter (an import may have set it).
// - invoices.kind: 'invoice' or 'credit_note' (an avoir, numbered AV-YYYY-NNNNNN
//   in its own unbroken sequence, credit_note_sequences), corrects_invoice_id
//   naming the invoice a credit note corrects. Only invoices are one per tenant
//   and month: the unique constraint becomes a partial unique index.
// - invoice_lines.period / call_class: a line that bills (or credits) calls of
//   another, already invoiced month says which month and class, so the sum of
//   every document's lines of a month can be compared with its rated CDRs.
// - invoice_items by CDR: what was already invoiced of each CDR is read at
//   every issue.
// - tenants.billing_address: the client's postal address for the bill-to box.
// Rows stay immutable: the forbid_change() triggers are untouched (new columns
// with no default rewrite nothing).

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE forfait_usage (
      tenant_id uuid NOT NULL,
      user_id uuid NOT NULL,
      period text NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
      used_seconds integer NOT NULL DEFAULT 0 CHECK (used_seconds >= 0),
      CONSTRAINT forfait_usage_pk PRIMARY KEY (tenant_id, user_id, period)
    )`.execute(db);
  await sql`
    INSERT INTO forfait_usage (tenant_id, user_id, period, used_seconds)
    SELECT c.tenant_id, c.user_id, to_char(c.started_at AT TIME ZONE t.timezone, 'YYYY-MM'), sum(c.forfait_seconds)
      FROM cdrs c JOIN tenants t ON t.id = c.tenant_id
     WHERE c.user_id IS NOT NULL AND c.forfait_seconds > 0
     GROUP BY 1, 2, 3`.execute(db);
  await sql`
    INSERT INTO forfait_usage (tenant_id, user_id, period, used_seconds)
    SELECT tenant_id, id, forfait_period, used_seconds FROM users WHERE forfait_period IS NOT NULL
    ON CONFLICT (tenant_id, user_id, period) DO UPDATE SET used_seconds = EXCLUDED.used_seconds`.execute(db);

  await sql`ALTER TABLE invoices ADD COLUMN kind text NOT NULL DEFAULT 'invoice' CHECK (kind IN ('invoice','credit_note'))`.execute(db);
  await sql`ALTER TABLE invoices ADD COLUMN corrects_invoice_id uuid`.execute(db);
  await sql`ALTER TABLE invoices DROP CONSTRAINT invoices_period_uq`.execute(db);
  await sql`CREATE UNIQUE INDEX invoices_period_uq ON invoices (tenant_id, period) WHERE kind = 'invoice'`.execute(db);
  await sql`CREATE TABLE credit_note_sequences (year integer PRIMARY KEY, last_number integer NOT NULL)`.execute(db);

  await sql`ALTER TABLE invoice_lines ADD COLUMN period text`.execute(db);
  await sql`ALTER TABLE invoice_lines ADD COLUMN call_class text`.execute(db);
  await sql`CREATE INDEX invoice_items_cdr_idx ON invoice_items (tenant_id, cdr_id) WHERE cdr_id IS NOT NULL`.execute(db);

  await sql`ALTER TABLE tenants ADD COLUMN billing_address text[] NOT NULL DEFAULT '{}'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE tenants DROP COLUMN IF EXISTS billing_address`.execute(db);
  await sql`DROP INDEX IF EXISTS invoice_items_cdr_idx`.execute(db);
  await sql`ALTER TABLE invoice_lines DROP COLUMN IF EXISTS call_class`.execute(db);
  await sql`ALTER TABLE invoice_lines DROP COLUMN IF EXISTS period`.execute(db);
  await sql`DROP TABLE IF EXISTS credit_note_sequences`.execute(db);
  await sql`DROP INDEX IF EXISTS invoices_period_uq`.execute(db);
  await sql`ALTER TABLE invoices ADD CONSTRAINT invoices_period_uq UNIQUE (tenant_id, period)`.execute(db);
  await sql`ALTER TABLE invoices DROP COLUMN IF EXISTS corrects_invoice_id`.execute(db);
  await sql`ALTER TABLE invoices DROP COLUMN IF EXISTS kind`.execute(db);
  await sql`DROP TABLE IF EXISTS forfait_usage`.execute(db);
}
