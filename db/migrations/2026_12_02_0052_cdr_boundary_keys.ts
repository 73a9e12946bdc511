import { sql, type Kysely } from 'kysely';

// Exactly once across the month boundary (issue 22). Each monthly partition of
// cdrs makes a call id unique within the month of its start (migration 0050).
// Two records of one call may carry starts a little apart — a call ended through
// the API starts at its authorization, the PBX's CDR at the PBX's own start;
// a tenant's zone changed between two sends of a file of local times — and near
// a month's edge those can fall in two months. cdr_boundary_keys holds the call
// ids of the CDRs that start within one day of a UTC month's edge (the batch
// writer inserts them with the rows, in the same transaction): a call id twice
// there is refused, whatever the two months. ~2 days in 30 of the traffic pays
// one more index entry; the rest pays nothing. The archive job removes a month's
// keys with its rows.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE cdr_boundary_keys (
      tenant_id uuid NOT NULL,
      call_id text NOT NULL,
      started_at timestamptz NOT NULL,
      CONSTRAINT cdr_boundary_keys_pk PRIMARY KEY (tenant_id, call_id)
    )`.execute(db);
  await sql`CREATE INDEX cdr_boundary_keys_started_idx ON cdr_boundary_keys (tenant_id, started_at)`.execute(db);
  // the CDRs stored already (the old global key made their call ids unique)
  await sql`
    INSERT INTO cdr_boundary_keys (tenant_id, call_id, started_at)
    SELECT tenant_id, call_id, started_at FROM cdrs
     WHERE started_at AT TIME ZONE 'UTC' < date_trunc('month', started_at AT TIME ZONE 'UTC') + interval '1 day'
        OR started_at AT TIME ZONE 'UTC' >= date_trunc('month', started_at AT TIME ZONE 'UTC') + interval '1 month' - interval '1 day'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE IF EXISTS cdr_boundary_keys`.execute(db);
}
