import { sql, type Kysely } from 'kysely';

// The before-images of a users import (import_snapshot_users) lose their two
// foreign keys. PostgreSQL checks a foreign key row by row: two look-ups per
// before-image, most of the snapshot's time (benchmarks/RESULTS.md, users-import).
// The rows have one writer, importUsers, which inserts
// them in the transaction that inserts their import_snapshots row, and one
// reader, restore, which reads them through that row; what the keys still did
// (deleting the before-images with their import, or with their tenant, whose
// deletion cascades to import_snapshots) is done by one statement-level trigger.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE import_snapshot_users
              DROP CONSTRAINT import_snapshot_users_import_fk,
              DROP CONSTRAINT import_snapshot_users_tenant_id_fkey`.execute(db);
  await sql`
    CREATE FUNCTION import_snapshot_users_cascade() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      DELETE FROM import_snapshot_users b USING removed r WHERE b.tenant_id = r.tenant_id AND b.import_id = r.id;
      RETURN NULL;
    END $$`.execute(db);
  await sql`CREATE TRIGGER import_snapshots_cascade AFTER DELETE ON import_snapshots REFERENCING OLD TABLE AS removed
              FOR EACH STATEMENT EXECUTE FUNCTION import_snapshot_users_cascade()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TRIGGER IF EXISTS import_snapshots_cascade ON import_snapshots`.execute(db);
  await sql`DROP FUNCTION IF EXISTS import_snapshot_users_cascade()`.execute(db);
  await sql`DELETE FROM import_snapshot_users b
            WHERE NOT EXISTS (SELECT 1 FROM import_snapshots s WHERE s.tenant_id = b.tenant_id AND s.id = b.import_id)`.execute(db);
  await sql`ALTER TABLE import_snapshot_users
              ADD CONSTRAINT import_snapshot_users_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
              ADD CONSTRAINT import_snapshot_users_import_fk FOREIGN KEY (tenant_id, import_id)
                REFERENCES import_snapshots (tenant_id, id) ON DELETE CASCADE`.execute(db);
}
