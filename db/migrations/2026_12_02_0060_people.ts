import { sql, type Kysely } from 'kysely';

// The portal's people (issue 20): persons who sign in with an email and a
// password, hold the same roles as keys, and their sessions, one-time links
// (invitation, password reset) and failed sign-ins (throttling, lockout).
// A person belongs to one tenant, or to the reseller (tenant_id null).

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE people (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      reseller_id uuid NOT NULL REFERENCES resellers(id),
      tenant_id uuid REFERENCES tenants(id),
      email text NOT NULL CHECK (email = lower(email) AND email ~ '^[^\\s@]+@[^\\s@]+$'),
      name text NOT NULL,
      locale text NOT NULL DEFAULT 'fr' CHECK (locale IN ('fr', 'en')),
      roles text[] NOT NULL DEFAULT '{}',
      status text NOT NULL DEFAULT 'invited' CHECK (status IN ('invited', 'active', 'disabled')),
      password_hash text,
      failed_attempts integer NOT NULL DEFAULT 0,
      locked_until timestamptz,
      created_by text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT people_email_key UNIQUE (email)
    )`.execute(db);
  await sql`CREATE INDEX people_tenant ON people (tenant_id, email)`.execute(db);

  await sql`
    CREATE TABLE person_tokens (
      token_hash bytea PRIMARY KEY,
      person_id uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
      purpose text NOT NULL CHECK (purpose IN ('invitation', 'reset')),
      expires_at timestamptz NOT NULL,
      used_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE INDEX person_tokens_person ON person_tokens (person_id)`.execute(db);

  await sql`
    CREATE TABLE sessions (
      token_hash bytea PRIMARY KEY,
      person_id uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
      csrf text NOT NULL,
      address text,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL
    )`.execute(db);
  await sql`CREATE INDEX sessions_person ON sessions (person_id)`.execute(db);

  await sql`
    CREATE TABLE sign_in_failures (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      address text NOT NULL,
      email text NOT NULL,
      at timestamptz NOT NULL
    )`.execute(db);
  await sql`CREATE INDEX sign_in_failures_address ON sign_in_failures (address, at)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE sign_in_failures, sessions, person_tokens, people`.execute(db);
}
