import { sql, type Kysely } from 'kysely';

// CDR retention and archives (issue 22).
// - tenants.cdr_retention_months: how many whole UTC months of CDRs a tenant
//   keeps in the database (default 12, French rules keep traffic data for billing
//   up to a year); older months are archived then removed by the `cdr-archive` job.
// - cdr_archives: one row per archive file written (tenant, month, part): its
//   path under the archive directory, SHA-256, rows and the id sum of those rows
//   (what the job checks against the rows it is about to remove), when it was
//   verified, and when it was last restored.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE tenants ADD COLUMN cdr_retention_months integer NOT NULL DEFAULT 12
              CONSTRAINT tenants_cdr_retention_months_ck CHECK (cdr_retention_months BETWEEN 1 AND 120)`.execute(db);
  await sql`
    CREATE TABLE cdr_archives (
      tenant_id uuid NOT NULL,
      month date NOT NULL,
      part integer NOT NULL,
      file text NOT NULL,
      sha256 text NOT NULL,
      rows bigint NOT NULL,
      id_sum numeric NOT NULL,
      bytes bigint NOT NULL,
      verified_at timestamptz NOT NULL,
      restored_at timestamptz,
      CONSTRAINT cdr_archives_pk PRIMARY KEY (tenant_id, month, part),
      CONSTRAINT cdr_archives_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id),
      CONSTRAINT cdr_archives_month_ck CHECK (month = date_trunc('month', month)::date)
    )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE IF EXISTS cdr_archives`.execute(db);
  await sql`ALTER TABLE tenants DROP COLUMN IF EXISTS cdr_retention_months`.execute(db);
}
