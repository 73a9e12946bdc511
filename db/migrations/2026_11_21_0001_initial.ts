import { sql, type Kysely } from 'kysely';

// Migrations take Kysely<any> on purpose: they describe the schema as it was
// at that date and never import application code (kysely docs, migrations).
// Every tenant-owned table leads its primary and unique keys with tenant_id so
// the schema can be distributed by tenant (Citus) without rewriting keys.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`CREATE EXTENSION IF NOT EXISTS pgcrypto`.execute(db).catch(() => undefined);

  await db.schema
    .createTable('resellers')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('product_types')
    .addColumn('code', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('max_users', 'integer', (c) => c.notNull().check(sql`max_users >= 0`))
    .addColumn('monthly_fee_per_user', sql`numeric(20,4)`, (c) => c.notNull().check(sql`monthly_fee_per_user >= 0`))
    .addColumn('locked', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db
    .insertInto('product_types')
    .values([
      { code: 'essentiel', name: 'Essentiel', max_users: 25, monthly_fee_per_user: '5.00', locked: false },
      { code: 'pro', name: 'Pro', max_users: 250, monthly_fee_per_user: '4.00', locked: false },
      { code: 'entreprise', name: 'Entreprise', max_users: 10000, monthly_fee_per_user: '3.00', locked: true },
    ])
    .execute();

  // Tariffs belong to a reseller and may be shared by several of its tenants.
  await db.schema
    .createTable('tariffs')
    .addColumn('reseller_id', 'uuid', (c) => c.notNull().references('resellers.id'))
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('tariffs_pk', ['reseller_id', 'id'])
    // ids are chosen by resellers ("standard-2026") and unique across them
    .addUniqueConstraint('tariffs_id_uq', ['id'])
    .execute();

  await db.schema
    .createTable('rates')
    .addColumn('reseller_id', 'uuid', (c) => c.notNull())
    .addColumn('tariff_id', 'text', (c) => c.notNull())
    .addColumn('id', 'bigint', (c) => c.notNull().generatedAlwaysAsIdentity())
    .addColumn('prefix', 'text', (c) => c.notNull().check(sql`prefix ~ '^[0-9]{1,15}$'`))
    .addColumn('destination', 'text', (c) => c.notNull())
    .addColumn('class', 'text', (c) =>
      c.notNull().check(sql`class IN ('fixed','mobile','special','international','free')`),
    )
    .addColumn('price_per_minute', sql`numeric(20,6)`, (c) => c.notNull().check(sql`price_per_minute >= 0`))
    .addColumn('next_price_per_minute', sql`numeric(20,6)`, (c) => c.notNull().check(sql`next_price_per_minute >= 0`))
    .addColumn('connection_fee', sql`numeric(20,6)`, (c) => c.notNull().check(sql`connection_fee >= 0`))
    .addColumn('first_increment', 'integer', (c) => c.notNull().check(sql`first_increment > 0`))
    .addColumn('next_increment', 'integer', (c) => c.notNull().check(sql`next_increment > 0`))
    .addColumn('forfait_eligible', 'boolean', (c) => c.notNull())
    .addColumn('valid_from', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('rates_pk', ['reseller_id', 'tariff_id', 'id'])
    .addUniqueConstraint('rates_prefix_valid_from_uq', ['reseller_id', 'tariff_id', 'prefix', 'valid_from'])
    .addForeignKeyConstraint('rates_tariff_fk', ['reseller_id', 'tariff_id'], 'tariffs', ['reseller_id', 'id'], (fk) =>
      fk.onDelete('cascade'),
    )
    .execute();

  await db.schema
    .createTable('tenants')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('reseller_id', 'uuid', (c) => c.notNull().references('resellers.id'))
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('product_type', 'text', (c) => c.notNull().references('product_types.code'))
    .addColumn('tariff_id', 'text')
    .addColumn('reference', 'text')
    .addColumn('country', 'text', (c) => c.notNull().defaultTo('FR').check(sql`country ~ '^[A-Z]{2}$'`))
    .addColumn('currency', 'text', (c) => c.notNull().defaultTo('EUR').check(sql`currency ~ '^[A-Z]{3}$'`))
    .addColumn('timezone', 'text', (c) => c.notNull())
    .addColumn('locale', 'text', (c) => c.notNull().defaultTo('fr').check(sql`locale IN ('fr','en')`))
    .addColumn('number_display', 'text', (c) =>
      c.notNull().defaultTo('international').check(sql`number_display IN ('international','national')`),
    )
    .addColumn('notes', 'text')
    .addColumn('trial_ends_at', 'timestamptz')
    .addColumn('internal', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('active').check(sql`status IN ('active','suspended')`))
    .addColumn('vat_rate', sql`numeric(6,4)`, (c) => c.notNull().defaultTo('0.20').check(sql`vat_rate >= 0 AND vat_rate < 1`))
    .addColumn('default_forfait_minutes', 'integer', (c) => c.notNull().defaultTo(0).check(sql`default_forfait_minutes >= 0`))
    .addColumn('max_call_seconds', 'integer', (c) => c.notNull().defaultTo(14400).check(sql`max_call_seconds > 0`))
    .addColumn('low_balance_threshold', sql`numeric(20,4)`, (c) => c.notNull().defaultTo('1.00'))
    .addColumn('free_numbers', sql`text[]`, (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addForeignKeyConstraint('tenants_tariff_fk', ['reseller_id', 'tariff_id'], 'tariffs', ['reseller_id', 'id'])
    .execute();

  // Custom roles; the four default roles live in code (api access table).
  await db.schema
    .createTable('roles')
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('id', 'uuid', (c) => c.notNull().defaultTo(sql`gen_random_uuid()`))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('inherits', 'text', (c) =>
      c.notNull().check(sql`inherits IN ('administrateur','acheteur','comptable','technicien')`),
    )
    .addColumn('add_permissions', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('remove_permissions', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('roles_pk', ['tenant_id', 'id'])
    .addUniqueConstraint('roles_name_uq', ['tenant_id', 'name'])
    .execute();

  // API keys are looked up by their public id before any tenant is known, so
  // this is a global (reference) table; tenant_id is null for reseller keys.
  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('secret_hash', 'bytea', (c) => c.notNull())
    .addColumn('principal', 'text', (c) => c.notNull().check(sql`principal IN ('reseller','user','pbx')`))
    .addColumn('reseller_id', 'uuid', (c) => c.references('resellers.id'))
    .addColumn('tenant_id', 'uuid', (c) => c.references('tenants.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('roles', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('revoked_at', 'timestamptz')
    .addCheckConstraint(
      'api_keys_owner_ck',
      sql`(principal = 'reseller' AND reseller_id IS NOT NULL AND tenant_id IS NULL) OR (principal <> 'reseller' AND tenant_id IS NOT NULL)`,
    )
    .execute();
  await db.schema.createIndex('api_keys_tenant_idx').on('api_keys').columns(['tenant_id', 'created_at']).execute();

  await db.schema
    .createTable('users')
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('id', 'uuid', (c) => c.notNull().defaultTo(sql`gen_random_uuid()`))
    .addColumn('full_name', 'text', (c) => c.notNull().check(sql`length(full_name) > 0`))
    .addColumn('matricule', 'text', (c) => c.notNull().check(sql`matricule ~ '^[0-9]{14}$'`))
    .addColumn('identifiant', 'text', (c) => c.notNull().check(sql`identifiant ~ '^[0-9]{7}$'`))
    .addColumn('general_state', 'text')
    .addColumn('account_status', 'text', (c) =>
      c.notNull().defaultTo('enabled').check(sql`account_status IN ('enabled','disabled')`),
    )
    .addColumn('forfait_minutes', 'integer', (c) => c.notNull().check(sql`forfait_minutes >= 0`))
    .addColumn('forfait_period', 'text')
    .addColumn('used_seconds', 'integer', (c) => c.notNull().defaultTo(0).check(sql`used_seconds >= 0`))
    .addColumn('total_call_seconds', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('balance', sql`numeric(20,4)`, (c) => c.notNull().defaultTo('0'))
    .addColumn('billing_enabled', 'boolean', (c) => c.notNull().defaultTo(true))
    // The 10 authorized-number slots (keys 1..10), each NULL or an E.164 number.
    .addColumn('authorized_numbers', sql`text[]`, (c) =>
      c.notNull().defaultTo(sql`array_fill(NULL::text, ARRAY[10])`).check(sql`cardinality(authorized_numbers) = 10`),
    )
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('users_pk', ['tenant_id', 'id'])
    .addUniqueConstraint('users_matricule_uq', ['tenant_id', 'matricule'])
    .addUniqueConstraint('users_identifiant_uq', ['tenant_id', 'identifiant'])
    .execute();
  await sql`CREATE INDEX users_name_idx ON users (tenant_id, lower(full_name) text_pattern_ops)`.execute(db);

  // Append-only: no FK to users, so history survives a user's deletion.
  await db.schema
    .createTable('ledger_entries')
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('id', 'bigint', (c) => c.notNull().generatedAlwaysAsIdentity())
    .addColumn('user_id', 'uuid', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind IN ('topup','adjustment','call','refund','rerate')`))
    .addColumn('amount', sql`numeric(20,4)`, (c) => c.notNull())
    .addColumn('balance_after', sql`numeric(20,4)`, (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('idempotency_key', 'text')
    .addColumn('cdr_id', 'bigint')
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('ledger_entries_pk', ['tenant_id', 'id'])
    .addUniqueConstraint('ledger_idempotency_uq', ['tenant_id', 'user_id', 'idempotency_key'])
    .execute();
  await db.schema.createIndex('ledger_user_idx').on('ledger_entries').columns(['tenant_id', 'user_id', 'id']).execute();

  await db.schema
    .createTable('reservations')
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('id', 'uuid', (c) => c.notNull())
    .addColumn('user_id', 'uuid', (c) => c.notNull())
    .addColumn('call_id', 'text', (c) => c.notNull())
    .addColumn('callee', 'text', (c) => c.notNull())
    .addColumn('rate_id', 'bigint')
    .addColumn('max_seconds', 'integer', (c) => c.notNull())
    .addColumn('hold_forfait_seconds', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('hold_money', sql`numeric(20,4)`, (c) => c.notNull().defaultTo('0'))
    .addColumn('status', 'text', (c) =>
      c.notNull().defaultTo('open').check(sql`status IN ('open','ended','rated','expired')`),
    )
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('released_at', 'timestamptz')
    .addPrimaryKeyConstraint('reservations_pk', ['tenant_id', 'id'])
    .addUniqueConstraint('reservations_call_id_uq', ['tenant_id', 'call_id'])
    .execute();
  await sql`CREATE INDEX reservations_open_idx ON reservations (tenant_id, user_id) WHERE status = 'open'`.execute(db);
  await sql`CREATE INDEX reservations_expiry_idx ON reservations (expires_at) WHERE status = 'open'`.execute(db);

  await db.schema
    .createTable('cdrs')
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('id', 'bigint', (c) => c.notNull().generatedAlwaysAsIdentity())
    .addColumn('call_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'uuid')
    .addColumn('identifiant', 'text')
    .addColumn('caller', 'text')
    .addColumn('callee', 'text', (c) => c.notNull())
    .addColumn('direction', 'text', (c) => c.notNull().check(sql`direction IN ('out','in')`))
    .addColumn('started_at', 'timestamptz', (c) => c.notNull())
    .addColumn('answered_at', 'timestamptz')
    .addColumn('duration_seconds', 'integer', (c) => c.notNull().check(sql`duration_seconds >= 0`))
    .addColumn('disposition', 'text', (c) =>
      c.notNull().check(sql`disposition IN ('answered','no_answer','busy','failed')`),
    )
    .addColumn('site', 'text')
    .addColumn('line', 'text')
    .addColumn('rate_id', 'bigint')
    .addColumn('destination', 'text')
    .addColumn('class', 'text')
    .addColumn('billable_seconds', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('forfait_seconds', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('charged_seconds', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('cost', sql`numeric(20,4)`, (c) => c.notNull().defaultTo('0'))
    .addColumn('reservation_id', 'uuid')
    .addColumn('rated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('cdrs_pk', ['tenant_id', 'id'])
    .addUniqueConstraint('cdrs_call_id_uq', ['tenant_id', 'call_id'])
    .execute();
  await db.schema.createIndex('cdrs_started_idx').on('cdrs').columns(['tenant_id', 'started_at']).execute();
  await db.schema.createIndex('cdrs_user_idx').on('cdrs').columns(['tenant_id', 'user_id', 'started_at']).execute();

  await db.schema
    .createTable('rejected_cdrs')
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('id', 'bigint', (c) => c.notNull().generatedAlwaysAsIdentity())
    .addColumn('call_id', 'text')
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('raw', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('reprocessed_at', 'timestamptz')
    .addPrimaryKeyConstraint('rejected_cdrs_pk', ['tenant_id', 'id'])
    .execute();

  // One row per user import: the directory as it was before, for restore.
  await db.schema
    .createTable('import_snapshots')
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('id', 'uuid', (c) => c.notNull().defaultTo(sql`gen_random_uuid()`))
    .addColumn('mode', 'text', (c) => c.notNull().check(sql`mode IN ('append','upsert','sync')`))
    .addColumn('summary', 'jsonb', (c) => c.notNull())
    .addColumn('snapshot', 'jsonb', (c) => c.notNull())
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('restored_at', 'timestamptz')
    .addPrimaryKeyConstraint('import_snapshots_pk', ['tenant_id', 'id'])
    .execute();

  // Invoice numbers run in one unbroken sequence per year for the issuer.
  await db.schema
    .createTable('invoice_sequences')
    .addColumn('year', 'integer', (c) => c.primaryKey())
    .addColumn('last_number', 'integer', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('invoices')
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'uuid', (c) => c.notNull().defaultTo(sql`gen_random_uuid()`))
    .addColumn('number', 'text', (c) => c.notNull())
    .addColumn('period', 'text', (c) => c.notNull().check(sql`period ~ '^[0-9]{4}-[0-9]{2}$'`))
    .addColumn('reference', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status IN ('issued','not_billed')`))
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('locale', 'text', (c) => c.notNull())
    .addColumn('vat_rate', sql`numeric(6,4)`, (c) => c.notNull())
    .addColumn('total_excl_vat', sql`numeric(20,2)`, (c) => c.notNull())
    .addColumn('vat', sql`numeric(20,2)`, (c) => c.notNull())
    .addColumn('total', sql`numeric(20,2)`, (c) => c.notNull())
    .addColumn('issued_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('invoices_pk', ['tenant_id', 'id'])
    .addUniqueConstraint('invoices_period_uq', ['tenant_id', 'period'])
    .addUniqueConstraint('invoices_number_uq', ['tenant_id', 'number'])
    .execute();

  await db.schema
    .createTable('invoice_lines')
    .addColumn('tenant_id', 'uuid', (c) => c.notNull())
    .addColumn('invoice_id', 'uuid', (c) => c.notNull())
    .addColumn('line_no', 'integer', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('quantity', sql`numeric(20,4)`, (c) => c.notNull())
    .addColumn('unit_price', sql`numeric(20,4)`, (c) => c.notNull())
    .addColumn('amount', sql`numeric(20,2)`, (c) => c.notNull())
    .addPrimaryKeyConstraint('invoice_lines_pk', ['tenant_id', 'invoice_id', 'line_no'])
    .addForeignKeyConstraint('invoice_lines_invoice_fk', ['tenant_id', 'invoice_id'], 'invoices', ['tenant_id', 'id'])
    .execute();

  // Issued invoices never change: the database refuses it, not only the code.
  await sql`
    CREATE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME; END $$`.execute(db);
  await sql`CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE ON invoices
            FOR EACH ROW EXECUTE FUNCTION forbid_change()`.execute(db);
  await sql`CREATE TRIGGER invoice_lines_immutable BEFORE UPDATE OR DELETE ON invoice_lines
            FOR EACH ROW EXECUTE FUNCTION forbid_change()`.execute(db);
  await sql`CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger_entries
            FOR EACH ROW EXECUTE FUNCTION forbid_change()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of [
    'invoice_lines', 'invoices', 'invoice_sequences', 'import_snapshots', 'rejected_cdrs', 'cdrs',
    'reservations', 'ledger_entries', 'users', 'api_keys', 'roles', 'tenants', 'rates', 'tariffs',
    'product_types', 'resellers',
  ]) {
    await db.schema.dropTable(t).ifExists().cascade().execute();
  }
  await sql`DROP FUNCTION IF EXISTS forbid_change()`.execute(db);
}
