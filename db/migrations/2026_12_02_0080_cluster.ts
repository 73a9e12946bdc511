import { sql, type Kysely } from 'kysely';

// Several servers on one database (issue 23).
//
// servers: each running Forfait registers itself (the address the others
// forward to) and beats every second from the connection that holds its
// tenants' advisory locks (lock_pid): a row whose pid holds no lock any more is
// a dead server, whatever its heartbeat says.
//
// tenant_owners: which server took each tenant's book last. Written by the new
// owner once it holds the tenant's advisory lock and before it reads the book.
//
// The fence: a server that lost its lock session without noticing yet (its
// connection killed, a network cut) still has the book in memory. The
// statement trigger below refuses its reservations once another server has
// claimed the tenant: an INSERT into reservations made on a connection that
// names its server (the custom setting forfait.server_id, which every
// connection of a clustered server carries) must find that server as the
// owner of each tenant of its rows, and takes that owner row FOR SHARE, so a
// claim (an UPDATE of the row) waits for a commit in flight and the new owner's
// book, read after its claim, sees that reservation. Connections without the
// setting (tools, tests of one process) are not fenced.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE servers (
      id uuid PRIMARY KEY,
      address text NOT NULL,
      lock_pid integer,
      started_at timestamptz NOT NULL DEFAULT now(),
      heartbeat_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`
    CREATE TABLE tenant_owners (
      tenant_id uuid PRIMARY KEY,
      server_id uuid NOT NULL,
      since timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`
    CREATE FUNCTION reservations_fence() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      me text := current_setting('forfait.server_id', true);
      lost uuid;
    BEGIN
      IF me IS NULL OR me = '' THEN
        RETURN NULL;
      END IF;
      SELECT t.tenant_id INTO lost
        FROM (SELECT DISTINCT tenant_id FROM inserted) t
        LEFT JOIN LATERAL (
          SELECT o.server_id FROM tenant_owners o WHERE o.tenant_id = t.tenant_id FOR SHARE
        ) o ON true
       WHERE o.server_id IS DISTINCT FROM me::uuid
       LIMIT 1;
      IF lost IS NOT NULL THEN
        RAISE EXCEPTION 'tenant % is owned by another Forfait server', lost
          USING ERRCODE = 'FF001', HINT = 'forward to the tenant''s owner';
      END IF;
      RETURN NULL;
    END $$`.execute(db);
  await sql`
    CREATE TRIGGER reservations_fence AFTER INSERT ON reservations
      REFERENCING NEW TABLE AS inserted
      FOR EACH STATEMENT EXECUTE FUNCTION reservations_fence()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TRIGGER reservations_fence ON reservations`.execute(db);
  await sql`DROP FUNCTION reservations_fence()`.execute(db);
  await sql`DROP TABLE tenant_owners`.execute(db);
  await sql`DROP TABLE servers`.execute(db);
}
