import { sql, type Kysely } from 'kysely';

// Support for the in-memory account book of the authorization service
// (services/authorization): every user row carries a revision that grows with
// each change, and every change to users, tenants or reservations tells the
// listening servers which tenant to re-read (NOTIFY forfait_accounts '<kind>:<tenant id>').
// Statement-level triggers: a 100,000-row import sends one notification, not 100,000.

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`CREATE SEQUENCE users_rev_seq`.execute(db);
  await sql`ALTER TABLE users ADD COLUMN rev bigint NOT NULL DEFAULT nextval('users_rev_seq')`.execute(db);
  await sql`
    CREATE FUNCTION users_bump_rev() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN NEW.rev := nextval('users_rev_seq'); RETURN NEW; END $$`.execute(db);
  await sql`CREATE TRIGGER users_rev BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION users_bump_rev()`.execute(db);

  // The answer given to the PBX, so a retried authorization (same callId) gets it again, even after a restart.
  await sql`ALTER TABLE reservations ADD COLUMN answer jsonb`.execute(db);

  await sql`
    CREATE FUNCTION notify_accounts() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('forfait_accounts', TG_ARGV[0] || ':' || t)
        FROM (SELECT DISTINCT tenant_id::text AS t FROM changed) s;
      RETURN NULL;
    END $$`.execute(db);
  for (const [table, kind] of [
    ['users', 'u'],
    ['reservations', 'r'],
  ] as const) {
    await sql
      .raw(
        `CREATE TRIGGER ${table}_notify_ins AFTER INSERT ON ${table} REFERENCING NEW TABLE AS changed
           FOR EACH STATEMENT EXECUTE FUNCTION notify_accounts('${kind}');
         CREATE TRIGGER ${table}_notify_upd AFTER UPDATE ON ${table} REFERENCING NEW TABLE AS changed
           FOR EACH STATEMENT EXECUTE FUNCTION notify_accounts('${kind}');
         CREATE TRIGGER ${table}_notify_del AFTER DELETE ON ${table} REFERENCING OLD TABLE AS changed
           FOR EACH STATEMENT EXECUTE FUNCTION notify_accounts('${kind}');`,
      )
      .execute(db);
  }
  await sql`
    CREATE FUNCTION notify_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('forfait_accounts', 't:' || t)
        FROM (SELECT DISTINCT id::text AS t FROM changed) s;
      RETURN NULL;
    END $$`.execute(db);
  await sql`CREATE TRIGGER tenants_notify_upd AFTER UPDATE ON tenants REFERENCING NEW TABLE AS changed
              FOR EACH STATEMENT EXECUTE FUNCTION notify_tenant()`.execute(db);
  // tariffs: the compiled index of every server is dropped on upload
  await sql`
    CREATE FUNCTION notify_tariff() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('forfait_accounts', 'p:' || t)
        FROM (SELECT DISTINCT id AS t FROM changed) s;
      RETURN NULL;
    END $$`.execute(db);
  await sql`CREATE TRIGGER tariffs_notify_upd AFTER UPDATE ON tariffs REFERENCING NEW TABLE AS changed
              FOR EACH STATEMENT EXECUTE FUNCTION notify_tariff()`.execute(db);
  await sql`CREATE TRIGGER tariffs_notify_ins AFTER INSERT ON tariffs REFERENCING NEW TABLE AS changed
              FOR EACH STATEMENT EXECUTE FUNCTION notify_tariff()`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TRIGGER IF EXISTS tariffs_notify_ins ON tariffs`.execute(db);
  await sql`DROP TRIGGER IF EXISTS tariffs_notify_upd ON tariffs`.execute(db);
  await sql`DROP TRIGGER IF EXISTS tenants_notify_upd ON tenants`.execute(db);
  for (const table of ['users', 'reservations']) {
    for (const e of ['ins', 'upd', 'del']) await sql.raw(`DROP TRIGGER IF EXISTS ${table}_notify_${e} ON ${table}`).execute(db);
  }
  await sql`DROP FUNCTION IF EXISTS notify_tariff(), notify_tenant(), notify_accounts()`.execute(db);
  await sql`ALTER TABLE reservations DROP COLUMN IF EXISTS answer`.execute(db);
  await sql`DROP TRIGGER IF EXISTS users_rev ON users`.execute(db);
  await sql`DROP FUNCTION IF EXISTS users_bump_rev()`.execute(db);
  await sql`ALTER TABLE users DROP COLUMN IF EXISTS rev`.execute(db);
  await sql`DROP SEQUENCE IF EXISTS users_rev_seq`.execute(db);
}
