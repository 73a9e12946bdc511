import { sql, type Kysely } from 'kysely';

// The audit trail (issue 20, seed 000's task history): every change made by a
// person or a key, who, what, when, before and after. Append-only: a trigger
// refuses UPDATE and DELETE, so not even a bug in the application can rewrite it.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE audit_events (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      reseller_id uuid NOT NULL REFERENCES resellers(id),
      tenant_id uuid REFERENCES tenants(id),
      at timestamptz NOT NULL DEFAULT now(),
      actor_kind text NOT NULL CHECK (actor_kind IN ('key', 'person', 'system')),
      actor_id text NOT NULL,
      actor_label text,
      action text NOT NULL,
      target_type text NOT NULL,
      target_id text,
      before jsonb,
      after jsonb
    )`.execute(db);
  await sql`CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id DESC)`.execute(db);
  await sql`CREATE INDEX audit_events_reseller ON audit_events (reseller_id, id DESC)`.execute(db);
  await sql`
    CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$`.execute(db);
  await sql`
    CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_events
      FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE audit_events`.execute(db);
  await sql`DROP FUNCTION audit_events_append_only()`.execute(db);
}
