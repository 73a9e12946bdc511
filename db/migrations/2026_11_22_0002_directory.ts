import { sql, type Kysely } from 'kysely';

// The directory's uniqueness rules (matricule and identifiant per tenant) become
// DEFERRABLE (still checked immediately unless a transaction defers them). A CSV
// sync or a restore applies a whole directory state in a few set-based
// statements; a file that swaps two users' identifiants is valid as a final
// state but would fail a per-row check halfway through one UPDATE. Those
// transactions run `SET CONSTRAINTS … DEFERRED` and are checked at commit.
// (A deferrable unique constraint still has its unique index for look-ups;
// it cannot be an ON CONFLICT arbiter, which nothing uses on users.)

export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE users
              DROP CONSTRAINT users_matricule_uq,
              ADD CONSTRAINT users_matricule_uq UNIQUE (tenant_id, matricule) DEFERRABLE INITIALLY IMMEDIATE,
              DROP CONSTRAINT users_identifiant_uq,
              ADD CONSTRAINT users_identifiant_uq UNIQUE (tenant_id, identifiant) DEFERRABLE INITIALLY IMMEDIATE`.execute(db);
  // Before-images of the users an import changed or removed, for restore. A
  // table rather than a JSON document: copying 10,000 rows costs a fraction of
  // building the same rows as jsonb. import_snapshots.snapshot keeps the ids the
  // import created.
  await db.schema
    .createTable('import_snapshot_users')
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('import_id', 'uuid', (c) => c.notNull())
    .addColumn('id', 'uuid', (c) => c.notNull())
    .addColumn('full_name', 'text', (c) => c.notNull())
    .addColumn('matricule', 'text', (c) => c.notNull())
    .addColumn('identifiant', 'text', (c) => c.notNull())
    .addColumn('general_state', 'text')
    .addColumn('account_status', 'text', (c) => c.notNull())
    .addColumn('forfait_minutes', 'integer', (c) => c.notNull())
    .addColumn('forfait_period', 'text')
    .addColumn('used_seconds', 'integer', (c) => c.notNull())
    .addColumn('total_call_seconds', 'bigint', (c) => c.notNull())
    .addColumn('billing_enabled', 'boolean', (c) => c.notNull())
    .addColumn('authorized_numbers', sql`text[]`, (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('import_snapshot_users_pk', ['tenant_id', 'import_id', 'id'])
    .addForeignKeyConstraint('import_snapshot_users_import_fk', ['tenant_id', 'import_id'], 'import_snapshots', ['tenant_id', 'id'], (fk) =>
      fk.onDelete('cascade'),
    )
    .execute();
  // Import history of a tenant, newest first (list and "is there a later import?").
  await db.schema.createIndex('import_snapshots_created_idx').on('import_snapshots').columns(['tenant_id', 'created_at']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('import_snapshots_created_idx').ifExists().execute();
  await db.schema.dropTable('import_snapshot_users').ifExists().execute();
  await sql`ALTER TABLE users
              DROP CONSTRAINT users_matricule_uq,
              ADD CONSTRAINT users_matricule_uq UNIQUE (tenant_id, matricule),
              DROP CONSTRAINT users_identifiant_uq,
              ADD CONSTRAINT users_identifiant_uq UNIQUE (tenant_id, identifiant)`.execute(db);
}
