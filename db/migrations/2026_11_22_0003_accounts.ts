import { sql, type Kysely } from 'kysely';

// Support for the in-memory account book of the authorization service
// (services/authorization): every user row carries a revision that grows with
// each change, and every change to users, tenants or reservations tells the
// listening servers what to re-read (NOTIFY forfait_accounts '<kind>:<tenant id>[:<ids>]').
// Statement-level triggers: a 100,000-row import sends one notification, not 100,000.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`CREATE SEQUENCE users_rev_seq`.execute(db);
  await sql`ALTER TABLE users ADD COLUMN rev bigint NOT NULL DEFAULT nextval('users_rev_seq')`.execute(db);
  await sql`
    CREATE FUNCTION users_bump_rev() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN NEW.rev := nextval('users_rev_seq'); RETURN NEW; END $$`.execute(db);
  await sql`CREATE TRIGGER users_rev BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION users_bump_rev()`.execute(db);

  // The answer given to the PBX, so a retried authorization (same callId) gets it again, even after a restart.
  await sql`ALTER TABLE reservations ADD COLUMN answer jsonb`.execute(db);

  // payload '<kind>:<tenant id>[:<id>,<id>,…]': the ids of the changed rows when
  // there are at most 50 of them (a targeted re-read), else none (re-read it all)
  await sql`
    CREATE FUNCTION notify_accounts() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('forfait_accounts', TG_ARGV[0] || ':' || tenant_id::text
                        || CASE WHEN count(*) <= 50 THEN ':' || string_agg(id::text, ',') ELSE '' END)
        FROM changed GROUP BY tenant_id;
      RETURN NULL;
    END $$`.execute(db);
  await sql
    .raw(
      `CREATE TRIGGER users_notify_ins AFTER INSERT ON users REFERENCING NEW TABLE AS changed
         FOR EACH STATEMENT EXECUTE FUNCTION notify_accounts('u');
       CREATE TRIGGER users_notify_upd AFTER UPDATE ON users REFERENCING NEW TABLE AS changed
         FOR EACH STATEMENT EXECUTE FUNCTION notify_accounts('u');
       CREATE TRIGGER users_notify_del AFTER DELETE ON users REFERENCING OLD TABLE AS changed
         FOR EACH STATEMENT EXECUTE FUNCTION notify_accounts('u');`,
    )
    .execute(db);
  // Reservations are created only by the server that owns the tenant, which
  // knows them already: only their closing (by a CDR, an end, an expiry) is told.
  await sql
    .raw(
      `CREATE TRIGGER reservations_notify_upd AFTER UPDATE ON reservations REFERENCING NEW TABLE AS changed
         FOR EACH STATEMENT EXECUTE FUNCTION notify_accounts('r');
       CREATE TRIGGER reservations_notify_del AFTER DELETE ON reservations REFERENCING OLD TABLE AS changed
         FOR EACH STATEMENT EXECUTE FUNCTION notify_accounts('r');`,
    )
    .execute(db);
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

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TRIGGER IF EXISTS tariffs_notify_ins ON tariffs`.execute(db);
  await sql`DROP TRIGGER IF EXISTS tariffs_notify_upd ON tariffs`.execute(db);
  await sql`DROP TRIGGER IF EXISTS tenants_notify_upd ON tenants`.execute(db);
  for (const e of ['ins', 'upd', 'del']) await sql.raw(`DROP TRIGGER IF EXISTS users_notify_${e} ON users`).execute(db);
  for (const e of ['upd', 'del']) await sql.raw(`DROP TRIGGER IF EXISTS reservations_notify_${e} ON reservations`).execute(db);
  await sql`DROP FUNCTION IF EXISTS notify_tariff(), notify_tenant(), notify_accounts()`.execute(db);
  await sql`ALTER TABLE reservations DROP COLUMN IF EXISTS answer`.execute(db);
  await sql`DROP TRIGGER IF EXISTS users_rev ON users`.execute(db);
  await sql`DROP FUNCTION IF EXISTS users_bump_rev()`.execute(db);
  await sql`ALTER TABLE users DROP COLUMN IF EXISTS rev`.execute(db);
  await sql`DROP SEQUENCE IF EXISTS users_rev_seq`.execute(db);
}
